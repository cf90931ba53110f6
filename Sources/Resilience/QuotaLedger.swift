import EmpireModel
import Foundation
import Synchronization

/// Where a ledger keeps its current window (what was spent since the last reset), so a restart
/// remembers it. The reconciler's state store is one; `JSONFileQuotaStore` is the stand-alone one.
/// `save` is called once per charge, under the ledger's lock.
public protocol QuotaWindowStore: Sendable {
  func loadWindow(service: String) throws -> QuotaLedger.Snapshot?
  /// The whole window (a new window after a reset).
  func saveWindow(_ snapshot: QuotaLedger.Snapshot) throws
  /// One charge: the window's total and `channel`'s spend (a store may write just those).
  func saveCharge(_ snapshot: QuotaLedger.Snapshot, channel: String?) throws
  /// Whether a call waits on the network (a shared store): async callers then make it off
  /// the cooperative pool (`AsyncBridge.offload`). A local file's store answers at once.
  var waitsOnNetwork: Bool { get }
}

extension QuotaWindowStore {
  public var waitsOnNetwork: Bool { false }
}

/// A window store several processes charge at once (the PostgreSQL state store): each charge
/// is decided against the window as stored, and added to it, in one locked transaction, so
/// two instances never spend the same units twice.
public protocol SharedQuotaWindowStore: QuotaWindowStore {
  /// Locks the window of `service` (starting a new one at `windowStart` when the stored one is
  /// older), passes it to `fits`, and adds `cost` (to the total and to `channel`) when it
  /// does. Returns the window after the decision and whether it was charged. `known` is the
  /// caller's copy: while the stored total still matches it (nobody else charged since), the
  /// per-channel rows are not read again.
  func charge(
    service: String, windowStart: Date, cost: Int, channel: String?, known: QuotaLedger.Snapshot,
    fits: (QuotaLedger.Snapshot) -> Bool
  ) throws -> (window: QuotaLedger.Snapshot, charged: Bool)

  /// The stored window when it differs from `known` (another instance charged, or a reset);
  /// nil when it does not (one row read).
  func window(service: String, ifChangedFrom known: QuotaLedger.Snapshot) throws -> QuotaLedger.Snapshot?

  /// Adds `cost` to the stored window starting at `windowStart` (and to `channel`) only while
  /// its total stays at most `ceiling`, in one statement; the new total, or nil when nothing
  /// was added (over the ceiling, or the stored window is another one).
  func charge(service: String, windowStart: Date, cost: Int, channel: String?, ceiling: Int) throws -> Int?
}

extension QuotaWindowStore {
  public func saveCharge(_ snapshot: QuotaLedger.Snapshot, channel: String?) throws { try saveWindow(snapshot) }
}

/// `quota-<service>.json` in a directory, written atomically (temp file + rename).
public struct JSONFileQuotaStore: QuotaWindowStore {
  public let directory: URL
  public init(directory: URL) { self.directory = directory }
  func file(_ service: String) -> URL { directory.appendingPathComponent("quota-\(service).json") }
  public func loadWindow(service: String) throws -> QuotaLedger.Snapshot? {
    guard let data = try? Data(contentsOf: file(service)) else { return nil }
    return try JSONDecoder().decode(QuotaLedger.Snapshot.self, from: data)
  }
  public func saveWindow(_ snapshot: QuotaLedger.Snapshot) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    try enc.encode(snapshot).write(to: file(snapshot.service), options: .atomic)
  }
}

/// Thrown by the ledger when a call would spend units it may not spend.
public struct QuotaExhausted: Error, Sendable, CustomStringConvertible {
  public var service: String
  public var operation: String
  public var cost: Int
  public var available: Int
  public var resetsAt: Date
  public var untilReset: Duration
  public var description: String {
    "\(service) quota: \(operation) costs \(cost) units but \(available) are available; the quota resets at \(resetsAt) (in \(RetryPolicy.format(untilReset)))"
  }
  /// The same, as a classified failure (quota_exceeded, retry after the reset).
  public var failure: ServiceFailure {
    ServiceFailure(service: service, category: .quotaExceeded, reason: "quotaExceeded", message: description, retryAfter: untilReset)
  }
}

/// The unit-quota ledger of one service (YouTube's 10,000 units a day): per-operation costs, an
/// emergency reserve only emergency calls may dip into, per-channel reservations, a reset at
/// `resetAt` local time in the quota's IANA timezone (DST-correct), and a JSON file so a restart
/// remembers what was spent.
public final class QuotaLedger: Sendable {
  public enum Priority: Sendable { case normal, emergency }
  public struct Snapshot: Sendable, Codable, Equatable {
    public var service: String
    public var windowStart: Date
    public var spent: Int
    public var perChannel: [String: Int]
    public init(service: String, windowStart: Date, spent: Int, perChannel: [String: Int]) {
      self.service = service
      self.windowStart = windowStart
      self.spent = spent
      self.perChannel = perChannel
    }
  }

