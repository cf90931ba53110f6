import EmpireModel
import Foundation
import Testing

@testable import Resilience

@Suite struct QuotaLedgerTests {
  func youtubeQuota() throws -> RateLimitSpec.Quota { try #require(try exampleRateLimit("youtube-api").quota) }
  func tempDir() throws -> URL {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("ytempire-ledger-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
  }

  @Test func costsReserveAndChannelReservations() throws {
    let clock = ManualClock(wall: date("2026-06-10T12:00:00Z"))
    let l = try QuotaLedger(
      service: "youtube", quota: try youtubeQuota(), channels: ["tech-daily", "finance-focus", "science-simplified"], clock: clock)
    #expect(l.cost(of: "videos.insert") == 1600)
    #expect(l.cost(of: "videos.list") == 1)
    #expect(l.cost(of: "unknown.call") == 1)
    // 10000 − 1000 emergency − 2 × 3000 reserved for the others.
    #expect(l.available(channel: "tech-daily") == 3000)
    // Unattributed calls only get what nobody reserved: nothing here.
    #expect(l.available() == 0)
    #expect(throws: QuotaExhausted.self) { try l.charge("videos.list") }
    #expect(try l.charge("videos.insert", channel: "tech-daily") == 1400)
    do {
      try l.charge("videos.insert", channel: "tech-daily")
      Issue.record("a second upload must not eat into the other channels' reservations")
    } catch {
      #expect(error.cost == 1600 && error.available == 1400)
      #expect(error.failure.category == .quotaExceeded)
      #expect(error.untilReset == .seconds(19 * 3600))  // 05:00 PDT → midnight PDT
    }
    // Emergency calls may use the emergency reserve.
    try l.charge("videos.insert", channel: "tech-daily", priority: .emergency)
    #expect(l.snapshot.spent == 3200)
    #expect(l.snapshot.perChannel == ["tech-daily": 3200])
    // Another channel still has its whole reservation.
    #expect(l.available(channel: "finance-focus") == 3000 - 200)
  }

  @Test func resetFollowsLosAngelesAcrossSpringForward() throws {
    // 2026-03-07 12:00 PST. Midnight PST is 08:00Z until 2026-03-08; from then on midnight PDT is 07:00Z.
    let clock = ManualClock(wall: date("2026-03-07T20:00:00Z"))
    let l = try QuotaLedger(service: "youtube", quota: try youtubeQuota(), clock: clock)
    #expect(l.snapshot.windowStart == date("2026-03-07T08:00:00Z"))
    #expect(l.nextReset == date("2026-03-08T08:00:00Z"))
    try l.charge("search.list")
    clock.advance(toWall: date("2026-03-08T07:59:00Z"))
    #expect(l.snapshot.spent == 100)
    clock.advance(toWall: date("2026-03-08T08:00:00Z"))
    #expect(l.snapshot.spent == 0)
    #expect(l.snapshot.windowStart == date("2026-03-08T08:00:00Z"))
    // 8 March is 23 hours long in Los Angeles.
    #expect(l.nextReset == date("2026-03-09T07:00:00Z"))
    #expect(l.untilReset == .seconds(23 * 3600))
  }

  @Test func resetFollowsLosAngelesAcrossFallBack() throws {
    let clock = ManualClock(wall: date("2026-10-31T19:00:00Z"))  // noon PDT
    let l = try QuotaLedger(service: "youtube", quota: try youtubeQuota(), clock: clock)
    #expect(l.nextReset == date("2026-11-01T07:00:00Z"))
    clock.advance(toWall: date("2026-11-01T07:00:00Z"))
    // 1 November is 25 hours long.
    #expect(l.nextReset == date("2026-11-02T08:00:00Z"))
    #expect(l.untilReset == .seconds(25 * 3600))
    // A window that starts mid-day (resetAt 06:30 in Tokyo, monthly) also lands right.
    var q = try youtubeQuota()
    q.window = .monthly
    q.resetAt = 6 * 60 + 30
    q.timezone = "Asia/Tokyo"
    let m = try QuotaLedger(service: "t", quota: q, clock: ManualClock(wall: date("2026-03-01T00:00:00Z")))
    #expect(m.snapshot.windowStart == date("2026-02-28T21:30:00Z"))
    #expect(m.nextReset == date("2026-03-31T21:30:00Z"))
  }

  @Test func persistedAcrossRestarts() throws {
    let dir = try tempDir()
    defer { try? FileManager.default.removeItem(at: dir) }
    let clock = ManualClock(wall: date("2026-06-10T12:00:00Z"))
    let a = try QuotaLedger(service: "youtube", quota: try youtubeQuota(), channels: ["c1"], directory: dir, clock: clock)
    try a.charge("videos.insert", channel: "c1")
    try a.charge("videos.update", channel: "c1")
    let file = dir.appendingPathComponent("quota-youtube.json")
    #expect(FileManager.default.fileExists(atPath: file.path))
    #expect(a.persistError == nil)
    // A new process on the same day remembers.
    let b = try QuotaLedger(service: "youtube", quota: try youtubeQuota(), channels: ["c1"], directory: dir, clock: clock)
    #expect(b.snapshot.spent == 1650)
    #expect(b.snapshot.perChannel == ["c1": 1650])
    // A new process after the reset starts afresh.
    clock.advance(by: .seconds(86_400))
    let c = try QuotaLedger(service: "youtube", quota: try youtubeQuota(), channels: ["c1"], directory: dir, clock: clock)
    #expect(c.snapshot.spent == 0)
    // No temporary files are left behind by the atomic writes.
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["quota-youtube.json"])
  }

  @Test func predictiveSpacingSpreadsTheRest() throws {
    let clock = ManualClock(wall: date("2026-06-10T07:00:00Z"))  // midnight PDT: a whole day ahead
    var q = try youtubeQuota()
    q.emergencyReserve = 0
    q.reservedPerChannel = nil
    let l = try QuotaLedger(service: "youtube", quota: q, clock: clock)
    #expect(l.predictiveDelay(cost: 1) == .zero)  // first call
    try l.charge("search.list")  // 100 units
    // 9900 units left for 86400 s: a 100-unit call every 872.7 s.
    let d = l.predictiveDelay(cost: 100)
    #expect(abs(d.seconds - 86_400.0 * 100 / 9900) < 0.01)
    clock.advance(by: .seconds(900))
    #expect(l.predictiveDelay(cost: 100) == .zero)
    q.predictive = false
    #expect(try QuotaLedger(service: "y", quota: q, clock: clock).predictiveDelay(cost: 100) == .zero)
  }
}
