import DriverKit
import EmpireModel
import Foundation
import PostgresState
import Reconciler
import TestSupport
import Testing

/// The PostgreSQL store writes an action's intent and its outcome (with its audit records) as
/// one statement each: these check that one statement is still all or nothing, that the audit
/// chain's head it remembers never outlives its lock, and that only the intent is flushed.
@Suite(
  "PostgreSQL state store: one statement per journal write",
  .enabled(if: PostgresServer.isAvailable, "PostgreSQL is not installed (make deps)")
)
struct JournalStatementTests {
  static func complete(_ store: PostgresStateStore, _ seq: Int64, calls: [String], at: Date = Conformance.t0) throws {
    try store.completeAction(
      journal: seq, result: "ok", message: nil, driver: "youtube", id: Conformance.pl, externalChanges: ["playlistId": "PL1"],
      observed: .string("after"), audit: calls.map { Conformance.audit($0, at: at) }, at: at)
  }

  @Test("the audit chain holds when writers take turns: a remembered head is never used under a later epoch")
  func auditAcrossWriters() async throws {
    let pg = try await offload { try PostgresServer.start() }
    defer { pg.stop() }
    let settings = try PostgresStateSettings.parse(pg.url)
    let a = try PostgresStateStore(settings)
    defer { a.close() }
    let b = try PostgresStateStore(settings)
    defer { b.close() }
    let action = Conformance.action(Conformance.pl)

    try a.lockWriter(host: "node-a", pid: 1)
    try Self.complete(a, try a.beginAction(run: "r1", action: action, at: Conformance.t0, settleBy: nil), calls: ["c1", "c2"])
    a.unlockWriter()
    try b.lockWriter(host: "node-b", pid: 2)
    try Self.complete(b, try b.beginAction(run: "r2", action: action, at: Conformance.t0, settleBy: nil), calls: ["c3"])
    b.unlockWriter()
    // A leads again: the chain goes on from B's entry, not from the head A last wrote.
    try a.lockWriter(host: "node-a", pid: 1)
    try Self.complete(a, try a.beginAction(run: "r3", action: action, at: Conformance.t0, settleBy: nil), calls: ["c4", "c5"])

    let head = try a.verifyAudit()
    #expect(head.entries == 5)
    let entries = try a.auditEntries(after: 0, limit: 10)
    #expect(entries.map(\.call) == ["c1", "c2", "c3", "c4", "c5"])
    #expect(zip(entries, entries.dropFirst()).allSatisfy { $1.prev == $0.hash })
    #expect(entries.map(\.status) == [200, 200, 200, 200, 200] && entries.allSatisfy { $0.units == 50 })
  }

  @Test("an outcome refused by the fence writes nothing: no record, no journal outcome, no audit record")
  func fencedOutcomeIsAllOrNothing() async throws {
    let pg = try await offload { try PostgresServer.start() }
    defer { pg.stop() }
    let store = try PostgresStateStore(try PostgresStateSettings.parse(pg.url))
    defer { store.close() }
    try store.lockWriter(host: "node-a", pid: 1)
    let seq = try store.beginAction(run: "r", action: Conformance.action(Conformance.pl), at: Conformance.t0, settleBy: nil)
    // The lock's row moves to another epoch while this session lives (what a takeover does
    // once the session ended): the next outcome's fence fails inside its one statement.
    _ = try pg.psql("UPDATE ytempire_state.writer_lock SET epoch = epoch + 1")
    let refused = #expect(throws: StateStoreError.self) { try Self.complete(store, seq, calls: ["c1"]) }
    #expect(refused?.message.contains("writes nothing more") == true)
    #expect(try store.record(driver: "youtube", id: Conformance.pl) == nil)
    #expect(try store.openJournalEntries().map(\.seq) == [seq])
    #expect(try store.auditHead() == .empty)
    #expect(throws: StateStoreError.self) {
      _ = try store.beginAction(run: "r", action: Conformance.action(Conformance.pl), at: Conformance.t0, settleBy: nil)
    }
    #expect(try store.openJournalEntries().count == 1)
  }

  @Test("an intent is written beside the lock's session only while that session holds the lock")
  func intentNeedsTheLocksSession() async throws {
    let pg = try await offload { try PostgresServer.start() }
    defer { pg.stop() }
    let store = try PostgresStateStore(try PostgresStateSettings.parse(pg.url))
    defer { store.close() }
    try store.lockWriter(host: "node-a", pid: 1)
    let action = Conformance.action(Conformance.pl)
    let first = try store.beginAction(run: "r", action: action, at: Conformance.t0, settleBy: nil)
    // Only the lock's session ends; this store has not noticed yet, its other sessions live.
    _ = try pg.psql("SELECT pg_terminate_backend(backend_pid) FROM ytempire_state.writer_lock")
    let refused = #expect(throws: StateStoreError.self) {
      _ = try store.beginAction(run: "r", action: action, at: Conformance.t0, settleBy: nil)
    }
    #expect(refused?.message.contains("writes nothing more") == true)
    #expect(try pg.psql("SELECT seq FROM ytempire_state.journal").map { $0.first ?? "" } == ["\(first)"])
  }

  @Test("an intent's commit is flushed before its call is made; an observation's commit is not waited for")
  func intentIsFlushed() async throws {
    // The WAL writer's background flush far apart: what is flushed right after a write was
    // flushed by that write's commit.
    let pg = try await offload { try PostgresServer.start(settings: ["wal_writer_delay": "10s"]) }
    defer { pg.stop() }
    let store = try PostgresStateStore(try PostgresStateSettings.parse(pg.url))
    defer { store.close() }
    try store.lockWriter(host: "node-a", pid: 1)
    func flushed() throws -> Bool {
      try pg.psql("SELECT pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn()").first?.first == "t"
    }
    var observationsFlushed = 0
    for i in 0..<5 {
      let id = ResourceID(.channel, "c\(i)")
      try store.saveObservations(driver: "youtube", [(id, .string("seen"))], at: Conformance.t0)
      if try flushed() { observationsFlushed += 1 }
      _ = try store.beginAction(run: "r", action: Conformance.action(id), at: Conformance.t0, settleBy: nil)
      #expect(try flushed(), "intent \(i) is not on disk yet")
    }
    #expect(observationsFlushed < 5, "every observation's commit was flushed too: the check cannot tell them apart")
  }
}
