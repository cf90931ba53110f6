import DriverKit
import Foundation
import PostgresState
import Reconciler

/// `ytempire state migrate --from URL --to URL`: copies a whole state store, row for row, from
/// SQLite to PostgreSQL or back, holding both stores' writer locks, into a target that must be
/// empty; then reads the target back and verifies its audit chain.
public enum StateMigration {
  public struct Report: Sendable {
    public var from: String
    public var to: String
    public var counts: [(table: String, rows: Int)]
    public var audit: AuditHead
  }

  /// One end: `sqlite:///state/dir` (or `…/state.sqlite`) or `postgres://user@host:port/db[?sslmode=…]`.
  /// A postgres URL without a password takes `PGPASSWORD` from `environment`.
  struct End {
    let store: any StateStore
    let shown: String
    let lock: StateDirectoryLock?
  }

  static func open(_ url: String, role: String, environment: [String: String], hostName: String) throws(WorkspaceError) -> End {
    do {
      if url.hasPrefix("sqlite://") {
        var path = String(url.dropFirst("sqlite://".count))
        guard path.hasPrefix("/"), !path.contains("?"), !path.contains("#") else {
          throw StateStoreError("--\(role): write sqlite:///absolute/state/directory (three slashes)")
        }
        if path.hasSuffix("/state.sqlite") { path = String(path.dropLast("/state.sqlite".count)) }
        let lock = try StateDirectoryLock(stateDir: path)
        return End(store: try SQLiteStateStore(stateDir: path), shown: "sqlite://" + path + "/state.sqlite", lock: lock)
      }
      guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
        throw StateStoreError("--\(role) must be sqlite:///state/directory or postgres://user@host:5432/database")
      }
      let settings = try PostgresStateSettings.parse(url, password: environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : $0 })
      let store = try PostgresStateStore(settings)
      try store.lockWriter(host: hostName, pid: Int(getpid()), now: Date())
      return End(store: store, shown: settings.displayName, lock: nil)
    } catch {
      throw WorkspaceError(.stateDirectory, "\(error)")
    }
  }

  public static func migrate(
    from: String, to: String, environment: [String: String] = ProcessInfo.processInfo.environment,
    hostName: String = AuditActor.localHost()
  ) throws(WorkspaceError) -> Report {
    let source = try open(from, role: "from", environment: environment, hostName: hostName)
    let target = try open(to, role: "to", environment: environment, hostName: hostName)
    defer {
      (source.store as? PostgresStateStore)?.close()
      (target.store as? PostgresStateStore)?.close()
    }
    guard source.shown != target.shown else {
      throw WorkspaceError(.stateDirectory, "--from and --to name the same store (\(source.shown))")
    }
    do {
      var dump = try source.store.dump()
      // Credentials (cached access tokens) stay behind: each process obtains its own again.
      dump.cache.removeAll { CachedSecrets.isSecret($0.key) }
      _ = try source.store.verifyAudit()
      try target.store.restore(dump)
      let back = try target.store.dump()
      guard back.counts.map(\.rows) == dump.counts.map(\.rows) else {
        throw StateStoreError("the copy in \(target.shown) does not hold what was read from \(source.shown)")
      }
      let head = try target.store.verifyAudit()
      guard head == (try source.store.auditHead()) else {
        throw StateStoreError("the audit chain of \(target.shown) does not end where \(source.shown)'s does")
      }
      return Report(from: source.shown, to: target.shown, counts: dump.counts, audit: head)
    } catch let e as WorkspaceError {
      throw e
    } catch {
      throw WorkspaceError(.stateDirectory, "state migrate: \(error)")
    }
  }
}
