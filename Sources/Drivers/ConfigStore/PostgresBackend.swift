import DriverKit
import Foundation
import Logging
import PostgresNIO

/// The config database in PostgreSQL, through one PostgresNIO connection opened (and migrated)
/// on first use and reopened when it was closed. Uses of the connection are serialised, so a
/// transaction never interleaves with another statement.
actor PostgresBackend: ConfigBackend {
  let location: ConfigStoreLocation.Postgres
  let password: LazySecret?
  private var connection: PostgresConnection?
  private var migrated: [String]?
  private var busy = false
  private var waiters: [CheckedContinuation<Void, Never>] = []
  private var nextID = 1
  private let logger: Logger = {
    var l = Logger(label: "ytempire.configStore")
    l.logLevel = .error
    return l
  }()

  static let migrationsTable = "ytempire_schema_migrations"

  init(location: ConfigStoreLocation.Postgres, password: LazySecret?) {
    self.location = location
    self.password = password
  }

  /// A connection still open when the driver goes away is closed; the callback keeps it
  /// alive until it is (PostgresNIO insists a connection is closed before it is released).
  deinit {
    if let c = connection, !c.isClosed {
      c.close().whenComplete { _ in withExtendedLifetime(c) {} }
    }
  }

  private var displayName: String { "config store postgres://\(location.user)@\(location.host):\(location.port)/\(location.database)" }

  // MARK: serialisation

  private func acquire() async {
    if !busy {
      busy = true
      return
    }
    await withCheckedContinuation { waiters.append($0) }
  }

  private func release() {
    if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
  }

  private func exclusive<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
    await acquire()
    defer { release() }
    do {
      let c = try await open()
      return try await body(c)
    } catch let e as ConfigStoreError {
      throw e
    } catch let e as SecretUnavailable {
      throw e
    } catch {
      throw ConfigStoreError("\(displayName): \(Self.describe(error))")
    }
  }

  private func open() async throws -> PostgresConnection {
    if let c = connection, !c.isClosed {
      if migrated == nil { migrated = try await runMigrations(c) }
      return c
    }
    var pw = location.password
    if let password {
      guard pw == nil else {
        throw ConfigStoreError("\(displayName): the password is given both in the URL and as \(password.name); give it once")
      }
      do { pw = try password.resolve() } catch let e as SecretUnavailable { throw e } catch {
        throw SecretUnavailable(name: password.name, reason: "\(error)")
      }
    }
    let tls: PostgresConnection.Configuration.TLS
    switch location.tls {
    case .disable: tls = .disable
    case .require:
      var t = TLSConfiguration.makeClientConfiguration()
      t.certificateVerification = .none
      tls = .require(try NIOSSLContext(configuration: t))
    case .verifyFull: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
    }
    let config = PostgresConnection.Configuration(
      host: location.host, port: location.port, username: location.user,
      password: pw, database: location.database, tls: tls)
    nextID += 1
    let c = try await PostgresConnection.connect(configuration: config, id: nextID, logger: logger)
    connection = c
    migrated = try await runMigrations(c)
    return c
  }

  // MARK: operations

  func migrate() async throws -> [String] {
    try await exclusive { _ in migrated ?? [] }
  }

  func select(_ table: Table, owners: [String]) async throws -> [StoredRow] {
    guard !owners.isEmpty else { return [] }
    return try await exclusive { c in try await Self.select(c, table, owners: owners, logger: logger) }
  }

  func sync(owner: String, tables: [Table], desired: [String: [Row]], now: Date, renamedFrom: String?) async throws -> [String: [Row]] {
    try await exclusive { c in
      try await transaction(c) {
        var after: [String: [Row]] = [:]
        for t in tables {
          if let old = renamedFrom, old != owner {
            var text = SQLText(.postgres)
            var binds = PostgresBindings()
            binds.append(owner)
            binds.append(old)
            try await c.query(PostgresQuery(unsafeSQL: text.rename(t), binds: binds), logger: logger)
          }
          let current = try await Self.select(c, t, owners: [owner], logger: logger)
          for step in try SyncPlan.steps(t, owner: owner, current: current, desired: desired[t.name] ?? []) {
            var text = SQLText(.postgres)
            var (sql, names) = text.statement(step, t)
            if case .insert = step {} else { sql += " RETURNING 1" }
            var binds = PostgresBindings()
            for a in SQLArg.args(names, step.row, t, now: now) { Self.bind(a, &binds) }
            let rows = try await c.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            var n = 0
            for try await _ in rows { n += 1 }
            if case .insert = step { continue }
            if n != 1 { throw SyncPlan.vanished(t, step.row) }
          }
          after[t.name] = try await Self.select(c, t, owners: [owner], logger: logger).filter(\.owned).map(\.row)
        }
        return after
      }
    }
  }

  func close() async {
    await acquire()
    defer { release() }
    if let c = connection { try? await c.close() }
    connection = nil
    migrated = nil
  }

  // MARK: helpers

  private func transaction<T: Sendable>(_ c: PostgresConnection, _ body: () async throws -> T) async throws -> T {
    try await c.query("BEGIN", logger: logger)
    do {
      let v = try await body()
      try await c.query("COMMIT", logger: logger)
      return v
    } catch {
      do { try await c.query("ROLLBACK", logger: logger) } catch {
        try? await c.close()
        connection = nil
      }
      throw error
    }
  }

  /// Applies the pending migrations in one transaction (the migrations table locked, so two
  /// reconcilers starting together apply each migration once); returns all applied ids.
  private func runMigrations(_ c: PostgresConnection) async throws -> [String] {
    try await c.query(
      "CREATE TABLE IF NOT EXISTS \(unescaped: Self.migrationsTable) (id TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
      logger: logger)
    return try await transaction(c) {
      try await c.query("LOCK TABLE \(unescaped: Self.migrationsTable) IN ACCESS EXCLUSIVE MODE", logger: logger)
      var applied: [String] = []
      for try await id in try await c.query("SELECT id FROM \(unescaped: Self.migrationsTable) ORDER BY id", logger: logger).decode(
        String.self)
      {
        applied.append(id)
      }
      for m in Schema.migrations where !applied.contains(m.id) {
        for s in m.statements(.postgres) { try await c.query(PostgresQuery(unsafeSQL: s), logger: logger) }
        try await c.query("INSERT INTO \(unescaped: Self.migrationsTable) (id) VALUES (\(m.id))", logger: logger)
        applied.append(m.id)
      }
      return applied
    }
  }

  private static func select(_ c: PostgresConnection, _ t: Table, owners: [String], logger: Logger) async throws -> [StoredRow] {
    var text = SQLText(.postgres)
    var binds = PostgresBindings()
    binds.append(owners)
    let rows = try await c.query(PostgresQuery(unsafeSQL: text.select(t), binds: binds), logger: logger)
    var out: [StoredRow] = []
    for try await r in rows {
      let ra = r.makeRandomAccess()
      var row: Row = [:]
      for col in t.dataColumns {
        let cell = ra[col.name]
        let v: JSONValue
        switch col.type {
        case .text: v = JSONValue(try cell.decode(String?.self))
        case .bool: v = JSONValue(try cell.decode(Bool?.self))
        case .int: v = (try cell.decode(Int64?.self)).map(JSONValue.int) ?? .null
        case .double: v = (try cell.decode(Double?.self)).map { Canonical.normalize(.double($0)) } ?? .null
        case .json: v = (try cell.decode(String?.self)).map(parseJSONColumn) ?? .null
        }
        if v != .null { row[col.name] = v }
      }
      out.append(StoredRow(row: row, managedBy: try ra["managed_by"].decode(String?.self)))
    }
    return out
  }

  private static func bind(_ a: SQLArg, _ b: inout PostgresBindings) {
    switch a {
    case .null: b.appendNull()
    case .bool(let x): b.append(x)
    case .int(let x): b.append(x)
    case .double(let x): b.append(x)
    case .text(let x): b.append(x)
    case .timestamp(let x): b.append(x)
    }
  }

  /// PSQLError's description hides everything; say what the server said (never a password:
  /// servers do not echo them, and queries bind no secrets).
  static func describe(_ error: any Error) -> String { PostgresErrorText.describe(error) }

}

