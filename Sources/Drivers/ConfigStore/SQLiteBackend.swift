import DriverKit
import EmpireModel
import Foundation
import GRDB
import Synchronization

/// The config database in a SQLite file, through GRDB. Opened (and migrated) on first use.
final class SQLiteBackend: ConfigBackend {
  let path: String
  private let queue = Mutex<DatabaseQueue?>(nil)

  init(path: String) { self.path = path }

  static let migrator: DatabaseMigrator = {
    var m = DatabaseMigrator()
    for mig in Schema.migrations {
      m.registerMigration(mig.id) { db in
        for s in mig.statements(.sqlite) { try db.execute(sql: s) }
      }
    }
    return m
  }()

  private func open() throws -> DatabaseQueue {
    try queue.withLock { q in
      if let q { return q }
      do {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) {
          try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        // SQLite follows links: one planted in place of the database or a sidecar is refused first.
        for file in [path] + ["-wal", "-shm", "-journal"].map({ path + $0 }) {
          if let refused = PrivateFile.problem(file, what: "the runtime config store") { throw ConfigStoreError(refused.message) }
        }
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.label = "ytempire.configStore"
        let db = try DatabaseQueue(path: path, configuration: config)
        try Self.migrator.migrate(db)
        q = db
        return db
      } catch let e as DatabaseError {
        throw ConfigStoreError("config store \(path): \(e.message ?? "\(e.resultCode)")")
      } catch let e as ConfigStoreError {
        throw e
      } catch {
        throw ConfigStoreError("config store \(path): \(error)")
      }
    }
  }

  func migrate() async throws -> [String] {
    let db = try open()
    return try await wrap { try await db.read { try Self.migrator.appliedMigrations($0) } }
  }

  func select(_ table: Table, owners: [String]) async throws -> [StoredRow] {
    guard !owners.isEmpty else { return [] }
    let db = try open()
    return try await wrap { try await db.read { try Self.select($0, table, owners: owners) } }
  }

  func sync(owner: String, tables: [Table], desired: [String: [Row]], now: Date, renamedFrom: String?) async throws -> [String: [Row]] {
    let db = try open()
    return try await wrap {
      try await db.write { db in
        var after: [String: [Row]] = [:]
        for t in tables {
          if let old = renamedFrom, old != owner {
            var text = SQLText(.sqlite)
            try db.execute(sql: text.rename(t), arguments: [owner, old])
          }
          let current = try Self.select(db, t, owners: [owner])
          for step in try SyncPlan.steps(t, owner: owner, current: current, desired: desired[t.name] ?? []) {
            var text = SQLText(.sqlite)
            let (sql, names) = text.statement(step, t)
            let args = SQLArg.args(names, step.row, t, now: now).map(Self.value)
            try db.execute(sql: sql, arguments: StatementArguments(args))
            if case .insert = step { continue }
            if db.changesCount != 1 { throw SyncPlan.vanished(t, step.row) }
          }
          after[t.name] = try Self.select(db, t, owners: [owner]).filter(\.owned).map(\.row)
        }
        return after
      }
    }
  }

  func close() async {
    let db = queue.withLock { q -> DatabaseQueue? in
      defer { q = nil }
      return q
    }
    try? db?.close()
  }

  private static func select(_ db: Database, _ t: Table, owners: [String]) throws -> [StoredRow] {
    var text = SQLText(.sqlite)
    let sql = text.select(t)
    let list = JSONValue.array(owners.map(JSONValue.string)).canonicalString
    return try GRDB.Row.fetchAll(db, sql: sql, arguments: [list]).map { r in
      var row: Row = [:]
      for c in t.dataColumns {
        let v = read(r[c.name] as DatabaseValue, c.type)
        if v != .null { row[c.name] = v }
      }
      return StoredRow(row: row, managedBy: r["managed_by"] as String?)
    }
  }

  private static func read(_ v: DatabaseValue, _ type: ColumnType) -> JSONValue {
    switch (v.storage, type) {
    case (.null, _): return .null
    case (.int64(let i), .bool): return .bool(i != 0)
    case (.int64(let i), _): return type == .text ? .string(String(i)) : .int(i)
    case (.double(let d), .text): return .string("\(d)")
    case (.double(let d), .bool): return .bool(d != 0)
    case (.double(let d), _): return Canonical.normalize(.double(d))
    case (.string(let s), .json): return parseJSONColumn(s)
    case (.string(let s), .int), (.string(let s), .double): return Double(s).map { Canonical.normalize(.double($0)) } ?? .string(s)
    case (.string(let s), .bool):
      return s == "1" || s.lowercased() == "true" ? .bool(true) : s == "0" || s.lowercased() == "false" ? .bool(false) : .string(s)
    case (.string(let s), .text): return .string(s)
    case (.blob(let b), _): return .string(String(decoding: b, as: UTF8.self))
    }
  }

  private static func value(_ a: SQLArg) -> (any DatabaseValueConvertible)? {
    switch a {
    case .null: return nil
    case .bool(let b): return b
    case .int(let i): return i
    case .double(let d): return d
    case .text(let s): return s
    case .timestamp(let d):
      return ISO8601DateFormatter.string(
        from: d, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withInternetDateTime, .withFractionalSeconds])
    }
  }

  private func wrap<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let e as DatabaseError {
      throw ConfigStoreError("config store \(path): \(e.message ?? "\(e.resultCode)")")
    }
  }
}
