import DriverKit
import EmpireModel
import Foundation
import PostgresNIO
import Reconciler
import Resilience
import Synchronization

/// The state store in PostgreSQL (`stateStore:`), shared by every ytempire that points at it:
/// the same tables, migrations and behaviour as `SQLiteStateStore` (one conformance suite runs
/// against both). Writers (`apply`, `serve`) hold the store's advisory lock through
/// `lockWriter`; `plan` reads without it and saves only the observations it paid for. Journal
/// writes are fenced: they check, in their transaction, that this session still holds the
/// lock at the epoch it took.
public final class PostgresStateStore: StateStore, SharedQuotaWindowStore {
  let session: Session
  /// Cached credentials (`CachedSecrets`): this process's memory, never a row.
  private let secrets = Mutex<[String: (value: String, expires: Date?)]>([:])
  /// Cache values this process read or wrote (driver caches are written once and read often),
  /// and keys it found absent, until when it trusts that (another instance may write them).
  private let known = Mutex<[String: (value: String, expires: Date?)]>([:])
  private let absent = Mutex<[String: ContinuousClock.Instant]>([:])
  static let absentFor: Duration = .seconds(30)
  public var displayName: String { session.settings.displayName }
  /// Every call is a round trip to the server: async callers make it off the cooperative pool.
  public var waitsOnNetwork: Bool { true }

  /// Opens (and migrates) the store now, so a wrong URL or password is said at once.
  public init(_ settings: PostgresStateSettings) throws {
    session = Session(settings)
    _ = try session.run { _ in true }
  }

  public func close() { session.close() }

  // MARK: writer lock

  /// Takes the writer lock (a session-level advisory lock) for this store's session. Refused,
  /// naming the holder's host, pid and since when, when another session holds it.
  public func lockWriter(host: String = ProcessInfo.processInfo.hostName, pid: Int = Int(getpid()), now: Date = Date()) throws {
    switch try tryLockWriter(host: host, pid: pid, now: now) {
    case .acquired: return
    case .heldBy(let holder):
      throw StateStoreError(
        "the state store \(displayName) is locked by another ytempire (\(holder?.description ?? "holder unknown")); one writer at a time")
    }
  }

  /// One attempt at the writer lock (serve's election): acquired at a new epoch, or held by someone.
  public func tryLockWriter(host: String, pid: Int, now: Date) throws -> LockAttempt {
    if let epoch = session.epoch, !session.lockLost { return .acquired(epoch: epoch) }
    let attempt = try session.tryLock(host: host, pid: pid, now: now)
    if case .acquired(let epoch) = attempt { session.held(epoch: epoch) }
    return attempt
  }

  /// Whether this store still holds the writer lock: its session answers (a session that
  /// ended took the lock with it) and the lock row still names it at its epoch.
  public func stillHoldsLock() -> Bool {
    guard let epoch = session.epoch, !session.lockLost else { return false }
    let ok = (try? session.run { c in !(try c.query(PostgresQuery(unsafeSQL: "SELECT 1 WHERE " + Session.fence(epoch))).isEmpty) }) ?? false
    return ok && session.epoch == epoch && !session.lockLost
  }

  /// Hands an event to whoever leads (`LISTEN ytempire_events`): a webhook a standby received.
  public func notifyLeader(_ payload: String) throws {
    try session.run { c in try c.query("SELECT pg_notify(\(Self.eventsChannel), \(payload))") }
  }

  public static let eventsChannel = "ytempire_events"

  /// Listens for `notifyLeader` payloads on a connection of its own until cancelled or the
  /// connection ends (then it throws; the caller listens again).
  public func listenForEvents(_ onEvent: @escaping @Sendable (String) -> Void) async throws {
    let config = try session.configuration()
    let connection = try await PostgresConnection.connect(
      on: MultiThreadedEventLoopGroup.singleton.any(), configuration: config, id: 1_000_000, logger: session.logger)
    do {
      try await connection.listen(on: Self.eventsChannel) { events in
        for try await n in events { onEvent(n.payload) }
      }
    } catch {
      try? await connection.close()
      throw error
    }
    try? await connection.close()
  }

  /// The epoch of the lock this store holds (nil: none).
  public var writerEpoch: Int64? { session.epoch }

  public func unlockWriter() { session.releaseLock() }

