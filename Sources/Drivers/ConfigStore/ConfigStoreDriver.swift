// The runtime config store driver (DESIGN A4): SQLite or PostgreSQL.
import DriverKit
import EmpireModel
import Foundation

/// Converges Channel, ProviderChain, RateLimit and SecurityPolicy (retention, permissions)
/// into the runtime config database the YTEMPIRE runtime reads (n8n's analytics workflow runs
/// `SELECT … FROM channels WHERE active = true`). See docs/drivers/config-store.md.
///
/// Ownership: every row written has `managed_by = 'ytempire'`; no other row is ever read as
/// ytempire's, updated or deleted. A desired row whose key an unowned row holds is a
/// conflict: the plan says so and applying it fails without writing anything.
public final class ConfigStoreDriver: Driver {
  public let name = "configStore"
  public let displayName = "config store"
  public let kinds: Set<Kind> = [.channel, .providerChain, .rateLimit, .securityPolicy]
  /// Where the database is (its `description` never shows a password).
  public let location: ConfigStoreLocation
  private let backend: any ConfigBackend

  /// Key of the observed state listing desired rows held by rows ytempire does not own.
  static let unownedKey = "_unowned"
  /// Key of the observed state (and of an update's payload) naming the owner whose rows a
  /// renamed resource takes over (`ytempire.io/renamed-from`): they are re-keyed by UPDATE.
  static let renamedKey = "_renamedFrom"

  /// Parses and checks `url` (`sqlite:///abs/path.sqlite` or
  /// `postgres://user[:password]@host[:port]/db[?sslmode=…]`); nothing is opened until first
  /// use. `password` is resolved when connecting to PostgreSQL (give it here or in the URL, not both).
  public init(url: String, password: LazySecret? = nil) throws {
    location = try ConfigStoreLocation.parse(url)
    switch location {
    case .sqlite(let path):
      if password != nil { throw ConfigStoreError("config store \(location): a SQLite file takes no password (\(password!.name))") }
      backend = SQLiteBackend(path: path)
    case .postgres(let p):
      if p.password != nil, let password {
        throw ConfigStoreError("config store \(location): the password is given both in the URL and as \(password.name); give it once")
      }
      backend = PostgresBackend(location: p, password: password)
    }
  }

  /// Closes the PostgreSQL connection (or the SQLite file); the next use reopens it.
  public func close() async { await backend.close() }

  /// Opens the database and applies pending migrations; returns every applied migration id, oldest first.
  @discardableResult
  public func migrate() async throws -> [String] { try await backend.migrate() }

  /// The migration ids this version of ytempire knows, oldest first.
  public static var migrationIDs: [String] { Schema.migrations.map(\.id) }

  /// The tables (in write order) a kind's resources map to.
  public static func tables(for kind: Kind) -> [String] { Schema.tables(for: kind).map(\.name) }

  // MARK: Driver

  public func desired(_ resource: Resource, in index: DesiredIndex) -> JSONValue {
    let tables = Schema.tables(for: resource.kind)
    guard !tables.isEmpty else { return .null }
    return Canonical.state(RowMapper.rows(resource), tables: tables, includeEmpty: true)
  }

  public func observationCalls(_ targets: [ObserveTarget], pricing: Pricing) -> [PlannedCall] {
    tablesTouched(targets).map { _ in pricing.call("configStore", "select") }
  }

  private func tablesTouched(_ targets: [ObserveTarget]) -> [Table] {
    let kinds = Set(targets.map(\.id.kind))
    return Schema.all.filter { t in kinds.contains { Schema.tables(for: $0).contains(t) } }
  }

  public func observe(_ targets: [ObserveTarget], context: DriverContext) async throws -> [ResourceID: ObservationOutcome] {
    let ours = targets.filter { kinds.contains($0.id.kind) }
    var out: [ResourceID: ObservationOutcome] = [:]
    var found: [ResourceID: [String: [StoredRow]]] = [:]
    var renamed = Set<ResourceID>()
    for t in tablesTouched(ours) {
      let targetsHere = ours.filter { Schema.tables(for: $0.id.kind).contains(t) }
      // Table → the resources (by owner name) of the kinds mapped to it; one query per table.
      var byOwner: [String: ResourceID] = [:]
      for x in targetsHere { byOwner[x.id.name] = x.id }
      // A renamed resource's rows are still under its old name until its update re-keys them.
      for x in targetsHere { if let old = x.renamedFrom, byOwner[old] == nil { byOwner[old] = x.id } }
      let rows: [StoredRow]
      do { rows = try await backend.select(t, owners: byOwner.keys.sorted()) } catch {
        for x in targetsHere { out[x.id] = .failed("\(error)") }
        continue
      }
      for var r in rows {
        guard let owner = r.row[t.owner]?.string, let id = byOwner[owner] else { continue }
        if owner != id.name {
          guard r.owned else { continue }  // under the old name, only ytempire's rows are the resource's
          r.row[t.owner] = .string(id.name)
          renamed.insert(id)
        }
        found[id, default: [:]][t.name, default: []].append(r)
      }
    }
    for x in ours where out[x.id] == nil {
      let tables = Schema.tables(for: x.id.kind)
      let rows = found[x.id] ?? [:]
      let owned = rows.mapValues { $0.filter(\.owned).map(\.row) }
      var state = Canonical.state(owned, tables: tables, includeEmpty: false)
      // Unowned rows are never ours; they matter only where they hold a key we want.
      if let desired = x.desired {
        var conflicts: [String: JSONValue] = [:]
        for t in tables {
          let wanted = Set(desired[t.name]?.object?.keys.map { $0 } ?? [])
          let held = (rows[t.name] ?? []).filter { !$0.owned }.map { Canonical.rowKey($0.row, t) }.filter(wanted.contains)
          if !held.isEmpty { conflicts[t.name] = .array(held.sorted().map(JSONValue.string)) }
        }
        if !conflicts.isEmpty {
          var o = state.object ?? [:]
          o[Self.unownedKey] = .object(conflicts)
          state = .object(o)
        }
      }
      if renamed.contains(x.id), let old = x.renamedFrom {
        var o = state.object ?? [:]
        o[Self.renamedKey] = .string(old)
        state = .object(o)
      }
      out[x.id] = .observed(state: state, external: [:])
    }
    return out
  }

