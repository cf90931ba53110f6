import DriverKit
import EmpireModel
import Foundation
import GRDB
import Resilience

/// What the engine remembers of one resource in one integration.
public struct ResourceRecord: Sendable, Equatable {
  public var driver: String
  public var id: ResourceID
  /// sha256 of the driver's desired form when it was last applied (nil: never applied).
  public var appliedDigest: String?
  public var appliedRevision: String?
  /// Annotations at the last apply (prune/drift settings outlive the manifest).
  public var annotations: [String: String]
  public var external: [String: String]
  /// The last observation (the driver's canonical form) and when it was made.
  public var observed: JSONValue?
  public var observedAt: Date?

  public init(
    driver: String, id: ResourceID, appliedDigest: String? = nil, appliedRevision: String? = nil,
    annotations: [String: String] = [:], external: [String: String] = [:], observed: JSONValue? = nil, observedAt: Date? = nil
  ) {
    self.driver = driver
    self.id = id
    self.appliedDigest = appliedDigest
    self.appliedRevision = appliedRevision
    self.annotations = annotations
    self.external = external
    self.observed = observed
    self.observedAt = observedAt
  }
}

/// An entry of the intent journal: written before an action's first call, completed after it.
/// One object `ytempire import --adopt` records as owned.
public struct ImportRecord: Sendable {
  public var driver: String
  public var id: ResourceID
  public var external: [String: String]
  public var observed: JSONValue
  /// sha256 of the driver's desired form of the imported manifest.
  public var digest: String
  public init(driver: String, id: ResourceID, external: [String: String], observed: JSONValue, digest: String) {
    self.driver = driver
    self.id = id
    self.external = external
    self.observed = observed
    self.digest = digest
  }
}

public struct JournalEntry: Sendable, Equatable {
  public var seq: Int64
  public var run: String
  public var actionID: String
  public var driver: String
  public var resource: ResourceID
  public var operation: String
  public var startedAt: Date
  public var finishedAt: Date?
  /// ok, failed, deferred, outcomeUnknown (the answer was lost), interrupted (found open after a crash); nil while open.
  public var result: String?
  public var message: String?
  /// For a call that is not idempotent (a create): until when the service may still execute
  /// it although its answer never came. Its resource's creates wait until then.
  public var settleBy: Date? = nil

  public init(
    seq: Int64, run: String, actionID: String, driver: String, resource: ResourceID, operation: String, startedAt: Date,
    finishedAt: Date? = nil, result: String? = nil, message: String? = nil, settleBy: Date? = nil
  ) {
    self.seq = seq
    self.run = run
    self.actionID = actionID
    self.driver = driver
    self.resource = resource
    self.operation = operation
    self.startedAt = startedAt
    self.finishedAt = finishedAt
    self.result = result
    self.message = message
    self.settleBy = settleBy
  }
}

/// The status the engine keeps per resource (rendered into status files).
public struct ResourceStatusRecord: Sendable, Codable, Equatable {
  public struct Condition: Sendable, Codable, Equatable {
    public var type: ConditionType
    public var status: ConditionStatus
    public var reason: ConditionReason
    public var message: String
    public var lastTransitionTime: Date
  }
  public struct ActionRecord: Sendable, Codable, Equatable {
    public var operation: String
    public var call: String
    public var fields: [String]
    public var result: String
    public var quotaUnits: Int
    public var message: String?
  }
  public struct Run: Sendable, Codable, Equatable {
    public var revision: String
    public var time: Date
    public var result: String
    public var actions: Int
  }
  public var id: ResourceID
  public var lastAppliedRevision: String?
  public var lastAttemptedRevision: String?
  public var conditions: [Condition]
  public var external: [String: String]
  public var lastActions: [ActionRecord]
  public var history: [Run]
}

/// One resource converged by an apply: its desired digest at the revision applied.
public struct AppliedMark: Sendable, Equatable {
  public var driver: String
  public var id: ResourceID
  public var digest: String
  public var revision: String
  public var annotations: [String: String]

  public init(driver: String, id: ResourceID, digest: String, revision: String, annotations: [String: String]) {
    self.driver = driver
    self.id = id
    self.digest = digest
    self.revision = revision
    self.annotations = annotations
  }
}