  /// Who holds the writer lock now (nil: nobody).
  public func lockHolder() throws -> LockHolder? {
    try session.pooled { c in
      // The row names the last holder; it holds the lock only while its session does.
      let held = try c.query(
        """
        SELECT 1 FROM writer_lock w WHERE w.id = 1 AND EXISTS (
          SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.pid = w.backend_pid
            AND ((l.classid::bigint << 32) | l.objid::bigint) = \(Session.lockKey))
        """)
      return held.isEmpty ? nil : try Session.holderRow(c)
    }
  }

  // MARK: rows

  static func record(_ r: PostgresRow) throws -> ResourceRecord? {
    let ra = r.makeRandomAccess()
    guard let kind = Kind(rawValue: try ra["kind"].decode(String.self)) else { return nil }
    let at = try ra["observed_at"].decode(Double?.self)
    return ResourceRecord(
      driver: try ra["driver"].decode(String.self), id: ResourceID(kind, try ra["name"].decode(String.self)),
      appliedDigest: try ra["applied_digest"].decode(String?.self), appliedRevision: try ra["applied_revision"].decode(String?.self),
      annotations: StateCoding.decode([String: String].self, try ra["annotations"].decode(String.self)) ?? [:],
      external: StateCoding.decode([String: String].self, try ra["external"].decode(String.self)) ?? [:],
      observed: StateCoding.observation(try ra["observed"].decode(String?.self)),
      observedAt: at.map { Date(timeIntervalSince1970: $0) })
  }

  static func entry(_ r: PostgresRow) throws -> JournalEntry? {
    let ra = r.makeRandomAccess()
    guard let kind = Kind(rawValue: try ra["kind"].decode(String.self)) else { return nil }
    return JournalEntry(
      seq: try ra["seq"].decode(Int64.self), run: try ra["run"].decode(String.self), actionID: try ra["action_id"].decode(String.self),
      driver: try ra["driver"].decode(String.self), resource: ResourceID(kind, try ra["name"].decode(String.self)),
      operation: try ra["operation"].decode(String.self), startedAt: Date(timeIntervalSince1970: try ra["started_at"].decode(Double.self)),
      finishedAt: try ra["finished_at"].decode(Double?.self).map { Date(timeIntervalSince1970: $0) },
      result: try ra["result"].decode(String?.self), message: try ra["message"].decode(String?.self),
      settleBy: try ra["settle_by"].decode(Double?.self).map { Date(timeIntervalSince1970: $0) })
  }

  static func auditEntry(_ r: PostgresRow) throws -> AuditEntry {
    let ra = r.makeRandomAccess()
    func s(_ k: String) throws -> String { try ra[k].decode(String.self) }
    return AuditEntry(
      seq: try ra["seq"].decode(Int64.self), time: try s("time"), revision: try s("revision"), resource: try s("resource"),
      driver: try s("driver"), action: try s("action"), call: try s("call"), method: try s("method"),
      status: try ra["status"].decode(Int?.self), result: try s("result"), units: try ra["units"].decode(Int.self),
      actor: try s("actor"), host: try s("host"), prev: try s("prev"), hash: try s("hash"))
  }

  private static func ensureRow(_ c: Session.Conn, _ driver: String, _ id: ResourceID) throws {
    try c.query("INSERT INTO resources (driver, kind, name) VALUES (\(driver), \(id.kind.rawValue), \(id.name)) ON CONFLICT DO NOTHING")
  }

  // MARK: resources

  public func records(driver: String?) throws -> [ResourceRecord] {
    try session.pooled { c in
      let rows =
        if let driver {
          try c.query("SELECT * FROM resources WHERE driver = \(driver) ORDER BY kind, name")
        } else {
          try c.query("SELECT * FROM resources ORDER BY driver, kind, name")
        }
      return try rows.compactMap(Self.record)
    }
  }

  public func record(driver: String, id: ResourceID) throws -> ResourceRecord? {
    try session.pooled { c in
      try c.query("SELECT * FROM resources WHERE driver = \(driver) AND kind = \(id.kind.rawValue) AND name = \(id.name)").first.flatMap(
        Self.record)
    }
  }