  public let service: String
  public let units: Int
  public let costs: [String: Int]
  public let emergencyReserve: Int
  public let reservedPerChannel: Int
  public let channels: [String]
  public let predictive: Bool
  private let window: RateLimitSpec.Window
  private let resetMinutes: Int
  private let calendar: Calendar
  private let clock: any ResilienceClock
  private let store: (any QuotaWindowStore)?
  private struct State {
    var snap: Snapshot
    var windowEnd: Date
    var lastCall: Date?
    var persistError: String?
  }
  private let state: Mutex<State>

  /// - Parameters:
  ///   - channels: the active channels governed by this quota; each gets `reservedPerChannel` units.
  ///   - directory: where the ledger is persisted (`quota-<service>.json`); nil keeps it in memory.
  public convenience init(
    service: String, quota: RateLimitSpec.Quota, channels: [String] = [], directory: URL?,
    clock: any ResilienceClock = SystemClock()
  ) throws {
    try self.init(
      service: service, quota: quota, channels: channels, store: directory.map { JSONFileQuotaStore(directory: $0) }, clock: clock)
  }

  ///   - store: where the current window is persisted; nil keeps it in memory.
  public init(
    service: String, quota: RateLimitSpec.Quota, channels: [String] = [], store: (any QuotaWindowStore)? = nil,
    clock: any ResilienceClock = SystemClock()
  ) throws {
    self.service = service
    units = quota.units
    costs = quota.costs
    emergencyReserve = quota.emergencyReserve ?? 0
    reservedPerChannel = quota.reservedPerChannel ?? 0
    self.channels = channels
    predictive = quota.predictive
    window = quota.window
    resetMinutes = quota.resetAt
    guard let tz = TimeZone(identifier: quota.timezone) else {
      throw CocoaError(.formatting, userInfo: [NSDebugDescriptionErrorKey: "unknown timezone \(quota.timezone)"])
    }
    var cal = Calendar(identifier: .gregorian)
    cal.timeZone = tz
    calendar = cal
    self.clock = clock
    self.store = store
    let now = clock.wallNow
    let start = Self.windowStart(containing: now, calendar: cal, window: quota.window, resetMinutes: quota.resetAt)
    var snap = Snapshot(service: service, windowStart: start, spent: 0, perChannel: [:])
    if let saved = try store?.loadWindow(service: service), saved.windowStart == start { snap = saved }
    let end = Self.windowEnd(after: start, calendar: cal, window: quota.window, resetMinutes: quota.resetAt)
    state = Mutex(State(snap: snap, windowEnd: end))
  }

  // MARK: windows

  private static func at(_ day: DateComponents, minutes: Int, calendar: Calendar) -> Date {
    var c = DateComponents()
    c.year = day.year
    c.month = day.month
    c.day = day.day
    c.hour = minutes / 60
    c.minute = minutes % 60
    c.second = 0
    return calendar.date(from: c)!
  }

  /// The reset instant at or before `date`.
  static func windowStart(containing date: Date, calendar: Calendar, window: RateLimitSpec.Window, resetMinutes: Int) -> Date {
    var day = calendar.dateComponents([.year, .month, .day], from: date)
    if window == .monthly { day.day = 1 }
    var s = at(day, minutes: resetMinutes, calendar: calendar)
    if s > date {
      var prev = DateComponents()
      if window == .monthly { prev.month = -1 } else { prev.day = -1 }
      let noon = calendar.date(byAdding: prev, to: at(day, minutes: 12 * 60, calendar: calendar))!
      var d = calendar.dateComponents([.year, .month, .day], from: noon)
      if window == .monthly { d.day = 1 }
      s = at(d, minutes: resetMinutes, calendar: calendar)
    }
    return s
  }

  /// The first reset after the window that started at `start`.
  static func windowEnd(after start: Date, calendar: Calendar, window: RateLimitSpec.Window, resetMinutes: Int) -> Date {
    var next = DateComponents()
    if window == .monthly { next.month = 1 } else { next.day = 1 }
    // Step from local noon so a 23- or 25-hour day cannot land on the wrong date.
    let day = calendar.dateComponents([.year, .month, .day], from: start)
    let noon = calendar.date(byAdding: next, to: at(day, minutes: 12 * 60, calendar: calendar))!
    var d = calendar.dateComponents([.year, .month, .day], from: noon)
    if window == .monthly { d.day = 1 }
    return at(d, minutes: resetMinutes, calendar: calendar)
  }