/// A PostgresNIO error as a message: the server's own text, detail and SQLSTATE, never the
/// query's binds (PSQLError's description hides everything; reflection shows too much).
public enum PostgresErrorText {
  public static func describe(_ error: any Error) -> String {
    if let e = error as? PSQLError {
      if let info = e.serverInfo {
        var parts = [info[.message] ?? "server error"]
        if let d = info[.detail] { parts.append(d) }
        if let s = info[.sqlState] { parts.append("SQLSTATE \(s)") }
        if let k = info[.constraintName] { parts.append("constraint \(k)") }
        return parts.joined(separator: "; ")
      }
      if e.code == .serverClosedConnection {
        return "the server closed the connection" + (e.underlying.map { " (\(Self.plain($0)))" } ?? "")
      }
      if e.code == .connectionError, let u = e.underlying {
        // NIO's words: "Connection refused", "Connect timeout (30 s)", "Connection reset by peer".
        return "cannot connect: \(Self.plain(u))"
      }
      if let u = e.underlying { return "\(e.code): \(Self.plain(u))" }
      return "\(e.code)"
    }
    return "\(error)"
  }

  /// An underlying error as its own words: NIO's I/O errors say what the system call said.
  static func plain(_ error: any Error) -> String {
    if let io = error as? IOError { return io.description }
    return "\(error)"
  }
}