  public func saveObservations(driver: String, _ observations: [(id: ResourceID, observed: JSONValue)], at: Date) throws {
    let rows = SQL.lastOfEach(observations, key: \.id).map { [$0.id.kind.rawValue, $0.id.name, $0.observed.canonicalString] }
    guard !rows.isEmpty else { return }
    let t = at.timeIntervalSince1970
    try runAll(
      SQL.chunked(
        rows,
        head: { q in
          q.add("INSERT INTO resources (driver, kind, name, observed, observed_at) SELECT ")
          q.bind(driver, as: "text")
          q.add(", v.kind, v.name, v.observed, ")
          q.bind(t, as: "float8")
          q.add(" FROM ")
        },
        tail: """
          ) AS v(kind, name, observed)
          ON CONFLICT (driver, kind, name) DO UPDATE SET observed = excluded.observed, observed_at = excluded.observed_at
          """),
      fencedAt: nil)
  }

  /// `statements` as one (on any session when not fenced), or in one transaction. Fenced at
  /// `epoch`: each statement returns rows only while the fence held.
  private func runAll(_ statements: [PostgresQuery], fencedAt epoch: Int64?) throws {
    if statements.count == 1 {
      if epoch == nil {
        try session.pooled { c in try c.query(statements[0]) }
      } else {
        try session.fenced { c, _ in try c.query(statements[0]) }
      }
      return
    }
    try session.transaction(fenced: epoch != nil) { c in
      for q in statements {
        if try c.query(q).isEmpty, let epoch { throw session.lostLock(epoch) }
      }
    }
  }

  public func completeAction(
    journal seq: Int64, result: String, message: String?, driver: String, id: ResourceID,
    externalChanges: [String: String?], observed: JSONValue?, audit: [AuditRecord], at: Date
  ) throws {
    let observedText = observed?.canonicalString
    let added = StateCoding.json(externalChanges.compactMapValues { $0 })
    let removed = externalChanges.filter { $0.value == nil }.map(\.key).sorted()
    let t = at.timeIntervalSince1970
    // Without an observation, what exists after an ok or failed action is unknown: observe again.
    let forget = observedText == nil && (result == "ok" || result == "failed")
    let epoch = try session.heldEpoch()
    // One statement (one round trip, one transaction): the fence, the record's ids merged
    // (jsonb: the changes win, removed keys go) with its observation, the journal entry's
    // outcome and the audit records, each write only when the fence holds.
    try session.appendingAudit(epoch: epoch) { c, known in
      var head = try known ?? Self.auditHead(c)
      var q = SQL("WITH fence AS (SELECT 1 AS ok WHERE \(Session.fence(epoch))),\n")
      q.add("record AS (INSERT INTO resources (driver, kind, name, external, observed, observed_at) SELECT ")
      q.bind(driver, as: "text")
      q.add(", ")
      q.bind(id.kind.rawValue, as: "text")
      q.add(", ")
      q.bind(id.name, as: "text")
      q.add(", ")
      q.bind(added, as: "text")
      q.add(", ")
      q.bind(observedText, as: "text")
      q.add(", ")
      q.bind(observedText == nil ? nil : t, as: "float8")
      q.add(
        """
         FROM fence
        ON CONFLICT (driver, kind, name) DO UPDATE SET
          external = ((resources.external::jsonb || excluded.external::jsonb) - 
        """)
      q.bind(removed, as: "text[]")
      q.add(
        """
        )::text,
          observed = COALESCE(excluded.observed, resources.observed),
          observed_at = CASE WHEN excluded.observed IS NOT NULL THEN excluded.observed_at
                             WHEN 
        """)
      q.bind(forget, as: "boolean")
      q.add(" THEN NULL ELSE resources.observed_at END RETURNING 1),\njournal_entry AS (UPDATE journal SET finished_at = ")
      q.bind(t, as: "float8")
      q.add(", result = ")
      q.bind(result, as: "text")
      q.add(", message = ")
      q.bind(message, as: "text")
      q.add(" WHERE seq = ")
      q.bind(seq, as: "bigint")
      q.add(" AND EXISTS (SELECT 1 FROM fence) RETURNING 1)")
      if !audit.isEmpty {
        q.add(
          ",\naudit_records AS (INSERT INTO audit (seq, time, revision, resource, driver, action, call, method, status, result, units, actor, host, prev, hash) SELECT v.* FROM (VALUES "
        )
        for (i, r) in audit.enumerated() {
          let e = AuditEntry(seq: head.entries + 1, record: r, prev: head.hash)
          head = AuditHead(entries: e.seq, hash: e.hash)
          q.add(i == 0 ? "(" : ", (")
          q.bind(e.seq, as: "bigint")
          for text in [e.time, e.revision, e.resource, e.driver, e.action, e.call, e.method] {
            q.add(", ")
            q.bind(text, as: "text")
          }
          q.add(", ")
          q.bind(e.status.map(Int64.init), as: "bigint")
          q.add(", ")
          q.bind(e.result, as: "text")
          q.add(", ")
          q.bind(Int64(e.units), as: "bigint")
          for text in [e.actor, e.host, e.prev, e.hash] {
            q.add(", ")
            q.bind(text, as: "text")
          }
          q.add(")")
        }
        q.add(") AS v, fence RETURNING 1)")
      }
      q.add("\nSELECT ok FROM fence")
      guard !(try c.query(q.query)).isEmpty else { throw session.lostLock(epoch) }
      return ((), head)
    }
  }

