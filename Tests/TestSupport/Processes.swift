import Basics
import Foundation
import GitKit
import Synchronization

/// Runs external programs for tests and keeps track of background ones so they can be
/// stopped even when a test fails.
public enum Processes {
  /// A background child (Basics' posix_spawn helper; see ``Subprocess`` for why not Foundation's Process).
  public typealias Child = Subprocess.Child

  public struct Output: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
  }

  public struct Failure: Error, CustomStringConvertible {
    public var description: String
  }

  /// Runs `args[0]` (looked up on PATH) to completion, within `timeout` seconds (killed
  /// then, status 124).
  @discardableResult
  public static func run(
    _ args: [String], cwd: String? = nil, env: [String: String] = [:], stdin: String? = nil,
    check: Bool = true, timeout: TimeInterval = 600
  ) throws -> Output {
    let r: Subprocess.Output
    do {
      r = try Subprocess.run(args, stdin: stdin.map { Data($0.utf8) }, environment: env, directory: cwd, timeout: timeout)
    } catch {
      throw Failure(description: "\(args.joined(separator: " ")): \(error)")
    }
    let result = Output(
      status: r.status, stdout: String(decoding: r.stdout, as: UTF8.self), stderr: String(decoding: r.stderr, as: UTF8.self))
    if check && result.status != 0 {
      throw Failure(description: "\(args.joined(separator: " ")) exited \(result.status): \(result.stderr)")
    }
    return result
  }

  /// Starts `args` in the background (stdin /dev/null; stdout and stderr to /dev/null or a file).
  public static func start(
    _ args: [String], cwd: String? = nil, env: [String: String] = [:], stdin: Int32? = nil,
    stdout: Subprocess.Sink = .null, stderr: Subprocess.Sink = .null
  ) throws -> Child {
    do {
      return try Subprocess.start(args, environment: env, directory: cwd, stdin: stdin, stdout: stdout, stderr: stderr)
    } catch {
      throw Failure(description: "\(args.joined(separator: " ")): \(error)")
    }
  }

  /// A TCP socket (close-on-exec) bound to a free port of 127.0.0.1, listening with `backlog`
  /// when given (else bound only: connecting to it is refused). `reuseAddress`: SO_REUSEADDR,
  /// inherited by accepted connections, so another listener can bind the port later.
  public static func loopbackSocket(listening backlog: Int32? = nil, reuseAddress: Bool = false) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw Failure(description: "socket failed: \(String(cString: strerror(errno)))") }
    if reuseAddress {
      var one: Int32 = 1
      _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
      p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
        bind(fd, sp, len) == 0 && (backlog.map { listen(fd, $0) == 0 } ?? true) && getsockname(fd, sp, &len) == 0
      }
    }
    guard ok else {
      let why = String(cString: strerror(errno))
      close(fd)
      throw Failure(description: "bind/listen on 127.0.0.1:0 failed: \(why)")
    }
    return (fd, Int(UInt16(bigEndian: addr.sin_port)))
  }

  /// A free TCP port on 127.0.0.1 (bound, then released: only for servers that cannot bind
  /// port 0 themselves and report the port, or for a port nothing listens on).
  public static func freePort() throws -> Int {
    let (fd, port) = try loopbackSocket()
    close(fd)
    return port
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

/// The names tests used with Foundation's Process, on the posix_spawn child.
extension Subprocess.Child {
  public var processIdentifier: Int32 { pid }
  /// The exit status; -1 while the child still runs.
  public var terminationStatus: Int32 { status ?? -1 }
  /// SIGTERM.
  public func terminate() { signal(SIGTERM) }
}

/// A `git daemon` on 127.0.0.1 serving every repository under `baseDir`, with push
/// (receive-pack) enabled. Stopped by `stop()` or when released.
public final class GitDaemon: Sendable {
  public let port: Int
  public let baseDir: String
  private let server: InetdServer

  /// `git daemon --inetd` per connection behind a port this process binds (port 0), so the
  /// port cannot be taken by someone else between choosing and binding.
  public init(baseDir: String) throws {
    // The daemon binary itself, not the `git` wrapper, so that a signal reaches it.
    server = try InetdServer([
      GitDaemon.executable, "--inetd", "--log-destination=none", "--base-path=\(baseDir)",
      "--export-all", "--enable=receive-pack", baseDir,
    ])
    port = server.port
    self.baseDir = baseDir
  }

  /// `git://127.0.0.1:<port>/<name>`.
  public func url(_ name: String) -> String { "git://127.0.0.1:\(port)/\(name)" }

  static let executable: String = {
    let out = try? Processes.run(["git", "--exec-path"])
    return (out?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? "/usr/lib/git-core") + "/git-daemon"
  }()

  /// Closes the port (connections refused from now on) and stops the children serving it.
  public func stop() { server.stop() }

  deinit { stop() }
}
