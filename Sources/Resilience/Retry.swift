import EmpireModel
import Foundation

/// How a RateLimit's `retry` block is applied, per error category.
///
/// Precedence, most specific first: a category written in the manifest; then, for a category the
/// manifest is silent on, the block's own `initialDelay` as its base delay; then the seed's
/// ErrorHandler table (`RateLimitSpec.Category.seedDefaults`).
public struct RetryPolicy: Sendable {
  public var categories: [ErrorCategory: RateLimitSpec.Category]
  /// Total retries across categories (the block's maxRetries), if set.
  public var maxRetries: Int?
  public var maxDelay: Duration
  public var deadline: Duration?
  public var multiplier: Double
  public var jitter: Bool
  public var retryOnStatuses: Set<Int>?
  public var retryOnReasons: Set<String>?

  public init(_ spec: RateLimitSpec.Retry?) {
    var cats = RateLimitSpec.Category.seedDefaults
    for (c, v) in cats where spec?.categories[c] == nil {
      if let initial = spec?.initialDelay, v.strategy == .exponential || v.strategy == .linear { cats[c]!.baseDelay = initial }
    }
    for (c, v) in spec?.categories ?? [:] { cats[c] = v }
    categories = cats
    maxRetries = spec?.maxRetries
    maxDelay = spec?.maxDelay?.swiftDuration ?? .seconds(60)
    deadline = spec?.deadline?.swiftDuration
    multiplier = spec?.multiplier ?? 2
    jitter = spec?.jitter ?? true
    retryOnStatuses = spec?.retryOnStatuses.map(Set.init)
    retryOnReasons = spec?.retryOnReasons.map(Set.init)
  }

  public enum Decision: Sendable, Equatable {
    case retry(after: Duration)
    case giveUp(String)
  }

  /// Whether and when to retry after `failure`, which was the `categoryAttempt`-th failure of its
  /// category (0-based) and the `totalAttempt`-th retry overall.
  /// - Parameters:
  ///   - random: a number in [0, 1) for full jitter.
  ///   - untilReset: time left until the quota resets, for `scheduled` / `next_quota_reset`.
  public func decide(
    _ failure: ServiceFailure, categoryAttempt: Int, totalAttempt: Int, elapsed: Duration,
    random: Double, untilReset: Duration?
  ) -> Decision {
    let cat = categories[failure.category] ?? RateLimitSpec.Category.seedDefaults[failure.category]!
    if let status = failure.status, retryOnStatuses != nil || retryOnReasons != nil {
      let byStatus = retryOnStatuses?.contains(status) ?? false
      let byReason = failure.reason.map { retryOnReasons?.contains($0) ?? false } ?? false
      if !byStatus && !byReason { return .giveUp("HTTP \(status) is not in retryOn") }
    }
    if let m = cat.maxRetries, categoryAttempt >= m { return .giveUp("\(failure.category.rawValue): \(m) retries used") }
    if let m = maxRetries, totalAttempt >= m, cat.strategy != .scheduled { return .giveUp("\(m) retries used") }
    var wait: Duration
    switch cat.strategy {
    case .none:
      return .giveUp("\(failure.category.rawValue) is not retried")
    case .exponential:
      let base = (cat.baseDelay?.swiftDuration ?? .seconds(1)).seconds
      var d = min(base * pow(multiplier, Double(categoryAttempt)), maxDelay.seconds)
      if jitter { d *= random }  // full jitter: uniform in [0, d)
      wait = .secondsDouble(d)
    case .linear:
      let base = (cat.baseDelay?.swiftDuration ?? .seconds(1)).seconds
      wait = .secondsDouble(min(base * Double(categoryAttempt + 1), maxDelay.seconds))
    case .scheduled:
      switch cat.retryAfter {
      case .after(let d)?: wait = d.swiftDuration
      case .nextQuotaReset?, nil:
        guard let untilReset else { return .giveUp("no quota reset is known to wait for") }
        wait = untilReset
      }
    }
    if let ra = failure.retryAfter, ra > wait { wait = ra }
    if let deadline, elapsed + wait > deadline {
      return .giveUp("the next try (in \(Self.format(wait))) would pass the deadline of \(Self.format(deadline))")
    }
    return .retry(after: wait)
  }

  static func format(_ d: Duration) -> String { String(format: "%.3gs", d.seconds) }
}