  public func diff(_ input: DiffInput) -> [Action] {
    let tables = Schema.tables(for: input.id.kind)
    guard !tables.isEmpty else { return [] }
    var observed = input.observed.object ?? [:]
    let conflicts = observed.removeValue(forKey: Self.unownedKey)?.object ?? [:]
    let renamedFrom = observed.removeValue(forKey: Self.renamedKey)?.string
    let obs = JSONValue.object(observed.filter { !($0.value.object?.isEmpty ?? true) })
    let desiredRows = input.desired.map { d in tables.reduce(0) { $0 + (d[$1.name]?.object?.count ?? 0) } } ?? 0
    let observedRows = tables.reduce(0) { $0 + (obs[$1.name]?.object?.count ?? 0) }

    let single = tables.count == 1 && tables[0].singleRow
    func part(_ v: JSONValue?) -> JSONValue? {
      guard let v else { return nil }
      if single { return v[tables[0].name]?[input.id.name] }
      var o: [String: JSONValue] = [:]
      for t in tables { if let m = v[t.name]?.object, !m.isEmpty { o[t.name] = .object(m) } }
      return o.isEmpty ? nil : .object(o)
    }

    let op: ActionOperation
    if desiredRows == 0 {
      guard observedRows > 0 else { return [] }
      op = .delete
    } else {
      op = observedRows == 0 ? .create : .update
    }
    var changes = JSONDiff.changes(part(obs) ?? .object([:]), op == .delete ? .object([:]) : (part(input.desired) ?? .object([:])))
    let rekey = op == .update ? renamedFrom : nil
    if let rekey { changes.insert(FieldChange(path: tables[0].owner, old: .string(rekey), new: .string(input.id.name)), at: 0) }
    guard !changes.isEmpty || (!conflicts.isEmpty && op != .delete) else { return [] }

    var summary: String
    if single {
      summary = "\(tables[0].name) row \(input.id.name)"
      if op == .update {
        let columns: [String] = changes.map { c in c.path.split(separator: ".").first.map(String.init) ?? c.path }
        summary += ": " + columns.uniqued().joined(separator: ", ")
      }
    } else {
      let counts = tables.compactMap { t -> String? in
        let n = (op == .delete ? obs : (input.desired ?? .null))[t.name]?.object?.count ?? 0
        return n == 0 ? nil : "\(n) \(t.name) row\(n == 1 ? "" : "s")"
      }
      summary = counts.joined(separator: ", ")
      if op == .update { summary += " (\(changes.count) change\(changes.count == 1 ? "" : "s"))" }
    }
    if !conflicts.isEmpty, op != .delete {
      let held = conflicts.sorted { $0.key < $1.key }.flatMap { t, v in (v.array ?? []).compactMap(\.string).map { "\(t) '\($0)'" } }
      summary =
        "CONFLICT: \(held.joined(separator: ", ")) exist\(held.count == 1 ? "s" : "") and \(held.count == 1 ? "is" : "are") not managed by ytempire; apply will refuse to overwrite — "
        + summary
    }
    if let rekey { summary += " (renamed from \(rekey))" }
    let operation =
      switch op {
      case .create: "insert"
      case .update: "update"
      case .delete: "delete"
      }
    var payload: JSONValue = op == .delete ? .null : (input.desired ?? .null)
    if let rekey, var o = payload.object {
      o[Self.renamedKey] = .string(rekey)
      payload = .object(o)
    }
    return [
      Action(
        driver: name, resource: input.id, operation: op, key: "row", summary: summary, changes: changes,
        calls: [input.pricing.call("configStore", operation)], payload: payload)
    ]
  }

  public func apply(_ action: Action, observed: JSONValue, external: [String: String], context: DriverContext) async throws -> ApplyOutcome
  {
    let tables = Schema.tables(for: action.resource.kind)
    guard action.driver == name, !tables.isEmpty else {
      throw ConfigStoreError("the config store driver cannot apply \(action.id)")
    }
    let desired = action.operation == .delete ? [:] : Canonical.rows(action.payload, tables: tables, owner: action.resource.name)
    let after = try await backend.sync(
      owner: action.resource.name, tables: tables, desired: desired, now: context.now(),
      renamedFrom: action.operation == .update ? action.payload[Self.renamedKey]?.string : nil)
    context.log("config store: \(action.operation.rawValue) \(action.resource) (\(action.summary))")
    return ApplyOutcome(observed: Canonical.state(after, tables: tables, includeEmpty: false))
  }
}

extension Array where Element: Hashable {
  fileprivate func uniqued() -> [Element] {
    var seen = Set<Element>()
    return filter { seen.insert($0).inserted }
  }
}
