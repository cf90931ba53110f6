import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs `promtool check rules FILE` with posix_spawn and a deadline (Foundation's Process was
/// seen to miss a child's exit here). Output is capped; the child gets /dev/null as stdin and
/// no descriptor but 0–2.
enum Promtool {
    struct Output: Sendable {
        var status: Int32
        var output: String
        var timedOut: Bool
    }

    /// Output beyond this many bytes (stdout and stderr together) is dropped.
    static let maxOutput = 64 << 10

    private typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    // glibc ≥ 2.34; not in Swift's Glibc module (it is _GNU_SOURCE), so looked up.
    private static let addClosefrom = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map { unsafeBitCast($0, to: AddClosefrom.self) }

    /// Runs on a thread of its own so the wait never blocks Swift's cooperative pool.
    static func run(_ arguments: [String], timeout: TimeInterval) async throws(PrometheusError) -> Output {
        let result: Result<Output, PrometheusError> = await withCheckedContinuation { cont in
            let t = Thread {
                do throws(PrometheusError) { cont.resume(returning: .success(try runBlocking(arguments, timeout: timeout))) } catch {
                    cont.resume(returning: .failure(error))
                }
            }
            t.start()
        }
        return try result.get()
    }

    static func runBlocking(_ arguments: [String], timeout: TimeInterval) throws(PrometheusError) -> Output {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw PrometheusError(.promtoolUnavailable, "cannot run promtool: pipe failed: \(String(cString: strerror(errno)))")
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        if let addClosefrom { _ = addClosefrom(&actions, 3) }
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = arguments[0].contains("/") ? posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
                                            : posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw PrometheusError(.promtoolUnavailable, "cannot run \(arguments[0]): \(String(cString: strerror(rc))) (set integrations.prometheus.promtool to its path)")
        }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16384)
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        var p = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { timedOut = true; kill(pid, SIGKILL); break }
            let prc = poll(&p, 1, Int32(min(left, 1) * 1000) + 1)
            if prc < 0 { if errno == EINTR { continue }; break }
            if prc == 0 { continue }
            let n = read(fds[0], &buf, buf.count)
            if n > 0 {
                if out.count < maxOutput { out.append(contentsOf: buf[0..<min(n, maxOutput - out.count)]) }
            } else if n == 0 || errno != EINTR {
                break
            }
        }
        close(fds[0])
        // The pipe closed (or the child was killed): the exit follows; never wait unboundedly.
        var status: Int32 = 0
        let reapBy = Date().addingTimeInterval(5)
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { break }
            if Date() > reapBy { kill(pid, SIGKILL); while waitpid(pid, &status, 0) < 0 && errno == EINTR {}; break }
            usleep(2000)
        }
        let exited = (status & 0x7f) == 0
        let code = timedOut ? 124 : (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f))
        return Output(status: code, output: String(decoding: out, as: UTF8.self), timedOut: timedOut)
    }
}