extension Retrier {
  /// Why a wait the service asked for is not waited out in this run, or nil when it may be.
  func beyondReach(_ retryAfter: Duration, untilReset: Duration?) -> String? {
    if retryAfter >= ErrorClassifier.maxRetryAfter { return "at least the \(ErrorClassifier.maxRetryAfter.spelled) ytempire ever waits" }
    if let untilReset, retryAfter > untilReset { return "beyond the quota reset in \(untilReset.spelled)" }
    if let maxWait, retryAfter > maxWait { return "longer than the \(maxWait.spelled) a run waits for a retry" }
    return nil
  }
}

/// The service answered with a Retry-After (`inf`, `1e16`, a day, past the quota reset) that
/// is not waited out: the call is given up at once, and the engine defers the work to a later
/// run as it does a quota answer. Drivers pass it on unchanged (it is not a `CallFailure`).
public struct RetryAfterDeferral: Error, Sendable, CustomStringConvertible {
  public var last: ServiceFailure
  public var attempts: Int
  /// The wait the service asked for (at most `ErrorClassifier.maxRetryAfter`).
  public var wait: Duration
  public var why: String
  public var description: String {
    "\(last) — the service asks to wait \(wait.spelled) (Retry-After), \(why); deferred to a later run"
  }
}

/// The error thrown when retries are over: the last failure and why no more were made.
public struct RetriesExhausted: Error, Sendable, CustomStringConvertible {
  public var last: ServiceFailure
  public var attempts: Int
  public var reason: String
  public var description: String { "\(last) — gave up after \(attempts) attempt(s): \(reason)" }
}

public typealias RandomSource = @Sendable () -> Double

public struct Retrier: Sendable {
  public var policy: RetryPolicy
  public var clock: any ResilienceClock
  public var random: RandomSource
  /// Time left until the service's quota resets.
  public var untilReset: (@Sendable () -> Duration?)?
  /// Called before each retry sleep (metrics, logs).
  public var onRetry: (@Sendable (ServiceFailure, Duration) -> Void)?
  /// The longest single wait the caller accepts; a retry that would wait longer (a quota
  /// reset hours away) gives up instead, so the caller can defer the work.
  public var maxWait: Duration?
  /// When the whole call must be over, and how to name that deadline: a retry that would start
  /// after it gives up at once instead of sleeping into it.
  public var deadline: (at: ContinuousClock.Instant, name: String)?

  public init(
    policy: RetryPolicy, clock: any ResilienceClock = SystemClock(), random: @escaping RandomSource = { Double.random(in: 0..<1) },
    untilReset: (@Sendable () -> Duration?)? = nil, onRetry: (@Sendable (ServiceFailure, Duration) -> Void)? = nil
  ) {
    self.policy = policy
    self.clock = clock
    self.random = random
    self.untilReset = untilReset
    self.onRetry = onRetry
  }

  /// Runs `operation` until it succeeds, or throws a non-`ServiceFailure` error, or the policy
  /// gives up (then `RetriesExhausted`).
  public func run<T: Sendable>(_ operation: @Sendable (_ attempt: Int) async throws -> T) async throws -> T {
    let start = clock.now
    var perCategory: [ErrorCategory: Int] = [:]
    var attempt = 0
    while true {
      do {
        return try await operation(attempt)
      } catch let f as ServiceFailure {
        let n = perCategory[f.category, default: 0]
        let reset = untilReset?()
        let decision = policy.decide(
          f, categoryAttempt: n, totalAttempt: attempt, elapsed: start.duration(to: clock.now),
          random: random(), untilReset: reset)
        switch decision {
        case .giveUp(let why): throw RetriesExhausted(last: f, attempts: attempt + 1, reason: why)
        case .retry(let wait):
          // The service's own Retry-After sets this wait and it is out of reach: defer, never sleep on it.
          if let ra = f.retryAfter, ra >= wait, let why = beyondReach(ra, untilReset: reset) {
            throw RetryAfterDeferral(last: f, attempts: attempt + 1, wait: ra, why: why)
          }
          if let maxWait, wait > maxWait {
            throw RetriesExhausted(
              last: f, attempts: attempt + 1,
              reason: "the next try would wait \(RetryPolicy.format(wait)), longer than \(RetryPolicy.format(maxWait))")
          }
          if let deadline, clock.now.advanced(by: wait) > deadline.at {
            throw RetriesExhausted(
              last: f, attempts: attempt + 1,
              reason: "the next try (in \(RetryPolicy.format(wait))) would start after \(deadline.name)")
          }
          onRetry?(f, wait)
          perCategory[f.category] = n + 1
          attempt += 1
          try await clock.sleep(for: wait)
        }
      }
    }
  }
}
