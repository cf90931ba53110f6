import Foundation

#if FUZZING
// libFuzzer's driver, entered from the target's own main (SwiftPM names an executable's entry
// point itself, so libFuzzer's main cannot be used).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

// nonisolated(unsafe) is safe here: written once in fuzzMain before libFuzzer starts, then only
// read by libFuzzer's one fuzzing thread (the C callback cannot capture a context).
nonisolated(unsafe) private var target: (([UInt8]) -> Void)?
#endif

/// The main of a fuzz target: with FUZZING, libFuzzer over `body`; without, a replay tool that
/// runs every file named on the command line through `body` (crash fixtures, corpora).
public func fuzzMain(_ body: @escaping ([UInt8]) -> Void) -> Never {
    #if FUZZING
    target = body
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        target?(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
        return 0
    })
    #else
    for path in CommandLine.arguments.dropFirst() {
        guard let data = FileManager.default.contents(atPath: path) else { print("cannot read \(path)"); exit(1) }
        body(Array(data))
    }
    print("replayed \(CommandLine.arguments.count - 1) input(s)")
    exit(0)
    #endif
}
