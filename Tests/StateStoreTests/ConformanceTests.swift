import DriverKit
import EmpireModel
import Foundation
import PostgresState
import Reconciler
import Resilience
import TestSupport
import Testing

/// One behaviour, two stores: every `StateStore` requirement exercised the same way against
/// SQLite and a real PostgreSQL (started here, on 127.0.0.1, as the `postgres` user).
enum Conformance {
  static let t0 = Date(timeIntervalSince1970: 1_780_000_000)
  static let pl = ResourceID(.channel, "tech-daily")

  static func action(_ id: ResourceID, _ op: ActionOperation = .create, key: String = "playlist") -> Action {
    Action(
      driver: "youtube", resource: id, operation: op, key: key, summary: "\(op) \(key)", changes: [],
      calls: [PlannedCall(service: "youtube", operation: "playlists.insert", units: 50, quota: "yt", channel: id.name)])
  }

  static func audit(_ call: String, at: Date) -> AuditRecord {
    AuditRecord(
      time: AuditLog.time(at), revision: "r1", resource: "Channel/tech-daily", driver: "youtube", action: "create",
      call: call, method: "POST", status: 200, result: "ok", units: 50, actor: "apply", host: "h")
  }

  /// Every requirement of the protocol, with the values each must give back.
  static func run(_ store: any StateStore) throws {
    // Observations: a plan's rows hold no ids and no applied digest.
    try store.saveObservations(driver: "youtube", [(pl, .object(["title": .string("Tech")])), (ResourceID(.channel, "a"), .null)], at: t0)
    var r = try #require(try store.record(driver: "youtube", id: pl))
    #expect(r.observed == .object(["title": .string("Tech")]))
    #expect(r.observedAt == t0)
    #expect(r.appliedDigest == nil && r.external.isEmpty)
    #expect(try store.records(driver: "youtube").map(\.id.name) == ["a", "tech-daily"])
    #expect(try store.records(driver: nil).count == 2)
    #expect(try store.records(driver: "n8n").isEmpty)
    // One batch naming a resource twice: the last observation wins.
    try store.saveObservations(driver: "n8n", [(pl, .string("first")), (pl, .string("last"))], at: t0)
    #expect(try store.record(driver: "n8n", id: pl)?.observed == .string("last"))
    try store.forget(driver: "n8n", id: pl)

    // Journal and outcome, with the audit entries of the action's calls.
    let seq = try store.beginAction(run: "run1", action: action(pl), at: t0, settleBy: t0.addingTimeInterval(600))
    let seq2 = try store.beginAction(run: "run1", action: action(ResourceID(.channel, "a")), at: t0, settleBy: nil)
    #expect(seq2 == seq + 1)
    #expect(try store.openJournalEntries().map(\.seq) == [seq, seq2])
    #expect(try store.unsettledEntries(now: t0).map(\.seq) == [seq])
    #expect(try store.unsettledEntries(now: t0.addingTimeInterval(601)).isEmpty)
    try store.completeAction(
      journal: seq, result: "ok", message: nil, driver: "youtube", id: pl, externalChanges: ["playlistId": "PL1", "x": "y"],
      observed: .object(["title": .string("Tech 2")]), audit: [audit("youtube.playlists.insert", at: t0), audit("youtube.x", at: t0)],
      at: t0.addingTimeInterval(1))
    try store.completeAction(
      journal: seq, result: "ok", message: nil, driver: "youtube", id: pl, externalChanges: ["x": nil], observed: nil, audit: [],
      at: t0.addingTimeInterval(2))
    r = try #require(try store.record(driver: "youtube", id: pl))
    #expect(r.external == ["playlistId": "PL1"])
    #expect(r.observedAt == nil, "an ok action without an observation makes the resource be observed again")
    #expect(r.observed == .object(["title": .string("Tech 2")]))
    let done = try #require(try store.journal(limit: 10).first { $0.seq == seq })
    #expect(done.result == "ok" && done.finishedAt == t0.addingTimeInterval(2) && done.actionID == action(pl).id)
    #expect(done.operation == "create" && done.run == "run1" && done.settleBy == t0.addingTimeInterval(600))
    #expect(try store.journal(limit: 1).map(\.seq) == [seq2])

    // A crash leaves an entry open: closed as interrupted, its resource observed again.
    try store.saveObservations(driver: "youtube", [(ResourceID(.channel, "a"), .string("seen"))], at: t0)
    #expect(try store.closeInterrupted(at: t0.addingTimeInterval(3)) == 1)
    #expect(try store.openJournalEntries().isEmpty)
    #expect(try store.journal(limit: 1).first?.result == "interrupted")
    #expect(try store.record(driver: "youtube", id: ResourceID(.channel, "a"))?.observedAt == nil)
    #expect(try store.closeInterrupted(at: t0.addingTimeInterval(4)) == 0)

    // Applied digests, adoption, forgetting.
    try store.markApplied(driver: "youtube", id: pl, digest: "d1", revision: "rev1", annotations: ["ytempire.io/prune": "false"])
    r = try #require(try store.record(driver: "youtube", id: pl))
    #expect(r.appliedDigest == "d1" && r.appliedRevision == "rev1" && r.annotations == ["ytempire.io/prune": "false"])
    try store.adopt(driver: "youtube", id: pl, external: ["playlistId": "OTHER", "channelId": "UC1"])
    #expect(try store.record(driver: "youtube", id: pl)?.external == ["playlistId": "PL1", "channelId": "UC1"])
    let found = ResourceID(.schedule, "found")
    try store.adopt(driver: "n8n", id: found, external: ["id": "W9"])
    #expect(try store.record(driver: "n8n", id: found)?.external == ["id": "W9"])
    // What an apply converged, in one call: each resource's digest (the last one given wins).
    try store.markApplied([
      AppliedMark(driver: "n8n", id: found, digest: "x1", revision: "rev2", annotations: [:]),
      AppliedMark(driver: "n8n", id: ResourceID(.schedule, "new"), digest: "x2", revision: "rev2", annotations: ["a": "b"]),
      AppliedMark(driver: "n8n", id: found, digest: "x3", revision: "rev2", annotations: [:]),
    ])
    let marked = try #require(try store.record(driver: "n8n", id: found))
    #expect(marked.appliedDigest == "x3" && marked.appliedRevision == "rev2" && marked.external == ["id": "W9"])
    let made = try #require(try store.record(driver: "n8n", id: ResourceID(.schedule, "new")))
    #expect(made.appliedDigest == "x2" && made.annotations == ["a": "b"] && made.external.isEmpty)
    try store.markApplied([])
    try store.forget(driver: "n8n", id: found)
    try store.forget(driver: "n8n", id: ResourceID(.schedule, "new"))
    try store.forget(driver: "youtube", id: ResourceID(.channel, "a"))
    #expect(try store.record(driver: "youtube", id: ResourceID(.channel, "a")) == nil)

    // Import refuses what is recorded, changing nothing.
    let imp = ImportRecord(driver: "youtube", id: pl, external: ["playlistId": "PL9"], observed: .null, digest: "d9")
    #expect(throws: StateStoreError.self) { try store.recordImport([imp], cache: ["k": "v"], revision: "import", at: t0) }
    #expect(try store.value("k") == nil)
    let fresh = ImportRecord(driver: "n8n", id: ResourceID(.schedule, "s"), external: ["id": "W1"], observed: .bool(true), digest: "d2")
    try store.recordImport([fresh], cache: ["k": "v"], revision: "import", at: t0)
    let ir = try #require(try store.record(driver: "n8n", id: ResourceID(.schedule, "s")))
    #expect(ir.external == ["id": "W1"] && ir.appliedDigest == "d2" && ir.appliedRevision == "import" && ir.observed == .bool(true))
    #expect(try store.value("k")?.value == "v")

    // Status, meta, plan keys.
    let status = try #require(
      StateCoding.decode(
        ResourceStatusRecord.self,
        """
        {"id": {"kind": "Channel", "name": "tech-daily"}, "lastAppliedRevision": "rev1", "lastAttemptedRevision": "rev1",
         "conditions": [], "external": {"playlistId": "PL1"}, "lastActions": [],
         "history": [{"revision": "rev1", "time": 1780000000, "result": "ok", "actions": 1}]}
        """))
    try store.saveStatus(status)
    #expect(try store.status(pl) == status)
    #expect(try store.allStatus() == [status])
    try store.setMeta("a.key", "1")
    try store.setMeta("a.key", "2")
    #expect(try store.meta("a.key") == "2")
    try store.setMeta("a.key", nil)
    #expect(try store.meta("a.key") == nil)
    for i in 0..<102 { try store.rememberPlan(digest: "p\(i)", revision: "r", at: t0.addingTimeInterval(Double(i))) }
    #expect(try store.knowsPlan(digest: "p101") && store.knowsPlan(digest: "p2"))
    #expect(try !store.knowsPlan(digest: "p1") && !store.knowsPlan(digest: "p0"), "only the last 100 plans are kept")

