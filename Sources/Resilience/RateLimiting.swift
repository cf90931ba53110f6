import EmpireModel
import Foundation
import Synchronization

/// A token bucket with reservations: taking more than is available drives the level negative and
/// returns how long the caller must wait, so waiters are served in the order they asked.
public struct TokenBucket: Sendable, Equatable {
  public let capacity: Double
  /// Tokens added per second.
  public let rate: Double
  public private(set) var level: Double
  private var last: ContinuousClock.Instant

  public init(capacity: Int, per window: Duration, now: ContinuousClock.Instant) {
    self.capacity = Double(capacity)
    self.rate = Double(capacity) / window.seconds
    self.level = Double(capacity)
    self.last = now
  }

  public mutating func refill(_ now: ContinuousClock.Instant) {
    if now > last {
      level = min(capacity, level + last.duration(to: now).seconds * rate)
      last = now
    }
  }

  /// Takes `n` tokens and returns the wait before the caller may proceed (zero if they were there).
  public mutating func reserve(_ n: Double, now: ContinuousClock.Instant) -> Duration {
    refill(now)
    level -= n
    return level >= 0 ? .zero : .secondsDouble(-level / rate)
  }

  /// Gives tokens back (a cancelled waiter).
  public mutating func refund(_ n: Double) { level = min(capacity, level + n) }
}

/// Request, token and character buckets of one service (RateLimit.spec.requests/tokens/characters).
public final class RateLimiter: Sendable {
  public struct Cost: Sendable {
    public var requests = 1, tokens = 0, characters = 0
    public init(requests: Int = 1, tokens: Int = 0, characters: Int = 0) {
      self.requests = requests
      self.tokens = tokens
      self.characters = characters
    }
  }
  enum Kind: Sendable { case requests, tokens, characters }
  private let buckets: Mutex<[(kind: Kind, bucket: TokenBucket)]>
  private let clock: any ResilienceClock
  public let service: String

  public init(
    service: String, requests: RateLimitSpec.Requests?, tokens: RateLimitSpec.Tokens? = nil,
    characters: RateLimitSpec.Characters? = nil, extraPerMinute: Int? = nil, clock: any ResilienceClock = SystemClock()
  ) {
    self.service = service
    self.clock = clock
    let now = clock.now
    var b: [(Kind, TokenBucket)] = []
    func add(_ k: Kind, _ n: Int?, _ w: Duration) { if let n { b.append((k, TokenBucket(capacity: n, per: w, now: now))) } }
    add(.requests, requests?.perSecond, .seconds(1))
    add(.requests, requests?.perMinute, .seconds(60))
    add(.requests, requests?.per5Minutes, .seconds(300))
    add(.requests, requests?.perHour, .seconds(3600))
    add(.requests, requests?.perDay, .seconds(86_400))
    add(.requests, extraPerMinute, .seconds(60))
    add(.tokens, tokens?.perMinute, .seconds(60))
    add(.tokens, tokens?.perDay, .seconds(86_400))
    add(.characters, characters?.perMinute, .seconds(60))
    add(.characters, characters?.perMonth, .seconds(30 * 86_400))
    buckets = Mutex(b.map { (kind: $0.0, bucket: $0.1) })
  }

  public var isUnlimited: Bool { buckets.withLock { $0.isEmpty } }

  /// Reserves capacity in every bucket and returns the longest wait.
  public func reserve(_ cost: Cost = Cost()) -> Duration {
    let now = clock.now
    return buckets.withLock { bs in
      var wait = Duration.zero
      for i in bs.indices {
        let n: Int
        switch bs[i].kind {
        case .requests: n = cost.requests
        case .tokens: n = cost.tokens
        case .characters: n = cost.characters
        }
        guard n > 0 else { continue }
        wait = max(wait, bs[i].bucket.reserve(Double(n), now: now))
      }
      return wait
    }
  }

  private func refund(_ cost: Cost) {
    buckets.withLock { bs in
      for i in bs.indices {
        switch bs[i].kind {
        case .requests: bs[i].bucket.refund(Double(cost.requests))
        case .tokens: bs[i].bucket.refund(Double(cost.tokens))
        case .characters: bs[i].bucket.refund(Double(cost.characters))
        }
      }
    }
  }

  /// Waits until the call may be made.
  public func acquire(_ cost: Cost = Cost()) async throws {
    let wait = reserve(cost)
    do { try await clock.sleep(for: wait) } catch {
      refund(cost)
      throw error
    }
  }
}

/// An async semaphore: at most `limit` holders; waiters are served first-come, first-served and
/// leave the queue when their task is cancelled.
public final class ConcurrencyLimiter: Sendable {
  private struct Waiter {
    var id: UInt64
    var c: CheckedContinuation<Void, any Error>
  }
  private struct State {
    var inUse = 0
    var waiters: [Waiter] = []
    var next: UInt64 = 0
  }
  public let limit: Int
  private let state = Mutex(State())
  public init(limit: Int) { self.limit = max(1, limit) }

  public var inUse: Int { state.withLock { $0.inUse } }
  public var waiting: Int { state.withLock { $0.waiters.count } }