  /// Rolls the window over when its reset has passed. Called under the lock.
  private func roll(_ s: inout State, now: Date) {
    guard now >= s.windowEnd else { return }
    let start = Self.windowStart(containing: now, calendar: calendar, window: window, resetMinutes: resetMinutes)
    s.snap = Snapshot(service: service, windowStart: start, spent: 0, perChannel: [:])
    s.windowEnd = Self.windowEnd(after: start, calendar: calendar, window: window, resetMinutes: resetMinutes)
    s.lastCall = nil
    persist(&s)
  }

  // MARK: spending

  /// Units an operation costs (`resource.method`); an operation not in the cost map costs 1
  /// (every YouTube request costs at least one unit).
  public func cost(of operation: String) -> Int { costs[operation] ?? 1 }

  private func available(_ s: State, channel: String?, priority: Priority) -> Int {
    Budget(ledger: self, snapshot: s.snap, resetsAt: s.windowEnd).available(channel: channel, priority: priority)
  }

  /// What the ledger would allow, as a value a planner can spend from without touching the
  /// ledger: the same rules as `charge` (emergency reserve, the other channels' reservations).
  public struct Budget: Sendable {
    public let service: String
    public let units: Int
    public let emergencyReserve: Int
    public let reservedPerChannel: Int
    public let channels: [String]
    public private(set) var spent: Int
    public private(set) var perChannel: [String: Int]
    public let resetsAt: Date

    init(ledger l: QuotaLedger, snapshot: Snapshot, resetsAt: Date) {
      service = l.service
      units = l.units
      emergencyReserve = l.emergencyReserve
      reservedPerChannel = l.reservedPerChannel
      channels = l.channels
      spent = snapshot.spent
      perChannel = snapshot.perChannel
      self.resetsAt = resetsAt
    }

    public func available(channel: String? = nil, priority: Priority = .normal) -> Int {
      var a = units &- spent
      if priority == .normal { a = a &- emergencyReserve }
      for c in channels where reservedPerChannel > 0 && c != channel {
        a = a &- max(0, reservedPerChannel &- (perChannel[c] ?? 0))
      }
      return max(0, a)
    }

    /// Spends `cost` when it fits; false (and nothing spent) otherwise.
    public mutating func spend(_ cost: Int, channel: String? = nil, priority: Priority = .normal) -> Bool {
      guard cost <= available(channel: channel, priority: priority) else { return false }
      spent = spent &+ cost
      if let channel { perChannel[channel, default: 0] &+= cost }
      return true
    }
  }

  /// The current window as a budget to plan against.
  public var budget: Budget {
    let now = clock.wallNow
    return state.withLock { s in
      roll(&s, now: now)
      refreshShared(&s)
      return Budget(ledger: self, snapshot: s.snap, resetsAt: s.windowEnd)
    }
  }

  /// Units `channel` may still spend at `priority` now.
  public func available(channel: String? = nil, priority: Priority = .normal) -> Int {
    let now = clock.wallNow
    return state.withLock { s in
      roll(&s, now: now)
      refreshShared(&s)
      return available(s, channel: channel, priority: priority)
    }
  }

  /// A shared store's window is the truth: what other instances spent counts here too.
  private func refreshShared(_ s: inout State) {
    guard let store = store as? any SharedQuotaWindowStore else { return }
    do {
      if let w = try store.window(service: service, ifChangedFrom: s.snap), w.windowStart >= s.snap.windowStart { s.snap = w }
      s.persistError = nil
    } catch {
      s.persistError = "\(error)"
    }
  }

  /// A shared store's charge without holding the ledger while the store answers, so that
  /// concurrent calls are charged concurrently. Decided here on this process's copy of the
  /// window: what another instance spent since can only lower what is available (its spend
  /// on a reserved channel frees at most what it spent), so the stored total may grow to the
  /// copy's total plus what the copy allows, and the store adds the cost only below that
  /// ceiling. Nil: decide in the store's locked transaction (`charge(…fits:)`), as when the
  /// ceiling was reached, the window reset or the store cannot be reached.
  private enum CeilingCharge {
    case charged(left: Int)
    case decideInStore
    case unreachable(String)
  }

  private func chargeWithinCeiling(
    _ shared: any SharedQuotaWindowStore, _ operation: String, _ cost: Int, _ channel: String?, _ priority: Priority, _ now: Date
  ) -> CeilingCharge {
    let (start, ceiling, left) = state.withLock { s in
      roll(&s, now: now)
      let a = available(s, channel: channel, priority: priority)
      return (s.snap.windowStart, s.snap.spent &+ a, a)
    }
    // Refused on the copy: refused on the store too (it can only have less); the locked path says so.
    guard cost <= left else { return .decideInStore }
    let total: Int
    do {
      guard let t = try shared.charge(service: service, windowStart: start, cost: cost, channel: channel, ceiling: ceiling) else {
        return .decideInStore
      }
      total = t
    } catch {
      return .unreachable("\(error)")
    }
    return state.withLock { s in
      // This process's own charge only: when others charged too, the copy's total differs
      // from the stored one, and the next budget reads the stored window again.
      if s.snap.windowStart == start {
        s.snap.spent &+= cost
        if let channel { s.snap.perChannel[channel, default: 0] &+= cost }
      }
      s.persistError = nil
      s.lastCall = now
      return .charged(left: max(0, ceiling &- total))
    }
  }