  public func markApplied(driver: String, id: ResourceID, digest: String, revision: String, annotations: [String: String]) throws {
    try markApplied([AppliedMark(driver: driver, id: id, digest: digest, revision: revision, annotations: annotations)])
  }

  public func markApplied(_ marks: [AppliedMark]) throws {
    let rows = SQL.lastOfEach(marks) { DriverResourceKey($0.driver, $0.id) }.map {
      [$0.driver, $0.id.kind.rawValue, $0.id.name, $0.digest, $0.revision, StateCoding.json($0.annotations)]
    }
    guard !rows.isEmpty else { return }
    let epoch = try session.heldEpoch()
    try runAll(
      SQL.chunked(
        rows,
        head: { q in q.add("INSERT INTO resources (driver, kind, name, applied_digest, applied_revision, annotations) SELECT v.* FROM ") },
        tail: """
          ) AS v WHERE \(Session.fence(epoch))
          ON CONFLICT (driver, kind, name) DO UPDATE SET
            applied_digest = excluded.applied_digest, applied_revision = excluded.applied_revision, annotations = excluded.annotations
          RETURNING 1
          """),
      fencedAt: epoch)
  }

  public func forget(driver: String, id: ResourceID) throws {
    try session.transaction(fenced: true) { c in
      try c.query("DELETE FROM resources WHERE driver = \(driver) AND kind = \(id.kind.rawValue) AND name = \(id.name)")
    }
  }

  public func adopt(driver: String, id: ResourceID, external: [String: String]) throws {
    guard !external.isEmpty else { return }
    // One fenced upsert: the found ids under the recorded ones (jsonb: the right side wins).
    try session.fenced { c, fence in
      try c.query(
        """
        INSERT INTO resources (driver, kind, name, external)
        SELECT \(driver), \(id.kind.rawValue), \(id.name), \(StateCoding.json(external)) WHERE \(unescaped: fence)
        ON CONFLICT (driver, kind, name) DO UPDATE SET external = (excluded.external::jsonb || resources.external::jsonb)::text
        RETURNING 1
        """)
    }
  }

  public func recordImport(_ items: [ImportRecord], cache: [String: String], revision: String, at: Date) throws {
    let rows = items.map { ($0, $0.observed.canonicalString) }
    try session.transaction(fenced: session.epoch != nil) { c in
      for (it, observed) in rows {
        let k = it.id.kind.rawValue
        if let r = try c.query(
          "SELECT external, applied_digest FROM resources WHERE driver = \(it.driver) AND kind = \(k) AND name = \(it.id.name)"
        ).first {
          let (ext, digest) = try r.decode((String, String?).self)
          if digest != nil || ext != "{}" {
            throw StateStoreError(
              "\(it.id) is already recorded for \(it.driver) in this state store; import into a fresh one, or without --adopt")
          }
        }
        try Self.ensureRow(c, it.driver, it.id)
        try c.query(
          """
          UPDATE resources SET external = \(StateCoding.json(it.external)), observed = \(observed), observed_at = \(at.timeIntervalSince1970),
            applied_digest = \(it.digest), applied_revision = \(revision), annotations = '{}'
          WHERE driver = \(it.driver) AND kind = \(k) AND name = \(it.id.name)
          """)
      }
      for (k, v) in cache.sorted(by: { $0.key < $1.key }) where !CachedSecrets.isSecret(k) {
        try c.query(
          "INSERT INTO cache (key, value, expires) VALUES (\(k), \(v), NULL) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = NULL"
        )
      }
    }
    cacheRowsChanged(Set(cache.keys))
  }

