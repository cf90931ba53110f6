import EmpireModel
import Foundation
import PostgresState
import Reconciler
import Resilience
import TestSupport
import Testing

@Suite(
  "PostgreSQL state store: quota windows shared by several instances",
  .enabled(if: PostgresServer.isAvailable, "PostgreSQL is not installed (make deps)"))
struct SharedQuotaTests {
  /// The example's YouTube quota (10,000 units a day, 1,000 emergency reserve, 3,000 reserved per channel).
  static func youtubeQuota() throws -> RateLimitSpec.Quota {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let text = try String(contentsOf: root.appendingPathComponent("examples/empire/ratelimits/youtube-api.yaml"), encoding: .utf8)
    var options = LoadOptions()
    options.crossResourceRules = false
    let report = ManifestLoader.validate(
      [ManifestSource(displayPath: "t.yaml", relativePath: "t.yaml", content: .bytes(Array(text.utf8)))], options: options)
    guard case .rateLimit(let s) = try #require(report.resources.first).spec, let q = s.quota else { throw CancellationError() }
    return q
  }

  @Test("two ledgers on one store never spend one channel's share twice, concurrently; a reset starts one window for both")
  func twoInstances() async throws {
    let pg = try await offload { try PostgresServer.start() }
    defer { pg.stop() }
    let settings = try PostgresStateSettings.parse(pg.url)
    let a = try PostgresStateStore(settings)
    let b = try PostgresStateStore(settings)
    defer {
      a.close()
      b.close()
    }
    let quota = try Self.youtubeQuota()
    let channels = ["tech-daily", "finance-focus", "science-simplified"]
    let clock = ManualClock(wall: Date(timeIntervalSince1970: 1_780_000_000))
    let la = try QuotaLedger(service: "youtube", quota: quota, channels: channels, store: a, clock: clock)
    let lb = try QuotaLedger(service: "youtube", quota: quota, channels: channels, store: b, clock: clock)
    // tech-daily may spend 3,000 units (10,000 − 1,000 reserve − 2 × 3,000 for the others).
    #expect(la.available(channel: "tech-daily") == 3000)
    _ = try la.charge("videos.insert", channel: "tech-daily")  // 1,600
    #expect(lb.available(channel: "tech-daily") == 1400, "b sees what a spent")
    #expect(throws: QuotaExhausted.self) { try lb.charge("videos.insert", channel: "tech-daily") }

    // Both charge 1-unit calls at once, far more than is left: exactly what is left is spent.
    let results = try await withThrowingTaskGroup(of: Int.self) { group in
      for ledger in [la, lb] {
        group.addTask {
          try await offload {
            var n = 0
            for _ in 0..<1000 where (try? ledger.charge("videos.list", channel: "tech-daily")) != nil { n += 1 }
            return n
          }
        }
      }
      return try await group.reduce(into: [Int]()) { $0.append($1) }
    }
    #expect(results.reduce(0, +) == 1400, "\(results)")
    #expect(try a.loadWindow(service: "youtube")?.perChannel["tech-daily"] == 3000)
    #expect(la.available(channel: "tech-daily") == 0 && lb.available(channel: "tech-daily") == 0)
    #expect(lb.available(channel: "finance-focus") == 3000, "the other channels' shares are untouched")

    // Past the reset: one new window, whoever charges first.
    clock.advance(by: .seconds(86_400))
    _ = try lb.charge("videos.list", channel: "tech-daily")
    #expect(la.available(channel: "tech-daily") == 2999)
    #expect(try a.loadWindow(service: "youtube")?.spent == 1)
  }
}
