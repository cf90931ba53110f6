import DriverKit
import Foundation

/// A row as stored, with its owner marker.
struct StoredRow: Sendable {
  var row: Row
  var managedBy: String?
  var owned: Bool { managedBy == managedByValue }
}

/// What the driver needs of a database: the same operations over SQLite and PostgreSQL.
protocol ConfigBackend: Sendable {
  /// Applies the pending migrations; returns every applied migration id, oldest first.
  func migrate() async throws -> [String]
  /// Every row of `table` (owned or not) whose owner column is one of `owners`: one query.
  func select(_ table: Table, owners: [String]) async throws -> [StoredRow]
  /// In ONE transaction: makes the rows ytempire owns for `owner` in each table equal
  /// `desired[table]` (rows not owned are never touched; a desired row whose key an unowned
  /// row holds fails the whole transaction), and returns the owned rows afterwards.
  /// `renamedFrom`: first, in the same transaction, the rows ytempire owns under that old owner
  /// are re-keyed to `owner` by UPDATE (a rename keeps its rows; it neither deletes nor inserts them).
  func sync(owner: String, tables: [Table], desired: [String: [Row]], now: Date, renamedFrom: String?) async throws -> [String: [Row]]
  func close() async
}

/// The statements that converge one resource's rows in one table, planned from the rows read
/// inside the transaction.
enum SyncPlan {
  enum Step: Sendable {
    case insert(Row)
    case update(Row)
    case delete(Row)
  }

  static func steps(_ table: Table, owner: String, current: [StoredRow], desired: [Row]) throws -> [Step] {
    var byKey: [String: StoredRow] = [:]
    for r in current { byKey[Canonical.rowKey(r.row, table)] = r }
    var steps: [Step] = []
    var wanted = Set<String>()
    for d in desired {
      let k = Canonical.rowKey(d, table)
      wanted.insert(k)
      if let cur = byKey[k] {
        guard cur.owned else { throw notOwned(table, owner: owner, key: k, managedBy: cur.managedBy) }
        if Canonical.row(cur.row, table) != d { steps.append(.update(d)) }
      } else {
        steps.append(.insert(d))
      }
    }
    for r in current where r.owned && !wanted.contains(Canonical.rowKey(r.row, table)) {
      steps.insert(.delete(r.row), at: 0)  // deletes first: a renamed key never collides with itself
    }
    return steps
  }

  static func notOwned(_ table: Table, owner: String, key: String, managedBy: String?) -> ConfigStoreError {
    let who = managedBy.map { "managed_by = '\($0)'" } ?? "managed_by is NULL"
    let what = table.singleRow ? "\(table.name) row '\(owner)'" : "\(table.name) row '\(owner)/\(key)'"
    return ConfigStoreError(
      "\(what) exists and is not managed by ytempire (\(who)); ytempire never overwrites it: "
        + "rename the resource, or remove the row, or set managed_by = 'ytempire' to hand it over")
  }

  static func vanished(_ table: Table, _ r: Row) -> ConfigStoreError {
    let key = table.keyColumns.map { r[$0]?.string ?? "" }.joined(separator: "/")
    return ConfigStoreError("\(table.name) row '\(key)' changed owner during the transaction; nothing was written")
  }
}

/// The SQL of the statements, for one dialect (placeholders `?` or `$n`; JSONB casts).
struct SQLText {
  let dialect: Dialect
  private var n = 0
  init(_ d: Dialect) { dialect = d }

  mutating func placeholder(_ type: ColumnType) -> String {
    n += 1
    switch dialect {
    case .sqlite: return "?"
    case .postgres: return type == .json ? "$\(n)::jsonb" : "$\(n)"
    }
  }

  mutating func placeholderTimestamp() -> String {
    n += 1
    return dialect == .sqlite ? "?" : "$\(n)"
  }

  func selectColumns(_ t: Table) -> String {
    (t.dataColumns.map { c in dialect == .postgres && c.type == .json ? "\(c.name)::text AS \(c.name)" : c.name } + ["managed_by"])
      .joined(separator: ", ")
  }