    // Rename moves record, journal and status.
    let renamed = ResourceID(.channel, "tech-weekly")
    try store.rename(from: pl, to: renamed)
    #expect(try store.record(driver: "youtube", id: pl) == nil)
    #expect(try store.record(driver: "youtube", id: renamed)?.external["playlistId"] == "PL1")
    #expect(try store.status(renamed)?.id == renamed && store.status(pl) == nil)
    #expect(try store.journal(limit: 10).contains { $0.resource == renamed && $0.seq == seq })
    try store.deleteStatus(renamed)
    #expect(try store.allStatus().isEmpty)

    // The audit chain.
    let head = try store.auditHead()
    #expect(head.entries == 2)
    #expect(try store.verifyAudit() == head)
    let entries = try store.auditEntries(after: 0, limit: 10)
    #expect(entries.map(\.call) == ["youtube.playlists.insert", "youtube.x"])
    #expect(entries[1].prev == entries[0].hash && entries[1].hash == head.hash)
    #expect(try store.auditEntry(hash: entries[0].hash) == entries[0])
    let (last, total) = try store.auditEntries(since: nil, last: 1)
    #expect(last == [entries[1]] && total == 2)
    #expect(try store.auditEntries(since: "2099", last: 5).total == 0)

    // Quota windows: a whole window, then single charges.
    #expect(try store.loadWindow(service: "yt") == nil)
    try store.saveWindow(QuotaLedger.Snapshot(service: "yt", windowStart: t0, spent: 100, perChannel: ["a": 60, "b": 40]))
    try store.saveCharge(QuotaLedger.Snapshot(service: "yt", windowStart: t0, spent: 150, perChannel: ["a": 110, "b": 40]), channel: "a")
    #expect(
      try store.loadWindow(service: "yt")
        == QuotaLedger.Snapshot(service: "yt", windowStart: t0, spent: 150, perChannel: ["a": 110, "b": 40]))
    try store.saveWindow(QuotaLedger.Snapshot(service: "yt", windowStart: t0.addingTimeInterval(86400), spent: 0, perChannel: [:]))
    #expect(try store.loadWindow(service: "yt")?.perChannel.isEmpty == true)

    // The driver cache.
    try store.setValue("token", "abc", expires: t0)
    #expect(try store.value("token")?.value == "abc" && store.value("token")?.expires == t0)
    try store.setValue("token", nil, expires: nil)
    #expect(try store.value("token") == nil)
    // A credential (an access token) reads back in this process, whatever the store keeps.
    try store.setValue("youtube.token.tech", "ya29.canary-token", expires: t0)
    #expect(try store.value("youtube.token.tech")?.value == "ya29.canary-token")
  }
}