  /// Cache rows written other than through `setValue` (an import, a restore): read them again.
  func cacheRowsChanged(_ keys: Set<String>?) {
    known.withLock { k in if let keys { for key in keys { k[key] = nil } } else { k = [:] } }
    absent.withLock { a in if let keys { for key in keys { a[key] = nil } } else { a = [:] } }
  }

  public func rename(from old: ResourceID, to new: ResourceID) throws {
    guard old != new, old.kind == new.kind else { return }
    let kind = old.kind.rawValue
    try session.transaction(fenced: true) { c in
      try c.query(
        """
        DELETE FROM resources WHERE kind = \(kind) AND name = \(new.name) AND applied_digest IS NULL AND external = '{}'
          AND driver IN (SELECT driver FROM resources WHERE kind = \(kind) AND name = \(old.name))
        """)
      try c.query(
        """
        UPDATE resources SET name = \(new.name) WHERE kind = \(kind) AND name = \(old.name)
          AND driver NOT IN (SELECT driver FROM resources WHERE kind = \(kind) AND name = \(new.name))
        """)
      try c.query("UPDATE journal SET name = \(new.name) WHERE kind = \(kind) AND name = \(old.name)")
      let hasNew = !(try c.query("SELECT 1 FROM status WHERE kind = \(kind) AND name = \(new.name)").isEmpty)
      if !hasNew,
        let body = try c.query("SELECT body FROM status WHERE kind = \(kind) AND name = \(old.name)").first?.decode(String.self),
        var status = StateCoding.decode(ResourceStatusRecord.self, body)
      {
        status.id = new
        try c.query("INSERT INTO status (kind, name, body) VALUES (\(kind), \(new.name), \(StateCoding.json(status)))")
        try c.query("DELETE FROM status WHERE kind = \(kind) AND name = \(old.name)")
      }
    }
  }

  // MARK: journal

  public func beginAction(run: String, action: Action, at: Date, settleBy: Date?) throws -> Int64 {
    let digest = Digest.sha256Hex(action.payload.canonicalBytes)
    let a = (
      id: action.id, driver: action.driver, kind: action.resource.kind.rawValue, name: action.resource.name, op: action.operation.rawValue
    )
    let rows = try session.fencedOnLane { c, fence in
      // One statement: the intent is written only under the fence, and is on disk before the
      // call it announces is made (this transaction's commit is flushed; the session's are not).
      try c.query(
        """
        WITH fence AS (\(unescaped: fence)), flushed AS (SELECT set_config('synchronous_commit', 'on', true))
        INSERT INTO journal (run, action_id, driver, kind, name, operation, payload_digest, started_at, settle_by)
        SELECT \(run), \(a.id), \(a.driver), \(a.kind), \(a.name), \(a.op), \(digest), \(at.timeIntervalSince1970),
          \(settleBy?.timeIntervalSince1970) FROM fence, flushed RETURNING seq
        """)
    }
    guard let seq = try rows.first?.decode(Int64.self) else { throw StateStoreError("the journal returned no sequence number") }
    return seq
  }

  public func unsettledEntries(now: Date) throws -> [JournalEntry] {
    try session.run { c in
      try c.query(
        """
        SELECT * FROM journal WHERE settle_by > \(now.timeIntervalSince1970)
          AND (result IS NULL OR result IN ('interrupted', 'outcomeUnknown')) ORDER BY seq
        """
      ).compactMap(Self.entry)
    }
  }

  public func openJournalEntries() throws -> [JournalEntry] {
    try session.run { c in try c.query("SELECT * FROM journal WHERE result IS NULL ORDER BY seq").compactMap(Self.entry) }
  }

  public func closeInterrupted(at: Date) throws -> Int {
    let t = at.timeIntervalSince1970
    return try session.transaction(fenced: true) { c in
      let closed = try c.query(
        """
        UPDATE journal SET result = 'interrupted', finished_at = \(t),
          message = 'the process stopped during this action; its resource was observed again' WHERE result IS NULL RETURNING seq
        """
      ).count
      try c.query(
        """
        UPDATE resources SET observed_at = NULL WHERE EXISTS (SELECT 1 FROM journal j WHERE j.result = 'interrupted' AND j.finished_at = \(t)
          AND j.driver = resources.driver AND j.kind = resources.kind AND j.name = resources.name)
        """)
      return closed
    }
  }