/// The engine's memory: owned objects' ids, observations, the intent journal, revisions,
/// plan digests, quota windows and small caches. Behind a protocol so that a store shared
/// by several instances (PostgreSQL with an advisory-lock leader) can replace the SQLite one.
public protocol StateStore: QuotaWindowStore, DriverCache {
  func records(driver: String?) throws -> [ResourceRecord]
  func record(driver: String, id: ResourceID) throws -> ResourceRecord?
  /// Saves observations made by a plan (the units were spent: keep what they bought), in one transaction.
  func saveObservations(driver: String, _ observations: [(id: ResourceID, observed: JSONValue)], at: Date) throws
  /// Records the outcome of one action and completes its journal entry, and appends the
  /// action's changing calls to the audit log, in one transaction.
  func completeAction(
    journal seq: Int64, result: String, message: String?, driver: String, id: ResourceID,
    externalChanges: [String: String?], observed: JSONValue?, audit: [AuditRecord], at: Date) throws
  /// Marks a resource converged at `revision` with its desired digest (or forgets it: `digest == nil` and `forget`).
  func markApplied(driver: String, id: ResourceID, digest: String, revision: String, annotations: [String: String]) throws
  /// `markApplied` of each of `marks`, in one transaction (what an apply converged).
  func markApplied(_ marks: [AppliedMark]) throws
  func forget(driver: String, id: ResourceID) throws
  /// Adds ids found by observation (adoption) to what is recorded; recorded ids win.
  func adopt(driver: String, id: ResourceID, external: [String: String]) throws
  /// `ytempire import --adopt`: in one transaction, each object's ids, its observation at `at`
  /// and its desired digest as applied at `revision` (so the next plan compares the imported
  /// manifests with what was read, and a later removal is an owned delete), and the drivers'
  /// cached values. Refuses (changing nothing) when any of them is already recorded.
  func recordImport(_ items: [ImportRecord], cache: [String: String], revision: String, at: Date) throws
  /// Moves everything recorded under `old` — each driver's record (ids, observation, applied
  /// digest), the journal, the status — to `new`, in one transaction (`ytempire.io/renamed-from`).
  /// A driver whose record of `new` holds more than an observation keeps both.
  func rename(from old: ResourceID, to new: ResourceID) throws

  func beginAction(run: String, action: Action, at: Date, settleBy: Date?) throws -> Int64
  func openJournalEntries() throws -> [JournalEntry]
  /// Entries whose outcome is unknown (open, interrupted, or the answer was lost) and may
  /// still be executed by the service after `now`.
  func unsettledEntries(now: Date) throws -> [JournalEntry]
  func closeInterrupted(at: Date) throws -> Int
  func journal(limit: Int) throws -> [JournalEntry]

  func meta(_ key: String) throws -> String?
  func setMeta(_ key: String, _ value: String?) throws

  func status(_ id: ResourceID) throws -> ResourceStatusRecord?
  func allStatus() throws -> [ResourceStatusRecord]
  func saveStatus(_ s: ResourceStatusRecord) throws
  func deleteStatus(_ id: ResourceID) throws

  func rememberPlan(digest: String, revision: String, at: Date) throws
  func knowsPlan(digest: String) throws -> Bool

  /// The audit log (docs/audit.md): its length and last hash (`AuditHead.empty` when empty).
  func auditHead() throws -> AuditHead
  /// Up to `limit` entries after sequence number `seq`, in sequence order (`audit verify` pages through them).
  func auditEntries(after seq: Int64, limit: Int) throws -> [AuditEntry]
  /// The last `limit` entries at or after `since` (an `AuditLog.time` text; nil: all), in
  /// sequence order, and how many entries there are at or after `since`.
  func auditEntries(since: String?, last limit: Int) throws -> (entries: [AuditEntry], total: Int)
  /// The entry stored with this hash, if any.
  func auditEntry(hash: String) throws -> AuditEntry?

  /// Every row, in one read transaction (`ytempire state migrate`).
  func dump() throws -> StateDump
  /// Writes `dump` into this store in one transaction; refuses (changing nothing) when the
  /// store holds anything already.
  func restore(_ dump: StateDump) throws
}

