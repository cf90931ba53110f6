internal import CGit2
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs a helper program (ssh-keygen, gpg) to completion with a bounded wait.
///
/// Built on posix_spawn and waitpid rather than Foundation's Process: it runs inside libgit2
/// callbacks on GitKit's worker threads, where Process's SIGCHLD-driven reaping was seen to
/// never notice the child's exit (leaving waitUntilExit blocked on a zombie). Pipes are
/// close-on-exec so concurrently spawned children never inherit each other's ends.
enum Subprocess {
    struct Output {
        var status: Int32
        var stdout: Data
        var stderr: Data
    }

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    /// `arguments[0]` is looked up on PATH.
    static func run(_ arguments: [String], stdin: Data? = nil, timeout: TimeInterval = 30) throws -> Output {
        var inFds: [Int32] = [-1, -1], outFds: [Int32] = [-1, -1], errFds: [Int32] = [-1, -1]
        guard pipe(&inFds) == 0, pipe(&outFds) == 0, pipe(&errFds) == 0 else {
            throw SpawnError(description: "pipe failed: \(String(cString: strerror(errno)))")
        }
        for fd in inFds + outFds + errFds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inFds[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outFds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errFds[1], 2)
        // Close everything else in the child: descriptors other threads opened without
        // close-on-exec (Foundation's process-monitoring sockets among them) must not leak
        // into helpers that may start long-lived daemons (gpg-agent).
        ytempire_spawn_closefrom(&actions, 3)
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        close(inFds[0]); close(outFds[1]); close(errFds[1])
        guard rc == 0 else {
            close(inFds[1]); close(outFds[0]); close(errFds[0])
            throw SpawnError(description: "cannot run \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        // Feed stdin from another thread so a child that writes before reading cannot deadlock us.
        let stdinWrite = inFds[1]
        let writer = stdin.map { data in
            Thread {
                data.withUnsafeBytes { raw in
                    var off = 0
                    while off < raw.count {
                        let n = write(stdinWrite, raw.baseAddress! + off, raw.count - off)
                        if n < 0 { if errno == EINTR { continue }; break }
                        off += n
                    }
                }
                close(stdinWrite)
            }
        }
        if let writer { writer.start() } else { close(inFds[1]) }

        var out = Data(), err = Data()
        var fds = [pollfd(fd: outFds[0], events: Int16(POLLIN), revents: 0), pollfd(fd: errFds[0], events: Int16(POLLIN), revents: 0)]
        let deadline = Date().addingTimeInterval(timeout)
        var killed = false
        var buf = [UInt8](repeating: 0, count: 65536)
        while fds.contains(where: { $0.fd >= 0 }) {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { kill(pid, SIGKILL); killed = true; break }
            let prc = poll(&fds, nfds_t(fds.count), Int32(min(left, 1) * 1000))
            if prc < 0 { if errno == EINTR { continue }; break }
            for i in fds.indices where fds[i].fd >= 0 && fds[i].revents != 0 {
                let n = read(fds[i].fd, &buf, buf.count)
                if n > 0 {
                    if i == 0 { out.append(buf, count: n) } else { err.append(buf, count: n) }
                } else if n == 0 || errno != EINTR {
                    close(fds[i].fd)
                    fds[i].fd = -1
                }
            }
        }
        for f in fds where f.fd >= 0 { close(f.fd) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7f) == 0
        let code = killed ? 124 : (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f))
        return Output(status: code, stdout: out, stderr: err)
    }
}
