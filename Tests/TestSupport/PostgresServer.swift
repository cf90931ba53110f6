import Foundation
import Synchronization

/// A throwaway PostgreSQL server on 127.0.0.1 for tests: Debian's binaries
/// (`/usr/lib/postgresql/<version>/bin`), a cluster in a temporary directory with trust
/// authentication for the `postgres` user, one database (`ytempire`), a free port. Stopped
/// (`pg_ctl stop -m fast`) and its directory removed by `stop()` or when released.
/// PostgreSQL refuses to run as root; as root, the cluster belongs to the `postgres` user
/// and its programs run through `runuser`.
public final class PostgresServer: Sendable {
  public let port: Int
  public let database: String
  public let directory: String
  private let bin: String
  /// Server settings beyond the test cluster's, as postgres options.
  private let extraOptions: String
  private let asPostgres: [String]
  private let stopped = Mutex(false)

  /// `postgres://postgres@127.0.0.1:<port>/<database>`.
  public var url: String { url(database: database) }
  public func url(database: String) -> String { "postgres://postgres@127.0.0.1:\(port)/\(database)" }

  /// The newest `/usr/lib/postgresql/*/bin` that has initdb, pg_ctl and psql.
  public static var binDirectory: String? {
    let root = "/usr/lib/postgresql"
    let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
    let dirs = versions.sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }.map { "\(root)/\($0)/bin" }
    return dirs.first { d in
      ["initdb", "pg_ctl", "psql", "pg_isready"].allSatisfy { FileManager.default.isExecutableFile(atPath: "\(d)/\($0)") }
    }
  }

  /// Whether PostgreSQL's server binaries are installed (`make deps` installs them).
  public static var isAvailable: Bool { binDirectory != nil }

  /// Why a test that needs PostgreSQL cannot run, or nil when it can.
  public static var unavailableReason: String? {
    isAvailable
      ? nil : "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); `make deps` or `apt-get install postgresql` installs it"
  }

  /// `settings`: server settings beyond the test cluster's (`-c name=value` each).
  public static func start(database: String = "ytempire", settings: [String: String] = [:]) throws -> PostgresServer {
    guard let bin = binDirectory else { throw Processes.Failure(description: unavailableReason!) }
    return try PostgresServer(bin: bin, database: database, settings: settings)
  }

  private init(bin: String, database: String, settings: [String: String]) throws {
    self.bin = bin
    self.database = database
    self.extraOptions = settings.sorted { $0.key < $1.key }.map { " -c \($0.key)=\($0.value)" }.joined()
    let root = geteuid() == 0
    asPostgres =
      root
      ? [FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser") ? "/usr/sbin/runuser" : "runuser", "-u", "postgres", "--"] : []
    let base = FileManager.default.temporaryDirectory.path + "/ytempire-pg-\(UUID().uuidString.prefix(8))"
    directory = base
    try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    if root { try Processes.run(["chown", "postgres:postgres", base]) }
    let data = base + "/data"
    do {
      let r = try PostgresServer.spawn(
        asPostgres + [
          "\(bin)/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
          "--locale=C", "--no-sync",
        ], cwd: base)
      guard r.status == 0 else { throw Processes.Failure(description: "initdb exited \(r.status): \(r.output)") }
    } catch {
      try? FileManager.default.removeItem(atPath: base)
      throw error
    }
    var lastError: Error = Processes.Failure(description: "postgres did not start")
    var started: Int?
    for _ in 0..<3 {
      let port = try Processes.freePort()
      // -F: no fsync (a test cluster); -k: the socket in our directory, not /var/run/postgresql.
      let r = try PostgresServer.spawn(
        asPostgres + [
          "\(bin)/pg_ctl", "-D", data, "-l", base + "/server.log", "-w", "-t", "60",
          "-o", "-h 127.0.0.1 -p \(port) -k \(base) -F\(extraOptions)", "start",
        ], cwd: base)
      if r.status == 0, PostgresServer.waitReady(bin: bin, port: port, deadline: Date().addingTimeInterval(30)) {
        started = port
        break
      }
      _ = try? PostgresServer.spawn(asPostgres + ["\(bin)/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], cwd: base)
      let log = (try? String(contentsOfFile: base + "/server.log", encoding: .utf8)) ?? ""
      lastError = Processes.Failure(description: "postgres did not start on port \(port): \(r.output) \(log.suffix(2000))")
    }
    guard let started else {
      try? FileManager.default.removeItem(atPath: base)
      throw lastError
    }
    port = started
    do {
      try Processes.run(["\(bin)/createdb", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", database])
    } catch {
      stop()
      throw error
    }
  }

  private static func waitReady(bin: String, port: Int, deadline: Date) -> Bool {
    while Date() < deadline {
      if let r = try? Processes.run(
        ["\(bin)/pg_isready", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-t", "2"], check: false),
        r.status == 0
      {
        return true
      }
      usleep(100_000)
    }
    return false
  }

  /// Creates another database on this server; returns its URL.
  public func createDatabase(_ name: String) throws -> String {
    try Processes.run(["\(bin)/createdb", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", name])
    return url(database: name)
  }

  /// Runs SQL through psql (stopping at the first error) and returns the rows, one array
  /// of fields per row (unaligned, tab-separated; NULL prints as an empty field, booleans as t/f).
  @discardableResult
  public func psql(_ sql: String, database: String? = nil) throws -> [[String]] {
    let out = try Processes.run([
      "\(bin)/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres",
      "-d", database ?? self.database, "-At", "-F", "\t", "-c", sql,
    ])
    return out.stdout.split(separator: "\n", omittingEmptySubsequences: true).map { line in
      line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
    }
  }

  /// Stops the server (fast shutdown) and removes its directory; safe to call twice.
  /// Restarts the server (`pg_ctl restart -m fast`): every session ends, the port stays.
  public func restart() throws {
    let r = try PostgresServer.spawn(
      asPostgres + [
        "\(bin)/pg_ctl", "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60", "-m", "fast",
        "-o", "-h 127.0.0.1 -p \(port) -k \(directory) -F\(extraOptions)", "restart",
      ], cwd: directory)
    guard r.status == 0, PostgresServer.waitReady(bin: bin, port: port, deadline: Date().addingTimeInterval(30)) else {
      throw Processes.Failure(description: "pg_ctl restart exited \(r.status): \(r.output)")
    }
  }

  public func stop() {
    let first = stopped.withLock { s -> Bool in
      defer { s = true }
      return !s
    }
    guard first else { return }
    _ = try? PostgresServer.spawn(
      asPostgres + ["\(bin)/pg_ctl", "-D", directory + "/data", "-m", "fast", "-w", "-t", "30", "stop"],
      cwd: directory)
    try? FileManager.default.removeItem(atPath: directory)
  }

  deinit { stop() }

  // MARK: spawning

  /// Runs a command to completion, its output going to a file, not a pipe: pg_ctl leaves the
  /// server running in the background, and a server holding a pipe's end would keep the
  /// wait for the command's output open for the server's life.
  private static func spawn(_ args: [String], cwd: String) throws -> (status: Int32, output: String) {
    let outPath = FileManager.default.temporaryDirectory.path + "/ytempire-pg-cmd-\(UUID().uuidString.prefix(8)).log"
    defer { try? FileManager.default.removeItem(atPath: outPath) }
    let child = try Processes.start(args, cwd: cwd, stdout: .file(outPath), stderr: .file(outPath))
    guard let code = child.wait(timeout: 300) else {
      child.stop(grace: 5)
      throw Processes.Failure(description: "\(args.joined(separator: " ")) did not finish within 300 s")
    }
    let output = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    return (code, output)
  }
}