public struct StateStoreError: Error, Sendable, CustomStringConvertible {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// The state directory (`stateDir` in ytempire.yaml), made (owner only) when missing. A path
/// that exists but is no directory, or that cannot be made, is an error naming the setting and
/// the path, never a Foundation error dump.
public enum StateDirectory {
  public static func create(_ stateDir: String) throws {
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: stateDir, isDirectory: &isDir) {
      guard isDir.boolValue else {
        throw StateStoreError(
          "stateDir \(stateDir) is a file, not a directory; set stateDir in ytempire.yaml to a directory (it is made when missing)")
      }
      return
    }
    // mkdir -p by hand, so the failing component and errno's reason can be named.
    var made = ""
    for part in stateDir.split(separator: "/", omittingEmptySubsequences: true) {
      made += "/" + part
      if stateDir.hasPrefix("/") == false && made.hasPrefix("/") { made.removeFirst() }
      var d: ObjCBool = false
      if FileManager.default.fileExists(atPath: made, isDirectory: &d) {
        guard d.boolValue else {
          throw StateStoreError("stateDir \(stateDir) cannot be made: \(made) is a file, not a directory")
        }
        continue
      }
      if mkdir(made, 0o700) != 0 && errno != EEXIST {
        throw StateStoreError("stateDir \(stateDir) cannot be made: \(made): \(String(cString: strerror(errno)))")
      }
    }
  }
}

/// One writer per state directory: an exclusive `flock` on `<stateDir>/lock`, holding the pid.
public final class StateDirectoryLock: Sendable {
  public let path: String
  private let fd: Int32

  public init(stateDir: String) throws {
    try StateDirectory.create(stateDir)
    path = stateDir + "/lock"
    let fd: Int32
    do { fd = try PrivateFile.open(path, what: "the state directory lock", mode: 0o600) } catch { throw StateStoreError(error.message) }
    if flock(fd, LOCK_EX | LOCK_NB) != 0 {
      var buf = [UInt8](repeating: 0, count: 32)
      let n = pread(fd, &buf, 31, 0)
      close(fd)
      let pid = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
      throw StateStoreError(
        "the state directory \(stateDir) is in use by another ytempire (pid \(pid)); one reconciler per state directory")
    }
    let pid = Array("\(getpid())\n".utf8)
    _ = ftruncate(fd, 0)
    _ = pwrite(fd, pid, pid.count, 0)
    self.fd = fd
  }

  deinit {
    flock(fd, LOCK_UN)
    close(fd)
  }
}

/// The state store on SQLite (GRDB) at `<stateDir>/state.sqlite`, readable by its owner only.
public final class SQLiteStateStore: StateStore {
  public let path: String
  let db: DatabaseQueue

  public init(stateDir: String) throws {
    try StateDirectory.create(stateDir)
    let path = stateDir + "/state.sqlite"
    self.path = path
    let sidecars = ["-wal", "-shm", "-journal"].map { path + $0 }
    // Cached access tokens live here: owner only, whatever the umask, and never through a
    // link planted in the state directory (SQLite opens the sidecars itself: checked first).
    do {
      try PrivateFile.restrict(path, what: "the state store", create: true)
      try PrivateFile.check(sidecars, what: "the state store's journal")
    } catch { throw StateStoreError(error.message) }
    var config = Configuration()
    config.busyMode = .timeout(10)
    // WAL: a write is an append, not a journal file made and removed per transaction;
    // NORMAL sync keeps every committed transaction across a crash of the process.
    config.prepareDatabase { db in
      try db.execute(sql: "PRAGMA journal_mode = WAL")
      try db.execute(sql: "PRAGMA synchronous = NORMAL")
    }
    do {
      db = try DatabaseQueue(path: path, configuration: config)
      try Self.migrator.migrate(db)
    } catch {
      throw StateStoreError("cannot open the state store \(path): \(error)")
    }
    do { for p in sidecars { try PrivateFile.restrict(p, what: "the state store's journal", create: false) } } catch {
      throw StateStoreError(error.message)
    }
  }

