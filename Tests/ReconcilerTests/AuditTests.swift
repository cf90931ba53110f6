import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Resilience
import Testing
import YAMLKit

/// The hash-chained audit log (docs/audit.md): what the engine appends, the encoding, and what
/// `verify` names. The tampering of a real SQLite history is in EndToEndTests/AuditTests.
@Suite struct AuditTests {
  static let entry = AuditEntry(
    seq: 1, time: "2026-12-07T12:49:02.123Z", revision: "main@sha1:4f2c", resource: "Channel/tech-daily",
    driver: "youtube", action: "update", call: "youtube.channels.update", method: "PUT", status: 200,
    result: "ok", units: 50, actor: "apply", host: "host-1", prev: AuditLog.genesis, hash: "")

  @Test("the hash is SHA-256 over netstrings of the fields (docs/audit.md; the vectors were computed with Python's hashlib)")
  func encodingVectors() {
    #expect(AuditLog.hash(Self.entry) == "f5c88d1c5bede1f93aac2e5d71faf3d339c8c4971112b1c2fef330e81db6c66e")
    var odd = Self.entry
    odd.resource = "Channel/téch,1:x"  // separators and non-ASCII inside a field stay unambiguous
    #expect(AuditLog.hash(odd) == "fe8e8309d16f51e53de6f0ee1d8219c79732ed235668a7d7f1023a002d49d7c9")
    // Moving a character from one field to the next changes the hash.
    var a = Self.entry
    var b = Self.entry
    a.call = "youtube.channels.updateP"
    a.method = "UT"
    b.call = "youtube.channels.update"
    b.method = "PUT"
    #expect(AuditLog.hash(a) != AuditLog.hash(b))
    #expect(
      String(decoding: AuditLog.canonical(Self.entry), as: UTF8.self).hasPrefix("17:ytempire-audit-v1,1:1,24:2026-12-07T12:49:02.123Z,"))
    #expect(AuditLog.time(Date(timeIntervalSince1970: 1_780_000_000.5)) == "2026-05-28T20:26:40.500Z")
  }

  @Test("writes are kept, reads, the token exchange and calls refused before the wire are not; a call-less action is one entry")
  func whatIsRecorded() {
    let a = Action(
      driver: "youtube", resource: ResourceID(.channel, "tech-daily"), operation: .update, key: "branding", summary: "branding",
      changes: [], calls: [PlannedCall(service: "youtube", operation: "channels.update", units: 50, quota: "yt", channel: nil)])
    func call(_ op: String, _ method: String, _ status: Int?, ok: Bool, sent: Bool = true, service: String = "youtube") -> CallRecord {
      CallRecord(
        call: PlannedCall(service: service, operation: op, units: service == "youtube" ? 50 : 0, quota: nil, channel: nil),
        status: status, ok: ok, method: method, sent: sent)
    }
    let actor = AuditActor(role: .serve, host: "h")
    let at = Date(timeIntervalSince1970: 1_780_000_000)
    let calls = [
      call("token", "POST", 200, ok: true, service: "oauth"), call("channels.list", "GET", 200, ok: true),
      call("channels.update", "PUT", 200, ok: true), call("playlists.insert", "POST", 503, ok: false),
      call("playlists.insert", "POST", nil, ok: false), call("playlists.delete", "DELETE", nil, ok: false, sent: false),
    ]
    let r = AuditLog.records(action: a, calls: calls, actionResult: "failed", revision: "r1", actor: actor, at: at)
    #expect(r.map(\.call) == ["youtube.channels.update", "youtube.playlists.insert", "youtube.playlists.insert"])
    #expect(r.map(\.result) == ["ok", "failed", "noAnswer"])
    #expect(r.map(\.status) == [200, 503, nil])
    #expect(
      r.allSatisfy {
        $0.actor == "serve" && $0.host == "h" && $0.revision == "r1" && $0.resource == "Channel/tech-daily" && $0.action == "update"
      })
    // A driver writing without HTTP (the config store): one entry for the action that ran, none for one deferred.
    let direct = AuditLog.records(action: a, calls: [], actionResult: "ok", revision: "r1", actor: actor, at: at)
    #expect(direct.count == 1 && direct[0].method == "" && direct[0].call == "youtube.channels.update" && direct[0].units == 50)
    #expect(AuditLog.records(action: a, calls: [], actionResult: "deferred", revision: "r1", actor: actor, at: at).isEmpty)
  }

  @Test(
    "an apply appends one chained entry per write with the engine's clock and actor; an idle run appends none and changes no status file")
  func applyAppendsAndIdleRunChangesNothing() async throws {
    let rig = try Rig()
    let e = rig.engine { $0.actor = AuditActor(role: .serve, host: "node-7") }
    let desired = try resources(memoryLimit() + monitor("a") + monitor("b"))
    let plan = try await e.plan(desired, revision: "main@sha1:1234")
    let report = try await e.apply(plan, desired: desired)
    #expect(report.succeeded == 2)
    let (entries, total) = try rig.store.auditEntries(since: nil, last: 100)
    #expect(total == 2 && entries.map(\.seq) == [1, 2])
    #expect(Set(entries.map(\.resource)) == ["Monitor/a", "Monitor/b"])
    for x in entries {
      #expect(x.call == "memory.objects.put" && x.method == "POST" && x.status == 200 && x.result == "ok" && x.units == 10)
      #expect(x.actor == "serve" && x.host == "node-7" && x.revision == "main@sha1:1234" && x.action == "create")
      #expect(x.hash == AuditLog.hash(x))
    }
    #expect(entries[0].prev == AuditLog.genesis && entries[1].prev == entries[0].hash)
    // The injected clock, not the wall clock: the ManualClock starts in 2026-05.
    #expect(entries.allSatisfy { $0.time.hasPrefix("2026-05-28T") })
    let head = try rig.store.verifyAudit()
    #expect(head == AuditHead(entries: 2, hash: entries[1].hash))

    try StatusBook.record(plan: plan, report: report, desired: desired, store: rig.store, now: rig.clock.wallNow)
    let quotas = { try StatusBook.quotas(desired: desired, store: rig.store, clock: rig.clock) }
    let files = try StatusBook.files(store: rig.store, quotas: try quotas())
    let summary = try Self.root(files["summary.yaml"])
    #expect(summary["status"]?["audit"]?["entries"]?.scalarText == "2")
    #expect(summary["status"]?["audit"]?["head"]?.scalarText == head.hash)

    // Idle: nothing planned, nothing appended, the same files (no status commit).
    let p2 = try await e.plan(desired, revision: "main@sha1:1234")
    #expect(!p2.hasChanges)
    let r2 = try await e.apply(p2, desired: desired)
    try StatusBook.record(plan: p2, report: r2, desired: desired, store: rig.store, now: rig.clock.wallNow.addingTimeInterval(60))
    #expect(try rig.store.auditHead() == head)
    let again = try StatusBook.files(store: rig.store, quotas: try quotas())
    let summary2 = try Self.root(again["summary.yaml"])
    #expect(summary2["status"]?["audit"]?["entries"]?.scalarText == "2")
    #expect(summary2["status"]?["audit"]?["head"]?.scalarText == head.hash)
    #expect(again["monitor/a.yaml"] == files["monitor/a.yaml"] && again["monitor/b.yaml"] == files["monitor/b.yaml"])

    // An action that failed after its write was answered: the write is recorded as the
    // service answered it; the chain goes on from the head.
    rig.driver.failApply(ResourceID(.monitor, "b"), "refused")
    let v2 = try resources(memoryLimit() + monitor("a") + monitor("b", summary: "changed"))
    let r3 = try await e.apply(try await e.plan(v2, revision: "main@sha1:5678"), desired: v2)
    #expect(r3.failed == 1)
    let after = try rig.store.auditEntries(after: 2, limit: 10)
    #expect(after.count == 1)
    #expect(after.first?.resource == "Monitor/b" && after.first?.action == "update" && after.first?.revision == "main@sha1:5678")
    #expect(after.first?.method == "POST" && after.first?.result == "ok" && after.first?.prev == head.hash)
    #expect(try rig.store.verifyAudit().entries == 3)
  }

  @Test("an empty log verifies, and its summary says 0 entries at the genesis hash")
  func emptyLog() throws {
    let rig = try Rig()
    #expect(try rig.store.verifyAudit() == .empty)
    let files = try StatusBook.files(store: rig.store, quotas: [])
    let summary = try Self.root(files["summary.yaml"])
    #expect(summary["status"]?["audit"]?["entries"]?.scalarText == "0")
    #expect(summary["status"]?["audit"]?["head"]?.scalarText == AuditLog.genesis)
  }

  static func root(_ bytes: [UInt8]?) throws -> YAMLNode {
    let bytes = try #require(bytes)
    return try #require(YAMLLoader.load(bytes, file: "summary.yaml").documents.first?.root)
  }

  /// A chain of `n` entries, as the store would hold it.
  static func chain(_ n: Int) -> [AuditEntry] {
    var out: [AuditEntry] = []
    var prev = AuditLog.genesis
    for i in 1...n {
      let r = AuditRecord(
        time: "2026-12-07T12:00:0\(i).000Z", revision: "r1", resource: "Monitor/m\(i)", driver: "memory", action: "create",
        call: "memory.objects.put", method: "POST", status: 200, result: "ok", units: 10, actor: "apply", host: "h")
      let e = AuditEntry(seq: Int64(i), record: r, prev: prev)
      out.append(e)
      prev = e.hash
    }
    return out
  }

  static func verify(_ rows: [AuditEntry]) throws -> AuditHead {
    let sorted = rows.sorted { $0.seq < $1.seq }
    return try AuditLog.verify(
      page: { after, limit in Array(sorted.filter { $0.seq > after }.prefix(limit)) },
      byHash: { h in sorted.first { $0.hash == h } })
  }

  static func failure(_ rows: [AuditEntry]) -> AuditLog.Failure? {
    do {
      _ = try verify(rows)
      return nil
    } catch { return error as? AuditLog.Failure }
  }

  @Test("verify names the first bad entry: edited, re-hashed, missing, swapped, moved, cut at the start")
  func verifyNamesTheFirstBadEntry() throws {
    let good = Self.chain(6)
    #expect(try Self.verify(good) == AuditHead(entries: 6, hash: good[5].hash))

    var edited = good
    edited[2].units = 0
    #expect(Self.failure(edited)?.description == "audit: entry 3 edited: its fields do not hash to its recorded hash")

    // Edited and re-hashed: entry 4 still links to the old hash of 3.
    var rehashed = good
    rehashed[2].result = "failed"
    rehashed[2].hash = AuditLog.hash(rehashed[2])
    #expect(Self.failure(rehashed)?.description == "audit: entry 3 edited: entry 4 is chained to another hash than entry 3 has")

    var removed = good
    removed.remove(at: 3)
    #expect(Self.failure(removed)?.description == "audit: entry 4 missing (sequence gap): the log goes from entry 3 to entry 5")

    // Swapped: the rows of 2 and 5 exchange their sequence numbers.
    var swapped = good
    swapped[1].seq = 5
    swapped[4].seq = 2
    #expect(Self.failure(swapped)?.description == "audit: entry 2 out of order: it holds entry 5 (entries were reordered)")

    // The first entry moved: its prev is the genesis hash.
    var first = good
    first[0].seq = 3
    first[2].seq = 1
    #expect(Self.failure(first)?.description == "audit: entry 1 out of order: it holds entry 3 (entries were reordered)")

    #expect(Self.failure(Array(good.dropFirst()))?.description == "audit: entry 1 missing (sequence gap): the log starts at entry 2")

    var forged = good
    forged[0].prev = String(repeating: "1", count: 64)
    forged[0].hash = AuditLog.hash(forged[0])
    #expect(Self.failure(forged)?.kind == .edited)
    #expect(Self.failure(forged)?.entry == 1)
  }
}
