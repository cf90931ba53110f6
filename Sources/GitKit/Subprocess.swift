import Foundation

/// Runs a helper program (ssh-keygen, gpg) to completion with a bounded wait.
enum Subprocess {
    struct Output {
        var status: Int32
        var stdout: Data
        var stderr: Data
    }

    static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil, environment: [String: String]? = nil,
                    timeout: TimeInterval = 30) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try p.run()
        if let stdin {
            input.fileHandleForWriting.write(stdin)
            try? input.fileHandleForWriting.close()
        }
        // Drain stderr on another thread so neither pipe can fill up and block the child.
        let errBox = DataBox()
        let t = Thread { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); errBox.done.signal() }
        t.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning {
            if Date() > deadline { p.terminate(); break }
            usleep(2000)
        }
        p.waitUntilExit()
        errBox.done.wait()
        return Output(status: p.terminationStatus, stdout: o, stderr: errBox.data)
    }

    private final class DataBox: @unchecked Sendable {
        var data = Data()
        let done = DispatchSemaphore(value: 0)
    }
}