  static var migrator: DatabaseMigrator {
    var m = DatabaseMigrator()
    m.registerMigration("v1") { db in
      try db.execute(
        sql: """
          CREATE TABLE resources (
            driver TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
            applied_digest TEXT, applied_revision TEXT,
            annotations TEXT NOT NULL DEFAULT '{}', external TEXT NOT NULL DEFAULT '{}',
            observed TEXT, observed_at REAL,
            PRIMARY KEY (driver, kind, name));
          CREATE TABLE journal (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, run TEXT NOT NULL, action_id TEXT NOT NULL,
            driver TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, operation TEXT NOT NULL,
            payload_digest TEXT NOT NULL, started_at REAL NOT NULL, finished_at REAL, result TEXT, message TEXT);
          CREATE INDEX journal_open ON journal(result) WHERE result IS NULL;
          CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
          CREATE TABLE status (kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, name));
          CREATE TABLE plans (digest TEXT PRIMARY KEY, revision TEXT NOT NULL, created_at REAL NOT NULL);
          CREATE TABLE quota_windows (service TEXT PRIMARY KEY, window_start REAL NOT NULL, spent INTEGER NOT NULL, per_channel TEXT NOT NULL);
          CREATE TABLE cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL);
          """)
    }
    m.registerMigration("v2-quota-channels") { db in
      // A charge writes the window's total and one channel's row, not the whole map.
      try db.execute(
        sql:
          "CREATE TABLE quota_channels (service TEXT NOT NULL, channel TEXT NOT NULL, spent INTEGER NOT NULL, PRIMARY KEY (service, channel))"
      )
    }
    m.registerMigration("v3-journal-settle") { db in
      // When a create whose answer may have been lost can no longer be executed by the service.
      try db.execute(sql: "ALTER TABLE journal ADD COLUMN settle_by REAL")
    }
    m.registerMigration("v4-audit") { db in
      // The hash-chained audit log (docs/audit.md). Times are the hashed RFC 3339 text.
      try db.execute(
        sql: """
          CREATE TABLE audit (
            seq INTEGER PRIMARY KEY, time TEXT NOT NULL, revision TEXT NOT NULL, resource TEXT NOT NULL,
            driver TEXT NOT NULL, action TEXT NOT NULL, call TEXT NOT NULL, method TEXT NOT NULL, status INTEGER,
            result TEXT NOT NULL, units INTEGER NOT NULL, actor TEXT NOT NULL, host TEXT NOT NULL,
            prev TEXT NOT NULL, hash TEXT NOT NULL);
          CREATE INDEX audit_hash ON audit(hash);
          CREATE INDEX audit_time ON audit(time);
          """)
    }
    return m
  }

  // MARK: coding helpers

  private static func json<T: Encodable>(_ v: T) -> String { StateCoding.json(v) }
  private static func decode<T: Decodable>(_ t: T.Type, _ s: String?) -> T? { StateCoding.decode(t, s) }

  static func record(_ row: Row) -> ResourceRecord? {
    guard let kindRaw: String = row["kind"], let kind = Kind(rawValue: kindRaw) else { return nil }
    let observedText: String? = row["observed"]
    let at: Double? = row["observed_at"]
    return ResourceRecord(
      driver: row["driver"], id: ResourceID(kind, row["name"]),
      appliedDigest: row["applied_digest"], appliedRevision: row["applied_revision"],
      annotations: decode([String: String].self, row["annotations"]) ?? [:],
      external: decode([String: String].self, row["external"]) ?? [:],
      observed: StateCoding.observation(observedText),
      observedAt: at.map { Date(timeIntervalSince1970: $0) })
  }

  private func ensureRow(_ db: Database, _ driver: String, _ id: ResourceID) throws {
    try db.execute(
      sql: "INSERT OR IGNORE INTO resources (driver, kind, name) VALUES (?, ?, ?)",
      arguments: [driver, id.kind.rawValue, id.name])
  }

  // MARK: resources

  public func records(driver: String?) throws -> [ResourceRecord] {
    try db.read { db in
      let rows =
        driver == nil
        ? try Row.fetchAll(db, sql: "SELECT * FROM resources ORDER BY driver, kind, name")
        : try Row.fetchAll(db, sql: "SELECT * FROM resources WHERE driver = ? ORDER BY kind, name", arguments: [driver])
      return rows.compactMap(Self.record)
    }
  }

  public func record(driver: String, id: ResourceID) throws -> ResourceRecord? {
    try db.read { db in
      try Row.fetchOne(
        db, sql: "SELECT * FROM resources WHERE driver = ? AND kind = ? AND name = ?",
        arguments: [driver, id.kind.rawValue, id.name]
      ).flatMap(Self.record)
    }
  }

  public func saveObservations(driver: String, _ observations: [(id: ResourceID, observed: JSONValue)], at: Date) throws {
    guard !observations.isEmpty else { return }
    try db.write { db in
      for (id, observed) in observations {
        try ensureRow(db, driver, id)
        // Ids found while observing (adoption) are kept only once applied: a plan changes nothing.
        try db.execute(
          sql: "UPDATE resources SET observed = ?, observed_at = ? WHERE driver = ? AND kind = ? AND name = ?",
          arguments: [observed.canonicalString, at.timeIntervalSince1970, driver, id.kind.rawValue, id.name])
      }
    }
  }

