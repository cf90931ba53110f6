import DriverKit
import EmpireModel
import Foundation
import PostgresState
import Reconciler
import TestSupport
import Testing

@Suite(
  "PostgreSQL state store: the writer lock and fencing", .enabled(if: PostgresServer.isAvailable, "PostgreSQL is not installed (make deps)")
)
struct WriterLockTests {
  @Test("one writer: a second is refused naming the holder's host, pid and since when; a reader is never blocked")
  func oneWriter() async throws {
    let pg = try await offload { try PostgresServer.start() }
    defer { pg.stop() }
    let settings = try PostgresStateSettings.parse(pg.url)
    let leader = try PostgresStateStore(settings)
    defer { leader.close() }
    #expect(try leader.lockHolder() == nil)
    try leader.lockWriter(host: "node-a", pid: 4242, now: Conformance.t0)
    #expect(leader.writerEpoch == 1)
    #expect(try leader.lockHolder() == LockHolder(host: "node-a", pid: 4242, since: Conformance.t0))

    let second = try PostgresStateStore(settings)
    defer { second.close() }
    let refusal = #expect(throws: StateStoreError.self) { try second.lockWriter(host: "node-b", pid: 7) }
    let message = refusal?.message ?? ""
    #expect(message.contains("host node-a") && message.contains("pid 4242") && message.contains("2026-05-28T"))
    #expect(!message.contains("node-b"))

    // A plan: reads, saves what it observed, writes no journal.
    try second.saveObservations(driver: "youtube", [(Conformance.pl, .string("seen"))], at: Conformance.t0)
    #expect(try leader.record(driver: "youtube", id: Conformance.pl)?.observed == .string("seen"))
    #expect(throws: StateStoreError.self) {
      _ = try second.beginAction(run: "r", action: Conformance.action(Conformance.pl), at: Conformance.t0, settleBy: nil)
    }
    #expect(try second.openJournalEntries().isEmpty)

    // Released: the next writer takes it at the next epoch.
    leader.unlockWriter()
    try second.lockWriter(host: "node-b", pid: 7)
    #expect(second.writerEpoch == 2)
    #expect(try leader.lockHolder()?.host == "node-b")
  }

  @Test("a writer whose session ended writes nothing more; the next one takes over at a higher epoch")
  func fencing() async throws {
    let pg = try await offload { try PostgresServer.start() }
    defer { pg.stop() }
    let settings = try PostgresStateSettings.parse(pg.url)
    let old = try PostgresStateStore(settings)
    defer { old.close() }
    try old.lockWriter(host: "node-a", pid: 1)
    let seq = try old.beginAction(run: "r", action: Conformance.action(Conformance.pl), at: Conformance.t0, settleBy: nil)
    #expect(try old.record(driver: "youtube", id: Conformance.pl) == nil, "a read on a lane beside the lock's session")

    // The session holding the lock ends (a partition, PostgreSQL's restart, an operator's kill).
    _ = try pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ytempire'")
    let next = try PostgresStateStore(settings)
    defer { next.close() }
    try next.lockWriter(host: "node-b", pid: 2)
    #expect(next.writerEpoch == 2)

    let fenced = #expect(throws: StateStoreError.self) {
      try old.completeAction(
        journal: seq, result: "ok", message: nil, driver: "youtube", id: Conformance.pl, externalChanges: ["playlistId": "PL1"],
        observed: nil, audit: [], at: Conformance.t0)
    }
    #expect(fenced?.message.contains("writes nothing more") == true)
    #expect(throws: StateStoreError.self) {
      _ = try old.beginAction(run: "r", action: Conformance.action(Conformance.pl), at: Conformance.t0, settleBy: nil)
    }
    // The entry it left open is the new writer's to settle, by the journal's in-flight rules.
    #expect(try next.openJournalEntries().map(\.seq) == [seq])
    #expect(try next.record(driver: "youtube", id: Conformance.pl)?.external.isEmpty != false)
    #expect(try next.closeInterrupted(at: Conformance.t0) == 1)
    // Reading through the old store still works (new sessions), writing the journal does not.
    #expect(try old.openJournalEntries().isEmpty)
    #expect(throws: Never.self) { _ = try old.record(driver: "youtube", id: Conformance.pl) }
    #expect(throws: StateStoreError.self) {
      try old.markApplied(driver: "youtube", id: Conformance.pl, digest: "d", revision: "r", annotations: [:])
    }
  }

  @Test("a wrong password or an unreachable server is one clear error with no password in it")
  func unreachable() async throws {
    let port = try Processes.freePort()
    let settings = PostgresStateSettings(
      host: "127.0.0.1", port: port, user: "ytempire", password: "hunter2-canary", database: "state", timeout: .seconds(5))
    let e = #expect(throws: StateStoreError.self) { _ = try PostgresStateStore(settings) }
    let m = e?.message ?? ""
    #expect(m.contains("postgres://ytempire@127.0.0.1:\(port)/state"))
    #expect(m.contains("cannot connect") && m.lowercased().contains("refused"), "the system's own words: \(m)")
    #expect(!m.contains("hunter2-canary"))

    // A server that accepts the connection and closes it at once (not PostgreSQL, a proxy).
    let closer = try TCPCloser()
    defer { closer.stop() }
    let shut = #expect(throws: StateStoreError.self) {
      _ = try PostgresStateStore(
        PostgresStateSettings(host: "127.0.0.1", port: closer.port, user: "ytempire", database: "state", timeout: .seconds(5)))
    }
    #expect(shut?.message.contains("the server closed the connection") == true, "\(shut?.message ?? "")")
  }
}

/// A TCP listener on 127.0.0.1 that closes every connection it accepts, once the client spoke.
final class TCPCloser: Sendable {
  let port: Int
  private let fd: Int32

  init() throws {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) { p in
      p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(listener, $0, len) == 0 && listen(listener, 8) == 0 && getsockname(listener, $0, &len) == 0
      }
    }
    guard bound else {
      close(listener)
      throw StateStoreError("the test cannot listen on 127.0.0.1")
    }
    fd = listener
    port = Int(UInt16(bigEndian: addr.sin_port))
    Thread.detachNewThread {
      while true {
        let c = accept(listener, nil, nil)
        if c < 0 { return }
        // Reads the startup message first, so that closing is an orderly end, not a reset.
        var buffer = [UInt8](repeating: 0, count: 1024)
        _ = recv(c, &buffer, buffer.count, 0)
        close(c)
      }
    }
  }

  func stop() {
    shutdown(fd, Int32(SHUT_RDWR))
    close(fd)
  }
}
