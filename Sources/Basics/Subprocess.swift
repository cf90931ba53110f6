import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Runs programs: to completion with a deadline (``run(_:stdin:environment:directory:timeout:outputLimit:mergingStderr:)``),
/// the same off Swift's cooperative pool (``runOnThread(_:stdin:environment:directory:timeout:outputLimit:mergingStderr:)``),
/// or in the background (``start(_:environment:directory:stdin:stdout:stderr:)``). The one place
/// the program spawns processes: GitKit (ssh-keygen, gpg), the Prometheus driver (promtool), the tests.
///
/// Built on posix_spawn and waitpid rather than Foundation's Process. Process watches each
/// child through a socket the child inherits and, when that socket closes, waits for the
/// child with a *blocking* `waitpid` on its one monitoring thread. A child that closes its
/// inherited descriptors while it keeps running (sshd and gpg-agent do, at start) therefore
/// blocks that thread for the child's whole life, and no other Process of the program is
/// ever seen to exit (every `waitUntilExit` hangs). Here each caller waits for its own child
/// only. In every child: pipes are close-on-exec and every descriptor from 3 up is closed
/// (closefrom, glibc ≥ 2.34), so concurrently spawned children never inherit each other's
/// ends; the signal mask is emptied and every signal's disposition reset to its default.
public enum Subprocess {
  public struct Output: Sendable {
    /// The exit status; 128 + N when killed by signal N; 124 when killed at the deadline.
    public var status: Int32
    /// Standard output (with `mergingStderr`, standard error too, interleaved as written).
    public var stdout: Data
    public var stderr: Data
    /// Killed at the deadline (`status` is then 124).
    public var timedOut: Bool
    /// Some output was dropped: beyond `outputLimit`.
    public var truncated: Bool
  }

  /// The program could not be started (not found, not executable, a bad directory, no pipes).
  public struct SpawnError: Error, Sendable, CustomStringConvertible {
    /// `arguments[0]`.
    public var program: String
    /// What failed, e.g. "No such file or directory".
    public var reason: String
    public var description: String { "cannot run \(program): \(reason)" }
  }

  /// Where a background child's stdout or stderr goes.
  public enum Sink: Sendable {
    case null
    /// Appended to this file (created 0600 when missing).
    case file(String)
    /// This descriptor of the caller (a socket, for an inetd-style child).
    case descriptor(Int32)
  }