  /// Whether `charge` waits on the network (its window is in a shared store).
  public var chargesOverNetwork: Bool { store?.waitsOnNetwork ?? false }

  /// Records the cost of `operation` or throws `QuotaExhausted` without recording anything.
  @discardableResult
  public func charge(_ operation: String, channel: String? = nil, priority: Priority = .normal) throws(QuotaExhausted) -> Int {
    let now = clock.wallNow
    let cost = cost(of: operation)
    var unreachable: String?
    if let shared = store as? any SharedQuotaWindowStore {
      switch chargeWithinCeiling(shared, operation, cost, channel, priority, now) {
      case .charged(let left): return left
      case .decideInStore: break
      case .unreachable(let why): unreachable = why
      }
    }
    let r: Result<Int, QuotaExhausted> = state.withLock { s in
      roll(&s, now: now)
      if let why = unreachable {
        // Not asked twice: decided below on what this process knows (and said).
        s.persistError = why
      } else if let shared = store as? any SharedQuotaWindowStore {
        do {
          var left = 0
          let (w, charged) = try shared.charge(
            service: service, windowStart: s.snap.windowStart, cost: cost, channel: channel, known: s.snap
          ) { w in
            left = Budget(ledger: self, snapshot: w, resetsAt: s.windowEnd).available(channel: channel, priority: priority)
            return cost <= left
          }
          s.snap = w
          s.persistError = nil
          guard charged else {
            return .failure(
              QuotaExhausted(
                service: service, operation: operation, cost: cost, available: left, resetsAt: s.windowEnd,
                untilReset: .secondsDouble(s.windowEnd.timeIntervalSince(now))))
          }
          s.lastCall = now
          return .success(left - cost)
        } catch {
          // The shared window cannot be reached: decide on what this process knows (and say so).
          s.persistError = "\(error)"
        }
      }
      let a = available(s, channel: channel, priority: priority)
      guard cost <= a else {
        return .failure(
          QuotaExhausted(
            service: service, operation: operation, cost: cost, available: a, resetsAt: s.windowEnd,
            untilReset: .secondsDouble(s.windowEnd.timeIntervalSince(now))))
      }
      s.snap.spent += cost
      if let channel { s.snap.perChannel[channel, default: 0] += cost }
      s.lastCall = now
      persist(&s, channel: channel, charge: true)
      return .success(a - cost)
    }
    return try r.get()
  }

  public var snapshot: Snapshot {
    let now = clock.wallNow
    return state.withLock { s in
      roll(&s, now: now)
      return s.snap
    }
  }
  public var nextReset: Date {
    let now = clock.wallNow
    return state.withLock { s in
      roll(&s, now: now)
      return s.windowEnd
    }
  }
  public var untilReset: Duration { .secondsDouble(max(0, nextReset.timeIntervalSince(clock.wallNow))) }
  /// The last error writing the ledger file, if any (the ledger keeps working in memory).
  public var persistError: String? { state.withLock { $0.persistError } }

  /// Predictive spacing (the seed's IntelligentRateLimiter): spreads what is left of the quota
  /// evenly over what is left of the window. Returns how long to wait before spending `cost`
  /// units so that, at this pace, the quota lasts until the reset. Zero when `predictive` is off.
  public func predictiveDelay(cost: Int, channel: String? = nil) -> Duration {
    guard predictive else { return .zero }
    let now = clock.wallNow
    return state.withLock { s -> Duration in
      roll(&s, now: now)
      let left = s.windowEnd.timeIntervalSince(now)
      let remaining = available(s, channel: channel, priority: .normal)
      guard remaining > 0 else { return .secondsDouble(max(0, left)) }
      guard let last = s.lastCall else { return .zero }
      let interval = left * Double(cost) / Double(remaining)
      return .secondsDouble(max(0, last.addingTimeInterval(interval).timeIntervalSince(now)))
    }
  }

  private func persist(_ s: inout State, channel: String? = nil, charge: Bool = false) {
    guard let store else { return }
    // A shared window is written only by charges (which start a new window themselves): a
    // roll-over here must not erase what another instance spent since the reset.
    if !charge && store is any SharedQuotaWindowStore { return }
    do {
      if charge { try store.saveCharge(s.snap, channel: channel) } else { try store.saveWindow(s.snap) }
      s.persistError = nil
    } catch {
      s.persistError = "\(error)"
    }
  }
}