  public func acquire() async throws {
    try Task.checkCancellation()
    let id = state.withLock { s -> UInt64? in
      if s.inUse < limit {
        s.inUse += 1
        return nil
      }
      s.next += 1
      return s.next
    }
    guard let id else { return }
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
        let granted = state.withLock { s -> Bool in
          // The permit may have been released between the two critical sections.
          if s.inUse < limit {
            s.inUse += 1
            return true
          }
          s.waiters.append(Waiter(id: id, c: c))
          return false
        }
        if granted { c.resume() }
      }
    } onCancel: {
      let w = state.withLock { s -> Waiter? in
        guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
        return s.waiters.remove(at: i)
      }
      w?.c.resume(throwing: CancellationError())
    }
  }

  public func release() {
    let next = state.withLock { s -> Waiter? in
      if s.waiters.isEmpty {
        s.inUse -= 1
        return nil
      }
      return s.waiters.removeFirst()  // the permit passes straight to the next waiter
    }
    next?.c.resume()
  }

  public func withPermit<T: Sendable>(_ body: () async throws -> T) async throws -> T {
    try await acquire()
    defer { release() }
    return try await body()
  }
}

/// The seed's AdaptiveThrottling: a delay of (factor − 1) × baseDelay before each call. The factor
/// doubles on a rate-limit error (up to maxFactor), shrinks by decayFactor (never below 1) while
/// the recent success rate and latency are healthy, and grows by degradeFactor (up to
/// degradeMaxFactor) while they are degraded.
public final class AdaptiveThrottle: Sendable {
  public struct Settings: Sendable {
    public var maxFactor = 10.0, baseDelay: Duration = .milliseconds(500), decayFactor = 0.9
    public var degradeFactor = 1.1, degradeMaxFactor = 5.0
    public var healthySuccessRate = 0.95, healthyLatency: Duration = .seconds(1)
    public var degradedSuccessRate = 0.8, degradedLatency: Duration = .seconds(3)
    public var window = 100
    public init() {}
    public init(_ a: RateLimitSpec.Adaptive) {
      if let v = a.maxFactor { maxFactor = v }
      if let v = a.baseDelay { baseDelay = v.swiftDuration }
      if let v = a.decayFactor { decayFactor = v }
      if let v = a.degradeFactor { degradeFactor = v }
      if let v = a.degradeMaxFactor { degradeMaxFactor = v }
      if let v = a.healthySuccessRate { healthySuccessRate = v }
      if let v = a.healthyLatency { healthyLatency = v.swiftDuration }
      if let v = a.degradedSuccessRate { degradedSuccessRate = v }
      if let v = a.degradedLatency { degradedLatency = v.swiftDuration }
    }
  }
  private struct State {
    var factor = 1.0
    var outcomes: [(ok: Bool, latency: Double)] = []
  }
  public let settings: Settings
  private let state = Mutex(State())
  public init(settings: Settings = Settings()) { self.settings = settings }

  public var factor: Double { state.withLock { $0.factor } }
  public var delay: Duration { .secondsDouble((factor - 1) * settings.baseDelay.seconds) }

  public func recordRateLimited() {
    state.withLock { s in s.factor = min(s.factor * 2, settings.maxFactor) }
  }

  public func record(success: Bool, latency: Duration) {
    state.withLock { s in
      s.outcomes.append((success, latency.seconds))
      if s.outcomes.count > settings.window { s.outcomes.removeFirst(s.outcomes.count - settings.window) }
      let rate = Double(s.outcomes.filter(\.ok).count) / Double(s.outcomes.count)
      let avg = s.outcomes.map(\.latency).reduce(0, +) / Double(s.outcomes.count)
      if rate > settings.healthySuccessRate && avg < settings.healthyLatency.seconds {
        s.factor = max(1, s.factor * settings.decayFactor)
      } else if rate < settings.degradedSuccessRate || avg > settings.degradedLatency.seconds {
        s.factor = max(s.factor, min(s.factor * settings.degradeFactor, settings.degradeMaxFactor))
      }
    }
  }
}

/// The limits across all services (RateLimit `global`): calls per minute and concurrency classes.
public final class GlobalLimiter: Sendable {
  public enum WorkClass: String, Sendable, CaseIterable { case videoUpload, aiGeneration, apiRequest }
  public let calls: RateLimiter
  private let classes: [WorkClass: ConcurrencyLimiter]

  public init(_ g: RateLimitSpec.Global?, clock: any ResilienceClock = SystemClock()) {
    calls = RateLimiter(service: "global", requests: nil, extraPerMinute: g?.callsPerMinute, clock: clock)
    var c: [WorkClass: ConcurrencyLimiter] = [:]
    c[.videoUpload] = ConcurrencyLimiter(limit: g?.videoUploads ?? 3)
    c[.aiGeneration] = ConcurrencyLimiter(limit: g?.aiGenerations ?? 5)
    c[.apiRequest] = ConcurrencyLimiter(limit: g?.apiRequests ?? 50)
    classes = c
  }

  public func limiter(_ c: WorkClass) -> ConcurrencyLimiter { classes[c]! }

  public func run<T: Sendable>(_ c: WorkClass, _ body: () async throws -> T) async throws -> T {
    try await limiter(c).withPermit {
      try await calls.acquire()
      return try await body()
    }
  }
}
