// Fuzz target: the manifest decoder with the cross-resource rules, over up to two files
import EmpireModel
import Foundation

func fuzzOne(_ bytes: [UInt8]) {
    // A 0xFF byte splits the input into two files, so cross-file rules (duplicates, references) run too.
    let parts = bytes.split(separator: 0xFF, maxSplits: 1, omittingEmptySubsequences: false)
    let sources = parts.enumerated().map { i, p in ManifestSource(displayPath: "f\(i).yaml", relativePath: "f\(i).yaml", content: .bytes(Array(p))) }
    let report = ManifestLoader.validate(sources, fileExists: { $0.hasSuffix(".json") }, readFile: { _ in Array("{\"nodes\":[],\"connections\":{}}".utf8) })
    for d in report.diagnostics { _ = d.rendered }
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
