import EmpireModel
import Foundation
import Synchronization

/// Time as the resilience layer sees it: a monotonic instant for delays and windows, the wall
/// clock for quota resets and HTTP dates, and sleeping. Injected everywhere so that tests drive
/// time by hand and never sleep.
public protocol ResilienceClock: Sendable {
  var now: ContinuousClock.Instant { get }
  var wallNow: Date { get }
  func sleep(until deadline: ContinuousClock.Instant) async throws
}

extension ResilienceClock {
  public func sleep(for d: Duration) async throws {
    if d <= .zero {
      try Task.checkCancellation()
      return
    }
    try await sleep(until: now.advanced(by: d))
  }
}

/// The real clock.
public struct SystemClock: ResilienceClock {
  public init() {}
  public var now: ContinuousClock.Instant { ContinuousClock.now }
  public var wallNow: Date { Date() }
  public func sleep(until deadline: ContinuousClock.Instant) async throws {
    try await ContinuousClock().sleep(until: deadline, tolerance: nil)
  }
}

/// A clock that moves only when told to. `advance(by:)` wakes the sleepers whose deadline has
/// come. With `autoAdvance`, a sleep moves the clock to its deadline at once, so single-task code
/// runs through its delays instantly while the delays are still recorded in `sleeps`.
public final class ManualClock: ResilienceClock {
  private struct Sleeper {
    var deadline: ContinuousClock.Instant
    var id: UInt64
    var continuation: CheckedContinuation<Void, any Error>
  }
  private struct State {
    var offset: Duration = .zero
    var sleepers: [Sleeper] = []
    var sleeps: [Duration] = []
    var nextID: UInt64 = 0
  }
  private let origin: ContinuousClock.Instant
  private let wallOrigin: Date
  public let autoAdvance: Bool
  private let state = Mutex(State())

  public init(wall: Date = Date(timeIntervalSince1970: 1_780_000_000), autoAdvance: Bool = false) {
    origin = ContinuousClock.now
    wallOrigin = wall
    self.autoAdvance = autoAdvance
  }

  public var now: ContinuousClock.Instant { origin.advanced(by: state.withLock { $0.offset }) }
  public var wallNow: Date { wallOrigin.addingTimeInterval(Self.seconds(state.withLock { $0.offset })) }
  /// Every delay a caller asked to sleep, in order.
  public var sleeps: [Duration] { state.withLock { $0.sleeps } }
  public var sleeperCount: Int { state.withLock { $0.sleepers.count } }
  /// Time elapsed since the clock was made.
  public var elapsed: Duration { state.withLock { $0.offset } }

  public func advance(by d: Duration) {
    let due: [Sleeper] = state.withLock { s in
      s.offset += d
      let nowI = origin.advanced(by: s.offset)
      let due = s.sleepers.filter { $0.deadline <= nowI }
      s.sleepers.removeAll { $0.deadline <= nowI }
      return due
    }
    for s in due { s.continuation.resume() }
  }

  /// Moves the wall clock to `date` (and the monotonic clock by the same amount; never backwards).
  public func advance(toWall date: Date) {
    let delta = date.timeIntervalSince(wallNow)
    if delta > 0 { advance(by: .secondsDouble(delta)) }
  }

  public func sleep(until deadline: ContinuousClock.Instant) async throws {
    try Task.checkCancellation()
    if autoAdvance {
      let wait = state.withLock { s -> Duration in
        let d = origin.advanced(by: s.offset).duration(to: deadline)
        if d > .zero {
          s.sleeps.append(d)
          s.offset += d
        }
        return d
      }
      _ = wait
      return
    }
    let id = state.withLock { s -> UInt64 in
      s.nextID += 1
      return s.nextID
    }
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
        let resumeNow = state.withLock { s -> Bool in
          let d = origin.advanced(by: s.offset).duration(to: deadline)
          if d <= .zero { return true }
          s.sleeps.append(d)
          s.sleepers.append(Sleeper(deadline: deadline, id: id, continuation: c))
          return false
        }
        if resumeNow { c.resume() }
      }
    } onCancel: {
      let s = state.withLock { s -> Sleeper? in
        guard let i = s.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
        return s.sleepers.remove(at: i)
      }
      s?.continuation.resume(throwing: CancellationError())
    }
  }

  /// Waits (really, briefly yielding) until `n` tasks are asleep on this clock.
  public func waitForSleepers(_ n: Int) async {
    while sleeperCount < n { await Task.yield() }
  }

  static func seconds(_ d: Duration) -> Double {
    let (s, a) = d.components
    return Double(s) + Double(a) / 1e18
  }
}

extension Duration {
  var seconds: Double { ManualClock.seconds(self) }

  /// The longest duration the resilience layer computes with: `ModelDuration`'s maximum
  /// (36,500 days), far beyond any wait it would honour.
  static let maxSeconds = Double(ModelDuration.maximumDays * 86_400)

  /// Whole milliseconds of `s` seconds, saturating: NaN is zero and anything beyond
  /// ±`maxSeconds` (an infinite Retry-After, an overflowing backoff) is clamped, so no value
  /// can trap the conversion to Int64. Numbers from outside are range-checked where they are
  /// parsed (`ErrorClassifier.parseRetryAfter`); this is the floor under every computed delay.
  static func secondsDouble(_ s: Double) -> Duration {
    guard !s.isNaN else { return .zero }
    return .milliseconds(Int64((min(max(s, -maxSeconds), maxSeconds) * 1000).rounded()))
  }

  /// In the manifests' spelling (`5m30s`, `1d`), for messages.
  var spelled: String {
    let (s, a) = components
    let ms = s.multipliedReportingOverflow(by: 1000)
    return ModelDuration(milliseconds: ms.overflow ? .max : ms.partialValue &+ a / 1_000_000_000_000_000).description
  }
}