  public func completeAction(
    journal seq: Int64, result: String, message: String?, driver: String, id: ResourceID,
    externalChanges: [String: String?], observed: JSONValue?, audit: [AuditRecord], at: Date
  ) throws {
    try db.write { db in
      try ensureRow(db, driver, id)
      let current: String? = try String.fetchOne(
        db, sql: "SELECT external FROM resources WHERE driver = ? AND kind = ? AND name = ?",
        arguments: [driver, id.kind.rawValue, id.name])
      var ext = Self.decode([String: String].self, current) ?? [:]
      for (k, v) in externalChanges { ext[k] = v }
      try db.execute(
        sql: "UPDATE resources SET external = ? WHERE driver = ? AND kind = ? AND name = ?",
        arguments: [Self.json(ext), driver, id.kind.rawValue, id.name])
      if let observed {
        try db.execute(
          sql: "UPDATE resources SET observed = ?, observed_at = ? WHERE driver = ? AND kind = ? AND name = ?",
          arguments: [observed.canonicalString, at.timeIntervalSince1970, driver, id.kind.rawValue, id.name])
      } else if result == "ok" || result == "failed" {
        // What exists now is unknown: observe again next time.
        try db.execute(
          sql: "UPDATE resources SET observed_at = NULL WHERE driver = ? AND kind = ? AND name = ?",
          arguments: [driver, id.kind.rawValue, id.name])
      }
      try db.execute(
        sql: "UPDATE journal SET finished_at = ?, result = ?, message = ? WHERE seq = ?",
        arguments: [at.timeIntervalSince1970, result, message, seq])
      try Self.appendAudit(db, audit)
    }
  }

  // MARK: audit log

  /// Chains `records` after the last entry, inside the caller's transaction.
  private static func appendAudit(_ db: Database, _ records: [AuditRecord]) throws {
    guard !records.isEmpty else { return }
    var head = try auditHead(db)
    for r in records {
      let e = AuditEntry(seq: head.entries + 1, record: r, prev: head.hash)
      try insertAudit(db, e)
      head = AuditHead(entries: e.seq, hash: e.hash)
    }
  }