@Suite("state store conformance")
struct ConformanceTests {
  @Test("SQLite passes the conformance suite")
  func sqlite() throws {
    let dir = try TemporaryDirectory()
    try Conformance.run(try SQLiteStateStore(stateDir: dir.path))
  }

  @Test(
    "PostgreSQL passes the conformance suite, and a dump moves to SQLite and back row for row",
    .enabled(if: PostgresServer.isAvailable, "PostgreSQL is not installed (make deps)"))
  func postgres() async throws {
    let pg = try await offload { try PostgresServer.start() }
    defer { pg.stop() }
    let store = try PostgresStateStore(try PostgresStateSettings.parse(pg.url))
    defer { store.close() }
    try store.lockWriter(host: "test", pid: 1)
    try Conformance.run(store)

    let dump = try store.dump()
    #expect(!dump.isEmpty)
    // No secret in any row.
    let everything = try pg.psql("SELECT * FROM ytempire_state.cache").flatMap { $0 }.joined(separator: " ")
    #expect(!everything.contains("ya29.canary-token"))
    #expect(!dump.cache.contains { $0.key.hasPrefix("youtube.token.") })
    let dir = try TemporaryDirectory()
    let sqlite = try SQLiteStateStore(stateDir: dir.path)
    try sqlite.restore(dump)
    let back = try sqlite.dump()
    #expect(back.resources == dump.resources)
    #expect(back.journal == dump.journal)
    #expect(back.meta == dump.meta)
    #expect(back.status == dump.status)
    #expect(back.plans == dump.plans)
    #expect(back.quotaWindows == dump.quotaWindows)
    #expect(back.cache == dump.cache)
    #expect(back.audit == dump.audit)
    #expect(try sqlite.verifyAudit() == store.auditHead())
    #expect(throws: StateStoreError.self) { try store.restore(back) }

    let other = try PostgresStateStore(try PostgresStateSettings.parse(try pg.createDatabase("second")))
    defer { other.close() }
    try other.restore(back)
    let again = try other.dump()
    #expect(again.resources == dump.resources)
    #expect(again.journal == dump.journal)
    #expect(again.audit == dump.audit)
    // The journal's sequence goes on after the copied entries.
    try other.lockWriter(host: "test", pid: 2)
    let next = try other.beginAction(run: "r", action: Conformance.action(Conformance.pl), at: Conformance.t0, settleBy: nil)
    let lastSeq: Int64 = dump.journal.map { $0.entry.seq }.max() ?? 0
    #expect(next == lastSeq + 1)
  }
}