  /// SELECT … WHERE owner IN (the one bound list).
  mutating func select(_ t: Table) -> String {
    switch dialect {
    case .sqlite:
      return
        "SELECT \(selectColumns(t)) FROM \(t.name) WHERE \(t.owner) IN (SELECT value FROM json_each(?)) ORDER BY \(t.keyColumns.joined(separator: ", "))"
    case .postgres:
      n += 1
      return "SELECT \(selectColumns(t)) FROM \(t.name) WHERE \(t.owner) = ANY($\(n)) ORDER BY \(t.keyColumns.joined(separator: ", "))"
    }
  }

  /// Re-keys the rows ytempire owns under an old owner name: binds the new name, then the old.
  mutating func rename(_ t: Table) -> String {
    let to = placeholder(.text)
    let from = placeholder(.text)
    return "UPDATE \(t.name) SET \(t.owner) = \(to) WHERE \(t.owner) = \(from) AND managed_by = '\(managedByValue)'"
  }

  /// The statement and the order of its arguments (`nil` name = updated_at).
  mutating func statement(_ step: SyncPlan.Step, _ t: Table) -> (sql: String, args: [String?]) {
    switch step {
    case .insert:
      let cols = t.dataColumns
      var ph: [String] = cols.map { placeholder($0.type) }
      ph.append("'\(managedByValue)'")
      ph.append(placeholderTimestamp())
      let sql =
        "INSERT INTO \(t.name) (\((cols.map(\.name) + ["managed_by", "updated_at"]).joined(separator: ", "))) VALUES (\(ph.joined(separator: ", ")))"
      return (sql, cols.map(\.name) + [nil])
    case .update:
      var sets: [String] = []
      var args: [String?] = []
      for c in t.values {
        sets.append("\(c.name) = \(placeholder(c.type))")
        args.append(c.name)
      }
      sets.append("updated_at = \(placeholderTimestamp())")
      args.append(nil)
      var wh: [String] = []
      for k in t.keyColumns {
        wh.append("\(k) = \(placeholder(.text))")
        args.append(k)
      }
      wh.append("managed_by = '\(managedByValue)'")
      return ("UPDATE \(t.name) SET \(sets.joined(separator: ", ")) WHERE \(wh.joined(separator: " AND "))", args)
    case .delete:
      var wh: [String] = []
      var args: [String?] = []
      for k in t.keyColumns {
        wh.append("\(k) = \(placeholder(.text))")
        args.append(k)
      }
      wh.append("managed_by = '\(managedByValue)'")
      return ("DELETE FROM \(t.name) WHERE \(wh.joined(separator: " AND "))", args)
    }
  }
}

extension SyncPlan.Step {
  var row: Row {
    switch self {
    case .insert(let r), .update(let r), .delete(let r): r
    }
  }
}

/// A value as bound to a statement.
enum SQLArg: Sendable {
  case null
  case bool(Bool)
  case int(Int64)
  case double(Double)
  case text(String)
  case timestamp(Date)

  static func from(_ v: JSONValue?, _ type: ColumnType) -> SQLArg {
    guard let v, v != .null else { return .null }
    switch type {
    case .text: return .text(v.string ?? v.canonicalString)
    case .bool: return v.bool.map(SQLArg.bool) ?? .null
    case .int: return v.int.map(SQLArg.int) ?? .null
    case .double: return v.double.map(SQLArg.double) ?? .null
    case .json: return .text(Canonical.normalize(v).canonicalString)
    }
  }

  static func args(_ names: [String?], _ row: Row, _ t: Table, now: Date) -> [SQLArg] {
    names.map { name in
      guard let name else { return .timestamp(now) }
      let type = t.dataColumns.first { $0.name == name }?.type ?? .text
      return from(row[name], type)
    }
  }
}

/// Reads a JSON column's text back (invalid JSON stays a string, which then differs and is rewritten).
func parseJSONColumn(_ s: String) -> JSONValue {
  (try? JSONValue.parse(Array(s.utf8))).map(Canonical.normalize) ?? .string(s)
}