  public func journal(limit: Int) throws -> [JournalEntry] {
    try session.run { c in try c.query("SELECT * FROM journal ORDER BY seq DESC LIMIT \(max(0, limit))").compactMap(Self.entry) }
  }

  // MARK: meta, status, plans

  public func meta(_ key: String) throws -> String? {
    try session.pooled { c in try c.query("SELECT value FROM meta WHERE key = \(key)").first?.decode(String.self) }
  }

  public func setMeta(_ key: String, _ value: String?) throws {
    try session.pooled { c in
      if let value {
        try c.query("INSERT INTO meta (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
      } else {
        try c.query("DELETE FROM meta WHERE key = \(key)")
      }
    }
  }

  public func status(_ id: ResourceID) throws -> ResourceStatusRecord? {
    try session.pooled { c in
      StateCoding.decode(
        ResourceStatusRecord.self,
        try c.query("SELECT body FROM status WHERE kind = \(id.kind.rawValue) AND name = \(id.name)").first?.decode(String.self))
    }
  }

  public func allStatus() throws -> [ResourceStatusRecord] {
    try session.pooled { c in
      try c.query("SELECT body FROM status ORDER BY kind, name").compactMap {
        StateCoding.decode(ResourceStatusRecord.self, try $0.decode(String.self))
      }
    }
  }

  public func saveStatus(_ st: ResourceStatusRecord) throws {
    let body = StateCoding.json(st)
    try session.fenced { c, fence in
      try c.query(
        """
        INSERT INTO status (kind, name, body) SELECT \(st.id.kind.rawValue), \(st.id.name), \(body) WHERE \(unescaped: fence)
        ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body RETURNING 1
        """)
    }
  }

  public func deleteStatus(_ id: ResourceID) throws {
    try session.transaction(fenced: true) { c in
      try c.query("DELETE FROM status WHERE kind = \(id.kind.rawValue) AND name = \(id.name)")
    }
  }

  public func rememberPlan(digest: String, revision: String, at: Date) throws {
    try session.transaction { c in
      try c.query(
        "INSERT INTO plans (digest, revision, created_at) VALUES (\(digest), \(revision), \(at.timeIntervalSince1970)) ON CONFLICT DO NOTHING"
      )
      try c.query("DELETE FROM plans WHERE digest NOT IN (SELECT digest FROM plans ORDER BY created_at DESC LIMIT 100)")
    }
  }

  public func knowsPlan(digest: String) throws -> Bool {
    try session.pooled { c in !(try c.query("SELECT 1 FROM plans WHERE digest = \(digest)").isEmpty) }
  }

  // MARK: audit log

  static func insertAudit(_ c: Session.Conn, _ e: AuditEntry) throws {
    try c.query(
      """
      INSERT INTO audit (seq, time, revision, resource, driver, action, call, method, status, result, units, actor, host, prev, hash)
      VALUES (\(e.seq), \(e.time), \(e.revision), \(e.resource), \(e.driver), \(e.action), \(e.call), \(e.method), \(e.status),
        \(e.result), \(e.units), \(e.actor), \(e.host), \(e.prev), \(e.hash))
      """)
  }

  private static func auditHead(_ c: Session.Conn) throws -> AuditHead {
    guard let r = try c.query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").first else { return .empty }
    let (seq, hash) = try r.decode((Int64, String).self)
    return AuditHead(entries: seq, hash: hash)
  }

  public func auditHead() throws -> AuditHead {
    try session.run { c in try Self.auditHead(c) }
  }

  public func auditEntries(after seq: Int64, limit: Int) throws -> [AuditEntry] {
    try session.run { c in
      try c.query("SELECT * FROM audit WHERE seq > \(seq) ORDER BY seq LIMIT \(max(0, limit))").map(Self.auditEntry)
    }
  }

  public func auditEntries(since: String?, last limit: Int) throws -> (entries: [AuditEntry], total: Int) {
    let since = since ?? ""
    let (entries, total) = try session.transaction { c in
      let total = try c.query("SELECT COUNT(*) FROM audit WHERE time >= \(since)").first?.decode(Int.self) ?? 0
      let rows = try c.query("SELECT * FROM audit WHERE time >= \(since) ORDER BY seq DESC LIMIT \(max(0, limit))")
      return (Array(try rows.map(Self.auditEntry).reversed()), total)
    }
    return (entries, total)
  }

  public func auditEntry(hash: String) throws -> AuditEntry? {
    try session.run { c in try c.query("SELECT * FROM audit WHERE hash = \(hash) ORDER BY seq LIMIT 1").first.map(Self.auditEntry) }
  }

  // MARK: QuotaWindowStore

  static func loadWindow(_ c: Session.Conn, service: String) throws -> QuotaLedger.Snapshot? {
    guard let r = try c.query("SELECT window_start, spent, per_channel FROM quota_windows WHERE service = \(service)").first else {
      return nil
    }
    let (start, spent, perText) = try r.decode((Double, Int, String).self)
    var per = StateCoding.decode([String: Int].self, perText) ?? [:]
    for row in try c.query("SELECT channel, spent FROM quota_channels WHERE service = \(service)") {
      let (ch, n) = try row.decode((String, Int).self)
      per[ch] = n
    }
    return QuotaLedger.Snapshot(service: service, windowStart: Date(timeIntervalSince1970: start), spent: spent, perChannel: per)
  }

  public func loadWindow(service: String) throws -> QuotaLedger.Snapshot? {
    try session.transaction { c in try Self.loadWindow(c, service: service) }
  }

  public func saveWindow(_ s: QuotaLedger.Snapshot) throws {
    try session.transaction { c in
      try c.query(
        """
        INSERT INTO quota_windows (service, window_start, spent, per_channel) VALUES (\(s.service), \(s.windowStart.timeIntervalSince1970), \(s.spent), '{}')
        ON CONFLICT (service) DO UPDATE SET window_start = excluded.window_start, spent = excluded.spent, per_channel = '{}'
        """)
      try c.query("DELETE FROM quota_channels WHERE service = \(s.service)")
      for (ch, n) in s.perChannel.sorted(by: { $0.key < $1.key }) {
        try c.query("INSERT INTO quota_channels (service, channel, spent) VALUES (\(s.service), \(ch), \(n))")
      }
    }
  }

  public func saveCharge(_ s: QuotaLedger.Snapshot, channel: String?) throws {
    try session.transaction { c in
      try c.query(
        """
        INSERT INTO quota_windows (service, window_start, spent, per_channel) VALUES (\(s.service), \(s.windowStart.timeIntervalSince1970), \(s.spent), '{}')
        ON CONFLICT (service) DO UPDATE SET window_start = excluded.window_start, spent = excluded.spent
        """)
      if let channel, let n = s.perChannel[channel] {
        try c.query(
          """
          INSERT INTO quota_channels (service, channel, spent) VALUES (\(s.service), \(channel), \(n))
          ON CONFLICT (service, channel) DO UPDATE SET spent = excluded.spent
          """)
      }
    }
  }

  // MARK: SharedQuotaWindowStore

  public func window(service: String, ifChangedFrom known: QuotaLedger.Snapshot) throws -> QuotaLedger.Snapshot? {
    try session.pooled { c in
      guard let r = try c.query("SELECT window_start, spent FROM quota_windows WHERE service = \(service)").first else { return nil }
      let (start, spent) = try r.decode((Double, Int).self)
      if start == known.windowStart.timeIntervalSince1970 && spent == known.spent { return nil }
      return try Self.loadWindow(c, service: service)
    }
  }

  public func charge(service: String, windowStart: Date, cost: Int, channel: String?, ceiling: Int) throws -> Int? {
    let start = windowStart.timeIntervalSince1970
    let c64 = Int64(cost)
    return try session.pooled { c -> Int? in
      let rows =
        if let channel {
          try c.query(
            """
            WITH w AS (UPDATE quota_windows SET spent = spent + \(c64)
                       WHERE service = \(service) AND window_start = \(start) AND spent + \(c64) <= \(Int64(ceiling)) RETURNING spent),
            ch AS (INSERT INTO quota_channels (service, channel, spent) SELECT \(service), \(channel), \(c64) FROM w
                   ON CONFLICT (service, channel) DO UPDATE SET spent = quota_channels.spent + excluded.spent)
            SELECT spent FROM w
            """)
        } else {
          try c.query(
            """
            UPDATE quota_windows SET spent = spent + \(c64)
            WHERE service = \(service) AND window_start = \(start) AND spent + \(c64) <= \(Int64(ceiling)) RETURNING spent
            """)
        }
      return try rows.first.map { Int(try $0.decode(Int64.self)) }
    }
  }

  public func charge(
    service: String, windowStart: Date, cost: Int, channel: String?, known: QuotaLedger.Snapshot,
    fits: (QuotaLedger.Snapshot) -> Bool
  ) throws -> (window: QuotaLedger.Snapshot, charged: Bool) {
    let start = windowStart.timeIntervalSince1970
    // Refused on the caller's copy: refused on the stored window too (what others spent since
    // can only lower what is available), without a round trip. The adding without the lock is
    // `charge(…ceiling:)`, which the ledger tries first.
    if known.windowStart == windowStart && !fits(known) { return (known, false) }
    return try session.transaction { c in
      try c.query(
        """
        INSERT INTO quota_windows (service, window_start, spent, per_channel) VALUES (\(service), \(start), 0, '{}')
        ON CONFLICT (service) DO NOTHING
        """)
      // The window's row, locked: every instance's charge of this service queues here.
      guard let row = try c.query("SELECT window_start, spent FROM quota_windows WHERE service = \(service) FOR UPDATE").first else {
        throw StateStoreError("the quota window of \(service) vanished")
      }
      var (stored, total) = try row.decode((Double, Int).self)
      if stored < start {
        // The reset passed: a new window for everyone.
        try c.query("UPDATE quota_windows SET window_start = \(start), spent = 0, per_channel = '{}' WHERE service = \(service)")
        try c.query("DELETE FROM quota_channels WHERE service = \(service)")
        (stored, total) = (start, 0)
      }
      var w: QuotaLedger.Snapshot
      if stored == known.windowStart.timeIntervalSince1970 && total == known.spent {
        // Nobody else charged since the caller's copy: it is the stored window.
        w = known
      } else {
        guard let loaded = try Self.loadWindow(c, service: service) else {
          throw StateStoreError("the quota window of \(service) vanished")
        }
        w = loaded
      }
      guard fits(w) else { return (w, false) }
      try c.query("UPDATE quota_windows SET spent = spent + \(cost) WHERE service = \(service)")
      w.spent += cost
      if let channel {
        try c.query(
          """
          INSERT INTO quota_channels (service, channel, spent) VALUES (\(service), \(channel), \(cost))
          ON CONFLICT (service, channel) DO UPDATE SET spent = quota_channels.spent + excluded.spent
          """)
        w.perChannel[channel, default: 0] += cost
      }
      return (w, true)
    }
  }

  // MARK: DriverCache

  public func value(_ key: String) throws -> (value: String, expires: Date?)? {
    if CachedSecrets.isSecret(key) { return secrets.withLock { $0[key] } }
    if let v = known.withLock({ $0[key] }) { return v }
    let now = ContinuousClock.now
    if let until = absent.withLock({ $0[key] }), now < until { return nil }
    let row: (String, Double?)? = try session.pooled { c in
      try c.query("SELECT value, expires FROM cache WHERE key = \(key)").first.map { try $0.decode((String, Double?).self) }
    }
    let v = row.map { (value: $0.0, expires: $0.1.map { Date(timeIntervalSince1970: $0) }) }
    if let v { known.withLock { $0[key] = v } } else { absent.withLock { $0[key] = now + Self.absentFor } }
    return v
  }

  public func setValue(_ key: String, _ value: String?, expires: Date?) throws {
    // No secret in any row: credentials stay in this process.
    if CachedSecrets.isSecret(key) {
      secrets.withLock { $0[key] = value.map { ($0, expires) } }
      return
    }
    known.withLock { $0[key] = nil }
    absent.withLock { $0[key] = nil }
    defer { if let value { known.withLock { $0[key] = (value, expires) } } }
    try session.pooled { c in
      if let value {
        try c.query(
          """
          INSERT INTO cache (key, value, expires) VALUES (\(key), \(value), \(expires?.timeIntervalSince1970))
          ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires
          """)
      } else {
        try c.query("DELETE FROM cache WHERE key = \(key)")
      }
    }
  }
}