  /// Runs `arguments` to completion (`arguments[0]` looked up on PATH unless it has a `/`).
  /// The child gets this process's environment with `environment`'s entries set over it,
  /// `directory` as its working directory, and `stdin` (or an empty input). When `timeout`
  /// seconds have passed and it has not exited, it is killed (SIGKILL; status 124, `timedOut`).
  /// At most `outputLimit` bytes of each stream are kept (the rest is read and dropped, so the
  /// child never blocks on a full pipe); with `mergingStderr` stderr goes to the stdout pipe.
  /// Blocks the calling thread.
  public static func run(
    _ arguments: [String], stdin: Data? = nil, environment: [String: String] = [:],
    directory: String? = nil, timeout: TimeInterval = 30, outputLimit: Int? = nil,
    mergingStderr: Bool = false
  ) throws(SpawnError) -> Output {
    let program = arguments.first ?? ""
    var inFds: [Int32] = [-1, -1]
    var outFds: [Int32] = [-1, -1]
    var errFds: [Int32] = [-1, -1]
    guard pipe(&inFds) == 0 else { throw SpawnError(program: program, reason: "pipe failed: \(String(cString: strerror(errno)))") }
    guard pipe(&outFds) == 0 else {
      let e = errno
      close(inFds[0])
      close(inFds[1])
      throw SpawnError(program: program, reason: "pipe failed: \(String(cString: strerror(e)))")
    }
    if !mergingStderr {
      guard pipe(&errFds) == 0 else {
        let e = errno
        for fd in inFds + outFds { close(fd) }
        throw SpawnError(program: program, reason: "pipe failed: \(String(cString: strerror(e)))")
      }
    }
    let all = (inFds + outFds + errFds).filter { $0 >= 0 }
    for fd in all { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    let pid: pid_t
    do {
      pid = try spawn(arguments, environment: environment, directory: directory) { actions in
        posix_spawn_file_actions_adddup2(&actions, inFds[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outFds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, mergingStderr ? outFds[1] : errFds[1], 2)
      }
    } catch {
      for fd in all { close(fd) }
      throw error
    }
    close(inFds[0])
    close(outFds[1])
    if !mergingStderr { close(errFds[1]) }
    // Feed stdin from another thread so a child that writes before reading cannot deadlock us.
    let stdinWrite = inFds[1]
    if let stdin {
      Thread {
        stdin.withUnsafeBytes { raw in
          var off = 0
          while off < raw.count {
            let n = write(stdinWrite, raw.baseAddress! + off, raw.count - off)
            if n < 0 {
              if errno == EINTR { continue }
              break
            }
            off += n
          }
        }
        close(stdinWrite)
      }.start()
    } else {
      close(stdinWrite)
    }

    let limit = max(outputLimit ?? Int.max, 0)
    var streams: [[UInt8]] = [[], []]
    var truncated = false
    var fds = [pollfd(fd: outFds[0], events: Int16(POLLIN), revents: 0)]
    if !mergingStderr { fds.append(pollfd(fd: errFds[0], events: Int16(POLLIN), revents: 0)) }
    let deadline = Date().addingTimeInterval(timeout)
    var timedOut = false
    var buf = [UInt8](repeating: 0, count: 65536)
    while fds.contains(where: { $0.fd >= 0 }) {
      let left = deadline.timeIntervalSinceNow
      if left <= 0 {
        timedOut = true
        break
      }
      let prc = poll(&fds, nfds_t(fds.count), Int32(min(left, 1) * 1000) + 1)
      if prc < 0 {
        if errno == EINTR { continue }
        break
      }
      for i in fds.indices where fds[i].fd >= 0 && fds[i].revents != 0 {
        let n = read(fds[i].fd, &buf, buf.count)
        if n > 0 {
          let keep = min(n, limit - streams[i].count)
          if keep > 0 { streams[i] += buf[0..<keep] }
          if keep < n { truncated = true }
        } else if n == 0 || errno != EINTR {
          close(fds[i].fd)
          fds[i].fd = -1
        }
      }
    }
    for f in fds where f.fd >= 0 { close(f.fd) }
    // The output closed (or the deadline passed): the exit follows, but a child that closed
    // its output and kept running is still held to the deadline.
    var raw: Int32 = 0
    while !timedOut {
      let r = waitpid(pid, &raw, WNOHANG)
      if r == pid {
        return Output(status: decode(raw), stdout: Data(streams[0]), stderr: Data(streams[1]), timedOut: false, truncated: truncated)
      }
      if r < 0 && errno != EINTR {
        return Output(status: -1, stdout: Data(streams[0]), stderr: Data(streams[1]), timedOut: false, truncated: truncated)
      }
      if deadline.timeIntervalSinceNow <= 0 {
        timedOut = true
        break
      }
      usleep(1000)
    }
    kill(pid, SIGKILL)
    while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
    return Output(status: 124, stdout: Data(streams[0]), stderr: Data(streams[1]), timedOut: true, truncated: truncated)
  }

  /// ``run(_:stdin:environment:directory:timeout:outputLimit:mergingStderr:)`` on a thread of
  /// its own, so that the wait never blocks Swift's cooperative pool.
  public static func runOnThread(
    _ arguments: [String], stdin: Data? = nil, environment: [String: String] = [:],
    directory: String? = nil, timeout: TimeInterval = 30, outputLimit: Int? = nil,
    mergingStderr: Bool = false
  ) async throws(SpawnError) -> Output {
    let result: Result<Output, SpawnError> = await withCheckedContinuation { cont in
      Thread {
        do throws(SpawnError) {
          cont.resume(
            returning: .success(
              try run(
                arguments, stdin: stdin, environment: environment, directory: directory,
                timeout: timeout, outputLimit: outputLimit, mergingStderr: mergingStderr)))
        } catch {
          cont.resume(returning: .failure(error))
        }
      }.start()
    }
    return try result.get()
  }

  /// Starts `arguments` in the background: stdin from /dev/null (or the descriptor `stdin`),
  /// stdout and stderr to the sinks.
  public static func start(
    _ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
    stdin: Int32? = nil, stdout: Sink = .null, stderr: Sink = .null
  ) throws(SpawnError) -> Child {
    let pid = try spawn(arguments, environment: environment, directory: directory) { actions in
      if let stdin {
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
      } else {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
      }
      for (fd, sink) in [(Int32(1), stdout), (Int32(2), stderr)] {
        switch sink {
        case .null: posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
        case .file(let path): posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        case .descriptor(let d): posix_spawn_file_actions_adddup2(&actions, d, fd)
        }
      }
    }
    return Child(pid: pid)
  }

  /// A background child. Reaped by whoever first sees it exit (`isRunning`, `wait`, `stop`).
  public final class Child: Sendable {
    public let pid: Int32
    private let exit = Mutex<Int32?>(nil)

    init(pid: Int32) { self.pid = pid }

    /// The exit status (as ``Output/status``) once the child has exited and been reaped.
    public var status: Int32? {
      exit.withLock { s in
        if s == nil {
          var raw: Int32 = 0
          if waitpid(pid, &raw, WNOHANG) == pid { s = Subprocess.decode(raw) }
        }
        return s
      }
    }

    public var isRunning: Bool { status == nil }

    public func signal(_ sig: Int32) {
      if isRunning { kill(pid, sig) }
    }

    /// Waits up to `timeout` seconds for the exit; nil if the child still runs.
    @discardableResult
    public func wait(timeout: TimeInterval) -> Int32? {
      let deadline = Date().addingTimeInterval(timeout)
      while true {
        if let s = status { return s }
        if Date() >= deadline { return nil }
        usleep(5_000)
      }
    }

    /// SIGTERM, then SIGKILL after `grace` seconds; returns the exit status.
    @discardableResult
    public func stop(grace: TimeInterval = 2) -> Int32? {
      signal(SIGTERM)
      if let s = wait(timeout: grace) { return s }
      signal(SIGKILL)
      return wait(timeout: 10)
    }
  }

  static func decode(_ raw: Int32) -> Int32 {
    (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
  }

  // posix_spawn_file_actions_addclosefrom_np (glibc ≥ 2.34) and _addchdir_np (glibc ≥ 2.29,
  // macOS ≥ 10.15) are declared only under _GNU_SOURCE, which Swift's Glibc module lacks:
  // looked up once at run time.
  private typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
  private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
  #if canImport(Darwin)
    private nonisolated(unsafe) static let defaultHandle = UnsafeMutableRawPointer(bitPattern: -2)
  #else
    private nonisolated(unsafe) static let defaultHandle: UnsafeMutableRawPointer? = nil
  #endif
  private static let addClosefrom = dlsym(defaultHandle, "posix_spawn_file_actions_addclosefrom_np").map {
    unsafeBitCast($0, to: AddClosefrom.self)
  }
  private static let addChdir = dlsym(defaultHandle, "posix_spawn_file_actions_addchdir_np").map { unsafeBitCast($0, to: AddChdir.self) }

  /// posix_spawn(p) with every descriptor from 3 up closed in the child and the signal mask
  /// and dispositions reset (a test process blocks signals its children must not inherit).
  private static func spawn(
    _ arguments: [String], environment: [String: String], directory: String?,
    _ setup: (inout posix_spawn_file_actions_t) -> Void
  ) throws(SpawnError) -> pid_t {
    guard let program = arguments.first, !program.isEmpty else { throw SpawnError(program: "", reason: "nothing to run") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    setup(&actions)
    if let directory {
      guard let addChdir, addChdir(&actions, directory) == 0 else {
        throw SpawnError(program: program, reason: "cannot change to \(directory) in the child")
      }
    }
    // Close everything else in the child: descriptors other threads opened without
    // close-on-exec (Foundation's process-monitoring sockets among them) must not leak
    // into helpers that may start long-lived daemons (gpg-agent).
    if let addClosefrom { _ = addClosefrom(&actions, 3) }
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var empty = sigset_t()
    var all = sigset_t()
    sigemptyset(&empty)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attr, &empty)
    posix_spawnattr_setsigdefault(&attr, &all)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for e in envp { free(e) } }
    var pid: pid_t = 0
    let rc =
      program.contains("/")
      ? posix_spawn(&pid, program, &actions, &attr, argv, envp)
      : posix_spawnp(&pid, program, &actions, &attr, argv, envp)
    guard rc == 0 else { throw SpawnError(program: program, reason: String(cString: strerror(rc))) }
    return pid
  }
}