@Suite(
  "PostgreSQL state store: driver caches and batches", .enabled(if: PostgresServer.isAvailable, "PostgreSQL is not installed (make deps)"))
struct SharedCacheTests {
  @Test("a miss is remembered for a while (another instance's value is read later); this process's own writes are read at once")
  func rememberedMiss() async throws {
    let pg = try await offload { try PostgresServer.start() }
    defer { pg.stop() }
    let settings = try PostgresStateSettings.parse(pg.url)
    let a = try PostgresStateStore(settings)
    defer { a.close() }
    let b = try PostgresStateStore(settings)
    defer { b.close() }
    #expect(try a.value("youtube.identity.x") == nil)
    try b.setValue("youtube.identity.x", "UC1", expires: nil)
    #expect(try b.value("youtube.identity.x")?.value == "UC1")
    #expect(try a.value("youtube.identity.x") == nil, "the miss is remembered: no round trip")
    try a.setValue("youtube.identity.x", "UC2", expires: nil)
    #expect(try a.value("youtube.identity.x")?.value == "UC2")
    #expect(try pg.psql("SELECT value FROM ytempire_state.cache WHERE key = 'youtube.identity.x'") == [["UC2"]])
  }

  @Test("batches past the bind limit: several statements in one transaction, every row written once")
  func batchesPastTheBindLimit() async throws {
    let pg = try await offload { try PostgresServer.start() }
    defer { pg.stop() }
    let store = try PostgresStateStore(try PostgresStateSettings.parse(pg.url))
    defer { store.close() }
    try store.lockWriter(host: "test", pid: 1)
    let n = 25_000  // 3 values a row: more than 65,535 binds
    let ids = (0..<n).map { ResourceID(.channel, "c\($0)") }
    try store.saveObservations(driver: "youtube", ids.map { ($0, JSONValue.string("seen")) }, at: Conformance.t0)
    try store.markApplied(ids.map { AppliedMark(driver: "youtube", id: $0, digest: "d", revision: "r", annotations: [:]) })
    let counts = try pg.psql(
      "SELECT count(*), count(*) FILTER (WHERE observed IS NOT NULL AND applied_digest = 'd') FROM ytempire_state.resources")
    #expect(counts == [["\(n)", "\(n)"]])
  }
}

/// Runs blocking work (starting PostgreSQL) off the cooperative pool.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { k in
    Thread.detachNewThread { k.resume(with: Result { try body() }) }
  }
}
