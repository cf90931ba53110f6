import Foundation
import Synchronization

/// Runs external programs for tests and keeps track of background ones so they can be
/// stopped even when a test fails.
public enum Processes {
    /// SIGTERM, then SIGKILL if the child is still running after `grace` seconds.
    public static func stop(_ process: Process, grace: TimeInterval = 2) {
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(pid, SIGKILL) }
    }

    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs `args[0]` (looked up on PATH) to completion.
    @discardableResult
    public static func run(_ args: [String], cwd: String? = nil, env: [String: String] = [:], stdin: String? = nil,
                           check: Bool = true) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try p.run()
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try? input.fileHandleForWriting.close()
        }
        let errData = Mutex<Data?>(nil)
        let t = Thread { let d = err.fileHandleForReading.readDataToEndOfFile(); errData.withLock { $0 = d } }
        t.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        var e2: Data?
        while e2 == nil { e2 = errData.withLock { $0 }; if e2 == nil { usleep(500) } }
        let result = Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e2!, as: UTF8.self))
        if check && result.status != 0 {
            throw Failure(description: "\(args.joined(separator: " ")) exited \(result.status): \(result.stderr)")
        }
        return result
    }

    /// A free TCP port on 127.0.0.1 (bound, then released).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                bind(fd, sp, len) == 0 ? getsockname(fd, sp, &len) : -1
            }
        }
        guard rc == 0 else { throw Failure(description: "bind failed") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Whether 127.0.0.1:port accepts connections.
    public static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// A `git daemon` on 127.0.0.1 serving every repository under `baseDir`, with push
/// (receive-pack) enabled. Stopped by `stop()` or when released.
// @unchecked Sendable: every stored property is an immutable `let`; the only non-Sendable
// one is the Foundation `Process`, which is used after init only to terminate and wait
// for the child, and Foundation's Process allows that from any thread.
public final class GitDaemon: @unchecked Sendable {
    public let port: Int
    public let baseDir: String
    private let process: Process

    public init(baseDir: String) throws {
        var lastError: Error?
        for _ in 0..<5 {
            let port = try Processes.freePort()
            let p = Process()
            // The daemon binary itself, not the `git` wrapper, so that a signal reaches it.
            p.executableURL = URL(fileURLWithPath: GitDaemon.executable)
            p.arguments = ["--reuseaddr", "--base-path=\(baseDir)", "--export-all", "--enable=receive-pack",
                           "--listen=127.0.0.1", "--port=\(port)", baseDir]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            do { try p.run() } catch { lastError = error; continue }
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline && p.isRunning && !Processes.accepts(port: port) { usleep(20_000) }
            if p.isRunning && Processes.accepts(port: port) {
                self.port = port
                self.baseDir = baseDir
                self.process = p
                return
            }
            if p.isRunning { p.terminate(); p.waitUntilExit() }
            lastError = Processes.Failure(description: "git daemon did not start on port \(port)")
        }
        throw lastError ?? Processes.Failure(description: "git daemon did not start")
    }

    /// `git://127.0.0.1:<port>/<name>`.
    public func url(_ name: String) -> String { "git://127.0.0.1:\(port)/\(name)" }

    static let executable: String = {
        let out = try? Processes.run(["git", "--exec-path"])
        return (out?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? "/usr/lib/git-core") + "/git-daemon"
    }()

    /// SIGTERM, then SIGKILL after a second; never waits unboundedly.
    public func stop() {
        Processes.stop(process, grace: 1)
        let hard = Date().addingTimeInterval(2)
        while process.isRunning && Date() < hard { usleep(10_000) }
        // Wait until the port is closed so "unreachable" tests see a closed port.
        while Processes.accepts(port: port) && Date() < hard { usleep(10_000) }
    }

    deinit { stop() }
}