  /// One audit entry as it is (appended, or copied by `restore`).
  static func insertAudit(_ db: Database, _ e: AuditEntry) throws {
    try db.execute(
      sql: """
        INSERT INTO audit (seq, time, revision, resource, driver, action, call, method, status, result, units, actor, host, prev, hash)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
      arguments: [
        e.seq, e.time, e.revision, e.resource, e.driver, e.action, e.call, e.method, e.status, e.result,
        e.units, e.actor, e.host, e.prev, e.hash,
      ])
  }

  private static func auditHead(_ db: Database) throws -> AuditHead {
    guard let r = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1") else { return .empty }
    return AuditHead(entries: r["seq"], hash: r["hash"])
  }

  static func auditEntry(_ r: Row) -> AuditEntry {
    AuditEntry(
      seq: r["seq"], time: r["time"], revision: r["revision"], resource: r["resource"], driver: r["driver"],
      action: r["action"], call: r["call"], method: r["method"], status: r["status"], result: r["result"],
      units: r["units"], actor: r["actor"], host: r["host"], prev: r["prev"], hash: r["hash"])
  }

  public func auditHead() throws -> AuditHead {
    try db.read { db in try Self.auditHead(db) }
  }

  public func auditEntries(after seq: Int64, limit: Int) throws -> [AuditEntry] {
    try db.read { db in
      try Row.fetchAll(db, sql: "SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [seq, max(0, limit)]).map(
        Self.auditEntry)
    }
  }

  public func auditEntries(since: String?, last limit: Int) throws -> (entries: [AuditEntry], total: Int) {
    try db.read { db in
      let since = since ?? ""
      let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit WHERE time >= ?", arguments: [since]) ?? 0
      let rows = try Row.fetchAll(
        db, sql: "SELECT * FROM audit WHERE time >= ? ORDER BY seq DESC LIMIT ?", arguments: [since, max(0, limit)])
      return (Array(rows.map(Self.auditEntry).reversed()), total)
    }
  }

  public func auditEntry(hash: String) throws -> AuditEntry? {
    try db.read { db in
      try Row.fetchOne(db, sql: "SELECT * FROM audit WHERE hash = ? ORDER BY seq LIMIT 1", arguments: [hash]).map(Self.auditEntry)
    }
  }

  public func markApplied(driver: String, id: ResourceID, digest: String, revision: String, annotations: [String: String]) throws {
    try markApplied([AppliedMark(driver: driver, id: id, digest: digest, revision: revision, annotations: annotations)])
  }

  public func markApplied(_ marks: [AppliedMark]) throws {
    guard !marks.isEmpty else { return }
    try db.write { db in
      for m in marks {
        try ensureRow(db, m.driver, m.id)
        try db.execute(
          sql: "UPDATE resources SET applied_digest = ?, applied_revision = ?, annotations = ? WHERE driver = ? AND kind = ? AND name = ?",
          arguments: [m.digest, m.revision, Self.json(m.annotations), m.driver, m.id.kind.rawValue, m.id.name])
      }
    }
  }

  public func recordImport(_ items: [ImportRecord], cache: [String: String], revision: String, at: Date) throws {
    try db.write { db in
      for it in items {
        let existing = try Row.fetchOne(
          db, sql: "SELECT external, applied_digest FROM resources WHERE driver = ? AND kind = ? AND name = ?",
          arguments: [it.driver, it.id.kind.rawValue, it.id.name])
        if let existing, (existing["applied_digest"] as String?) != nil || ((existing["external"] as String?) ?? "{}") != "{}" {
          throw StateStoreError(
            "\(it.id) is already recorded for \(it.driver) in this state directory; import into a fresh one, or without --adopt")
        }
        try ensureRow(db, it.driver, it.id)
        try db.execute(
          sql: """
            UPDATE resources SET external = ?, observed = ?, observed_at = ?, applied_digest = ?, applied_revision = ?, annotations = ?
            WHERE driver = ? AND kind = ? AND name = ?
            """,
          arguments: [
            Self.json(it.external), it.observed.canonicalString, at.timeIntervalSince1970, it.digest, revision,
            Self.json([String: String]()), it.driver, it.id.kind.rawValue, it.id.name,
          ])
      }
      for (k, v) in cache.sorted(by: { $0.key < $1.key }) {
        try db.execute(sql: "INSERT OR REPLACE INTO cache (key, value, expires) VALUES (?, ?, NULL)", arguments: [k, v])
      }
    }
  }

  /// Adds ids found by observation (adoption) to what is recorded.
  public func adopt(driver: String, id: ResourceID, external: [String: String]) throws {
    guard !external.isEmpty else { return }
    try db.write { db in
      try ensureRow(db, driver, id)
      let current: String? = try String.fetchOne(
        db, sql: "SELECT external FROM resources WHERE driver = ? AND kind = ? AND name = ?",
        arguments: [driver, id.kind.rawValue, id.name])
      var ext = Self.decode([String: String].self, current) ?? [:]
      for (k, v) in external where ext[k] == nil { ext[k] = v }
      try db.execute(
        sql: "UPDATE resources SET external = ? WHERE driver = ? AND kind = ? AND name = ?",
        arguments: [Self.json(ext), driver, id.kind.rawValue, id.name])
    }
  }

  public func rename(from old: ResourceID, to new: ResourceID) throws {
    guard old != new, old.kind == new.kind else { return }
    let kind = old.kind.rawValue
    try db.write { db in
      // A record of the new name that holds only an observation (a plan made before the rename) gives way.
      try db.execute(
        sql: """
          DELETE FROM resources WHERE kind = ? AND name = ? AND applied_digest IS NULL AND external = '{}'
            AND driver IN (SELECT driver FROM resources WHERE kind = ? AND name = ?)
          """, arguments: [kind, new.name, kind, old.name])
      try db.execute(
        sql: """
          UPDATE resources SET name = ? WHERE kind = ? AND name = ?
            AND driver NOT IN (SELECT driver FROM resources WHERE kind = ? AND name = ?)
          """, arguments: [new.name, kind, old.name, kind, new.name])
      try db.execute(sql: "UPDATE journal SET name = ? WHERE kind = ? AND name = ?", arguments: [new.name, kind, old.name])
      if try String.fetchOne(db, sql: "SELECT body FROM status WHERE kind = ? AND name = ?", arguments: [kind, new.name]) == nil,
        var status = Self.decode(
          ResourceStatusRecord.self,
          try String.fetchOne(db, sql: "SELECT body FROM status WHERE kind = ? AND name = ?", arguments: [kind, old.name]))
      {
        status.id = new
        try db.execute(sql: "INSERT INTO status (kind, name, body) VALUES (?, ?, ?)", arguments: [kind, new.name, Self.json(status)])
        try db.execute(sql: "DELETE FROM status WHERE kind = ? AND name = ?", arguments: [kind, old.name])
      }
    }
  }

  public func forget(driver: String, id: ResourceID) throws {
    try db.write { db in
      try db.execute(
        sql: "DELETE FROM resources WHERE driver = ? AND kind = ? AND name = ?", arguments: [driver, id.kind.rawValue, id.name])
    }
  }

  // MARK: journal

  public func beginAction(run: String, action: Action, at: Date, settleBy: Date? = nil) throws -> Int64 {
    try db.write { db in
      let digest = Digest.sha256Hex(action.payload.canonicalBytes)
      try db.execute(
        sql: """
          INSERT INTO journal (run, action_id, driver, kind, name, operation, payload_digest, started_at, settle_by)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
          """,
        arguments: [
          run, action.id, action.driver, action.resource.kind.rawValue, action.resource.name,
          action.operation.rawValue, digest, at.timeIntervalSince1970, settleBy?.timeIntervalSince1970,
        ])
      return db.lastInsertedRowID
    }
  }

  public func unsettledEntries(now: Date) throws -> [JournalEntry] {
    try db.read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT * FROM journal WHERE settle_by > ? AND (result IS NULL OR result IN ('interrupted', 'outcomeUnknown')) ORDER BY seq
          """, arguments: [now.timeIntervalSince1970]
      ).compactMap(Self.entry)
    }
  }

  static func entry(_ r: Row) -> JournalEntry? {
    guard let kindRaw: String = r["kind"], let kind = Kind(rawValue: kindRaw) else { return nil }
    let fin: Double? = r["finished_at"]
    let settle: Double? = r["settle_by"]
    return JournalEntry(
      seq: r["seq"], run: r["run"], actionID: r["action_id"], driver: r["driver"], resource: ResourceID(kind, r["name"]),
      operation: r["operation"], startedAt: Date(timeIntervalSince1970: r["started_at"]),
      finishedAt: fin.map { Date(timeIntervalSince1970: $0) }, result: r["result"], message: r["message"],
      settleBy: settle.map { Date(timeIntervalSince1970: $0) })
  }

  public func openJournalEntries() throws -> [JournalEntry] {
    try db.read { db in try Row.fetchAll(db, sql: "SELECT * FROM journal WHERE result IS NULL ORDER BY seq").compactMap(Self.entry) }
  }

  public func closeInterrupted(at: Date) throws -> Int {
    try db.write { db in
      try db.execute(
        sql:
          "UPDATE journal SET result = 'interrupted', finished_at = ?, message = 'the process stopped during this action; its resource was observed again' WHERE result IS NULL",
        arguments: [at.timeIntervalSince1970])
      // What an interrupted action left behind is unknown: observe those resources again.
      try db.execute(
        sql: """
          UPDATE resources SET observed_at = NULL WHERE EXISTS (SELECT 1 FROM journal j WHERE j.result = 'interrupted' AND j.finished_at = ?
            AND j.driver = resources.driver AND j.kind = resources.kind AND j.name = resources.name)
          """, arguments: [at.timeIntervalSince1970])
      return db.changesCount
    }
  }

  public func journal(limit: Int) throws -> [JournalEntry] {
    try db.read { db in
      try Row.fetchAll(db, sql: "SELECT * FROM journal ORDER BY seq DESC LIMIT ?", arguments: [limit]).compactMap(Self.entry)
    }
  }

  // MARK: meta, status, plans

  public func meta(_ key: String) throws -> String? {
    try db.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
  }

  public func setMeta(_ key: String, _ value: String?) throws {
    try db.write { db in
      if let value {
        try db.execute(
          sql: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", arguments: [key, value])
      } else {
        try db.execute(sql: "DELETE FROM meta WHERE key = ?", arguments: [key])
      }
    }
  }

  public func status(_ id: ResourceID) throws -> ResourceStatusRecord? {
    try db.read { db in
      Self.decode(
        ResourceStatusRecord.self,
        try String.fetchOne(db, sql: "SELECT body FROM status WHERE kind = ? AND name = ?", arguments: [id.kind.rawValue, id.name]))
    }
  }

  public func allStatus() throws -> [ResourceStatusRecord] {
    try db.read { db in
      try String.fetchAll(db, sql: "SELECT body FROM status ORDER BY kind, name").compactMap { Self.decode(ResourceStatusRecord.self, $0) }
    }
  }

  public func saveStatus(_ s: ResourceStatusRecord) throws {
    try db.write { db in
      try db.execute(
        sql: "INSERT INTO status (kind, name, body) VALUES (?, ?, ?) ON CONFLICT(kind, name) DO UPDATE SET body = excluded.body",
        arguments: [s.id.kind.rawValue, s.id.name, Self.json(s)])
    }
  }

  public func deleteStatus(_ id: ResourceID) throws {
    try db.write { db in try db.execute(sql: "DELETE FROM status WHERE kind = ? AND name = ?", arguments: [id.kind.rawValue, id.name]) }
  }

  public func rememberPlan(digest: String, revision: String, at: Date) throws {
    try db.write { db in
      try db.execute(
        sql: "INSERT OR IGNORE INTO plans (digest, revision, created_at) VALUES (?, ?, ?)",
        arguments: [digest, revision, at.timeIntervalSince1970])
      // Keep the last 100.
      try db.execute(sql: "DELETE FROM plans WHERE digest NOT IN (SELECT digest FROM plans ORDER BY created_at DESC LIMIT 100)")
    }
  }

  public func knowsPlan(digest: String) throws -> Bool {
    try db.read { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM plans WHERE digest = ?", arguments: [digest]) ?? false }
  }

  // MARK: QuotaWindowStore

  public func loadWindow(service: String) throws -> QuotaLedger.Snapshot? {
    try db.read { db in try loadWindow(db, service: service) }
  }

  func loadWindow(_ db: Database, service: String) throws -> QuotaLedger.Snapshot? {
    do {
      guard let r = try Row.fetchOne(db, sql: "SELECT * FROM quota_windows WHERE service = ?", arguments: [service]) else { return nil }
      var per = Self.decode([String: Int].self, r["per_channel"]) ?? [:]
      for c in try Row.fetchAll(db, sql: "SELECT channel, spent FROM quota_channels WHERE service = ?", arguments: [service]) {
        per[c["channel"]] = c["spent"]
      }
      return QuotaLedger.Snapshot(
        service: service, windowStart: Date(timeIntervalSince1970: r["window_start"]), spent: r["spent"], perChannel: per)
    }
  }

  public func saveWindow(_ s: QuotaLedger.Snapshot) throws {
    try db.write { db in
      try db.execute(
        sql: """
          INSERT INTO quota_windows (service, window_start, spent, per_channel) VALUES (?, ?, ?, '{}')
          ON CONFLICT(service) DO UPDATE SET window_start = excluded.window_start, spent = excluded.spent, per_channel = '{}'
          """, arguments: [s.service, s.windowStart.timeIntervalSince1970, s.spent])
      try db.execute(sql: "DELETE FROM quota_channels WHERE service = ?", arguments: [s.service])
      for (c, n) in s.perChannel {
        try db.execute(sql: "INSERT INTO quota_channels (service, channel, spent) VALUES (?, ?, ?)", arguments: [s.service, c, n])
      }
    }
  }

  /// One transaction per charge: the total and the paying channel's row.
  public func saveCharge(_ s: QuotaLedger.Snapshot, channel: String?) throws {
    try db.write { db in
      try db.execute(
        sql: """
          INSERT INTO quota_windows (service, window_start, spent, per_channel) VALUES (?, ?, ?, '{}')
          ON CONFLICT(service) DO UPDATE SET window_start = excluded.window_start, spent = excluded.spent
          """, arguments: [s.service, s.windowStart.timeIntervalSince1970, s.spent])
      if let channel, let n = s.perChannel[channel] {
        try db.execute(
          sql: """
            INSERT INTO quota_channels (service, channel, spent) VALUES (?, ?, ?)
            ON CONFLICT(service, channel) DO UPDATE SET spent = excluded.spent
            """, arguments: [s.service, channel, n])
      }
    }
  }

  // MARK: DriverCache

  public func value(_ key: String) throws -> (value: String, expires: Date?)? {
    try db.read { db in
      guard let r = try Row.fetchOne(db, sql: "SELECT value, expires FROM cache WHERE key = ?", arguments: [key]) else { return nil }
      let e: Double? = r["expires"]
      return (r["value"], e.map { Date(timeIntervalSince1970: $0) })
    }
  }

  public func setValue(_ key: String, _ value: String?, expires: Date?) throws {
    try db.write { db in
      if let value {
        try db.execute(
          sql:
            "INSERT INTO cache (key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
          arguments: [key, value, expires?.timeIntervalSince1970])
      } else {
        try db.execute(sql: "DELETE FROM cache WHERE key = ?", arguments: [key])
      }
    }
  }
}
