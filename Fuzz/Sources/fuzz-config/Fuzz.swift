// Fuzz target: the reconciler-config loader (ytempire.yaml)
import EmpireModel
import Foundation

func fuzzOne(_ bytes: [UInt8]) {
    let (config, diags) = ReconcilerConfigLoader.load(bytes: bytes, displayPath: "ytempire.yaml", baseDirectory: "/nonexistent-fuzz-base")
    for d in diags { _ = d.rendered }
    _ = config?.stateDir
}

#if FUZZING
// libFuzzer's driver, entered from our own main (SwiftPM names an executable's entry point itself).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt
#endif

@main struct Fuzz {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            fuzzOne(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
            return 0
        })
        #else
        // Replay: every file named on the command line (crash fixtures, corpora) through the same code.
        for path in CommandLine.arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else { print("cannot read \(path)"); exit(1) }
            fuzzOne(Array(data))
        }
        print("replayed \(CommandLine.arguments.count - 1) input(s)")
        #endif
    }
}
