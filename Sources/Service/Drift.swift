import DriverKit
import Foundation

/// Spreads drift checks over `serve.driftInterval` so that every resource is observed once per
/// interval, within `serve.driftBudget` of each daily quota: it learns what observing one
/// resource costs per quota from the checks it ran, stretches the interval when the budget
/// cannot cover every resource, and skips a check that would spend past the day's drift budget.
public struct DriftPlanner: Sendable {
  public struct Quota: Sendable, Equatable {
    public var rateLimit: String
    public var units: Int
    public var resetsAt: Date
    public init(rateLimit: String, units: Int, resetsAt: Date) {
      self.rateLimit = rateLimit
      self.units = units
      self.resetsAt = resetsAt
    }
  }

  public struct Tick: Sendable, Equatable {
    /// The resources to observe again now (empty: nothing to do at this tick).
    public var batch: [ResourceID]
    /// When the next tick is due.
    public var delay: Duration
    /// The interval in force (stretched when the budget requires).
    public var interval: Duration
    /// What status says about it (stretched, or skipped for the budget).
    public var note: String?
  }

  public let interval: Duration
  public let share: Double
  /// Ticks are at least this far apart.
  public let minimumPeriod: Duration
  private var cursor = 0
  /// Units observing one resource costs, per RateLimit (learned; the largest seen).
  private(set) public var costPerResource: [String: Double] = [:]
  /// Drift units spent per RateLimit in its current window (keyed by the window's reset).
  private var spent: [String: (resetsAt: Date, units: Int)] = [:]

  public init(interval: Duration, share: Double, minimumPeriod: Duration = .seconds(60)) {
    self.interval = max(interval, .seconds(1))
    self.share = min(max(share, 0), 1)
    self.minimumPeriod = minimumPeriod
  }

  static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

  /// The interval the budget allows for `count` resources (≥ the configured one).
  public func effectiveInterval(count: Int, quotas: [Quota]) -> (Duration, String?) {
    var seconds = Self.seconds(interval)
    var why: String?
    for q in quotas {
      guard let c = costPerResource[q.rateLimit], c > 0 else { continue }
      let budget = share * Double(q.units)
      guard budget > 0 else {
        return (.seconds(86_400 * 365), "drift checks are off for \(q.rateLimit): serve.driftBudget is 0")
      }
      // Units per day at this interval: every resource once per interval.
      let needed = c * Double(count) * 86_400 / budget
      if needed > seconds {
        seconds = needed
        why =
          "a full drift check costs ≈\(Int((c * Double(count)).rounded(.up))) units of \(q.rateLimit); \(Int(share * 100))% of its \(q.units) daily units allows one every \(Self.human(needed))"
      }
    }
    let d = Duration.milliseconds(Int64(min(seconds, 86_400 * 365) * 1000))
    return (d, why.map { "drift interval stretched from \(Self.human(Self.seconds(interval))) to \(Self.human(seconds)): \($0)" })
  }

  static func human(_ s: Double) -> String {
    if s >= 86_400 { return String(format: "%.1fd", s / 86_400) }
    if s >= 3600 { return String(format: "%.1fh", s / 3600) }
    if s >= 60 { return String(format: "%.1fm", s / 60) }
    return String(format: "%.0fs", s)
  }

  /// Time between ticks for `count` resources.
  public func period(count: Int, quotas: [Quota]) -> Duration {
    let (eff, _) = effectiveInterval(count: count, quotas: quotas)
    let ticks = max(1, min(max(count, 1), Int(Self.seconds(eff) / max(Self.seconds(minimumPeriod), 0.001))))
    return eff / ticks
  }

  /// The next batch: `resources` in a round-robin over sorted order, sized so the whole set
  /// is covered once per (effective) interval with ticks at least `minimumPeriod` apart.
  public mutating func next(resources: [ResourceID], quotas: [Quota], now: Date) -> Tick {
    let all = resources.sorted()
    let (eff, note) = effectiveInterval(count: all.count, quotas: quotas)
    guard !all.isEmpty else { return Tick(batch: [], delay: eff, interval: eff, note: note) }
    let ticks = max(1, min(all.count, Int(Self.seconds(eff) / max(Self.seconds(minimumPeriod), 0.001))))
    let size = (all.count + ticks - 1) / ticks
    let period = eff / ticks
    // The day's drift budget is a hard cap.
    for q in quotas {
      guard let c = costPerResource[q.rateLimit], c > 0 else { continue }
      let used = spent[q.rateLimit].flatMap { $0.resetsAt == q.resetsAt ? $0.units : nil } ?? 0
      let budget = Int((share * Double(q.units)).rounded(.down))
      if Double(used) + c * Double(size) > Double(budget) {
        let wait = max(1, q.resetsAt.timeIntervalSince(now))
        return Tick(
          batch: [], delay: .milliseconds(Int64(min(wait, 86_400) * 1000)), interval: eff,
          note: "drift checks paused until \(q.rateLimit) resets: \(used) of its \(budget)-unit drift budget spent")
      }
    }
    if cursor >= all.count { cursor = 0 }
    let end = min(all.count, cursor + size)
    let batch = Array(all[cursor..<end])
    cursor = end >= all.count ? 0 : end
    return Tick(batch: batch, delay: period, interval: eff, note: note)
  }

  /// What a drift check of `observed` resources spent on observation, per RateLimit.
  public mutating func record(observed: Int, observationUnits: [String: Int], quotas: [Quota]) {
    for q in quotas {
      let u = max(0, observationUnits[q.rateLimit] ?? 0)
      if observed > 0 {
        let c = Double(u) / Double(observed)
        costPerResource[q.rateLimit] = max(costPerResource[q.rateLimit] ?? 0, c)
      }
      let prev = spent[q.rateLimit].flatMap { $0.resetsAt == q.resetsAt ? $0.units : nil } ?? 0
      spent[q.rateLimit] = (q.resetsAt, prev &+ u)
    }
  }

  /// What the planner has learned and spent, kept in the state store (`drift.budget`) so that
  /// an instance taking the lead goes on where the last leader stopped instead of spending
  /// the day's drift budget again.
  public struct Memory: Codable, Sendable, Equatable {
    public struct Spent: Codable, Sendable, Equatable {
      public var resetsAt: Date
      public var units: Int
    }
    public var cursor: Int
    public var costPerResource: [String: Double]
    public var spent: [String: Spent]
  }

  public var memory: Memory {
    Memory(
      cursor: cursor, costPerResource: costPerResource, spent: spent.mapValues { Memory.Spent(resetsAt: $0.resetsAt, units: $0.units) })
  }

  public mutating func restore(_ m: Memory) {
    cursor = max(0, m.cursor)
    costPerResource = m.costPerResource.filter { $0.value.isFinite && $0.value >= 0 }
    spent = m.spent.mapValues { ($0.resetsAt, max(0, $0.units)) }
  }

  public func spentUnits(_ rateLimit: String, resetsAt: Date) -> Int {
    spent[rateLimit].flatMap { $0.resetsAt == resetsAt ? $0.units : nil } ?? 0
  }
}
