import EmpireModel
import Foundation
import Synchronization

/// Thrown without calling the service while its breaker is open.
public struct CircuitOpenError: Error, Sendable, CustomStringConvertible {
  public var service: String
  /// When the breaker will admit a probe again.
  public var retryAt: ContinuousClock.Instant
  public var retryIn: Duration
  public var description: String {
    "circuit breaker for \(service) is open: not calling it; it will try again in \(RetryPolicy.format(retryIn))"
  }
}

/// The per-service circuit breaker (seed: circuit_breaker_config; default 5 / 2 / 60 s / 3).
///
/// closed → open after `failureThreshold` consecutive monitored failures → half-open once
/// `timeout` has passed, admitting `halfOpenRequests` probes at a time → closed after
/// `successThreshold` successes; any failure while half-open opens it again.
public final class CircuitBreaker: Sendable {
  public enum State: String, Sendable {
    case closed, open
    case halfOpen = "half_open"
  }
  public struct Snapshot: Sendable, Equatable {
    public var state: State
    public var consecutiveFailures: Int
    public var halfOpenSuccesses: Int
    public var probesInFlight: Int
    public var openedAt: ContinuousClock.Instant?
    public var transitions: Int
  }
  public struct Settings: Sendable {
    public var failureThreshold = 5, successThreshold = 2, halfOpenRequests = 3
    public var timeout: Duration = .seconds(60)
    /// Failures that count. nil: every failure.
    public var monitoredErrors: Set<String>?
    public init() {}
    public init(_ spec: RateLimitSpec.CircuitBreaker?, fallback: RateLimitSpec.CircuitBreaker? = nil) {
      failureThreshold = spec?.failureThreshold ?? fallback?.failureThreshold ?? 5
      successThreshold = spec?.successThreshold ?? fallback?.successThreshold ?? 2
      halfOpenRequests = spec?.halfOpenRequests ?? fallback?.halfOpenRequests ?? 3
      timeout = (spec?.timeout ?? fallback?.timeout)?.swiftDuration ?? .seconds(60)
      monitoredErrors = (spec?.monitoredErrors ?? fallback?.monitoredErrors).map(Set.init)
    }
  }

  public let service: String
  public let settings: Settings
  private let clock: any ResilienceClock
  private let state: Mutex<Snapshot>
  private let onTransition: (@Sendable (String, State, State) -> Void)?

  public init(
    service: String, settings: Settings = Settings(), clock: any ResilienceClock = SystemClock(),
    onTransition: (@Sendable (_ service: String, _ from: State, _ to: State) -> Void)? = nil
  ) {
    self.service = service
    self.settings = settings
    self.clock = clock
    self.onTransition = onTransition
    state = Mutex(Snapshot(state: .closed, consecutiveFailures: 0, halfOpenSuccesses: 0, probesInFlight: 0, openedAt: nil, transitions: 0))
  }

  /// For metrics: the current state (an open breaker whose timeout has passed reports half-open).
  public var snapshot: Snapshot {
    let now = clock.now
    return state.withLock { s in
      var c = s
      if c.state == .open, let o = c.openedAt, o.advanced(by: settings.timeout) <= now {
        c.state = .halfOpen
        c.halfOpenSuccesses = 0
      }
      return c
    }
  }

  /// A permission to make one call. Report its outcome with `record`.
  public struct Permit: Sendable { fileprivate let probe: Bool }

  /// Asks to make a call: throws `CircuitOpenError` while open (or while the half-open probes are
  /// all in flight).
  public func acquire() throws(CircuitOpenError) -> Permit {
    let now = clock.now
    var change: (State, State)?
    let result: Result<Permit, CircuitOpenError> = state.withLock { s in
      switch s.state {
      case .closed:
        return .success(Permit(probe: false))
      case .open:
        let until = s.openedAt!.advanced(by: settings.timeout)
        if until > now { return .failure(CircuitOpenError(service: service, retryAt: until, retryIn: now.duration(to: until))) }
        change = (.open, .halfOpen)
        s.state = .halfOpen
        s.halfOpenSuccesses = 0
        s.probesInFlight = 1
        s.transitions += 1
        return .success(Permit(probe: true))
      case .halfOpen:
        if s.probesInFlight >= settings.halfOpenRequests {
          return .failure(CircuitOpenError(service: service, retryAt: now, retryIn: .zero))
        }
        s.probesInFlight += 1
        return .success(Permit(probe: true))
      }
    }
    if let change { onTransition?(service, change.0, change.1) }
    return try result.get()
  }

  /// Whether a failure counts toward opening the breaker.
  public func isMonitored(_ f: ServiceFailure) -> Bool {
    // Without a list, what says the service is unwell: 5xx, timeouts, lost connections,
    // rate and quota answers. A 4xx answer (a rule set not made yet, a bad request) is the
    // service working as it should and never opens the breaker.
    guard let monitored = settings.monitoredErrors else { return f.category != .validationError }
    var names = [f.category.rawValue, f.category.rawValue + "_exceeded", f.category.rawValue + "_error"]
    if let r = f.reason { names += [r, Self.snake(r)] }
    if let s = f.status, s >= 500 { names.append("server_error") }
    return names.contains(where: monitored.contains)
  }

  public func recordSuccess(_ p: Permit) { record(p, failed: false) }
  public func recordFailure(_ p: Permit, _ f: ServiceFailure) { record(p, failed: isMonitored(f)) }
  /// A failure the breaker does not judge (cancellation, or an unmonitored error): releases the probe.
  public func recordIgnored(_ p: Permit) {
    state.withLock { s in if p.probe && s.state == .halfOpen { s.probesInFlight = max(0, s.probesInFlight - 1) } }
  }

  private func record(_ p: Permit, failed: Bool) {
    let now = clock.now
    var change: (State, State)?
    state.withLock { s in
      if p.probe && s.state == .halfOpen { s.probesInFlight = max(0, s.probesInFlight - 1) }
      switch (s.state, failed) {
      case (.closed, false): s.consecutiveFailures = 0
      case (.closed, true):
        s.consecutiveFailures += 1
        if s.consecutiveFailures >= settings.failureThreshold {
          s.state = .open
          s.openedAt = now
          s.transitions += 1
          change = (.closed, .open)
        }
      case (.halfOpen, false):
        s.halfOpenSuccesses += 1
        if s.halfOpenSuccesses >= settings.successThreshold {
          s.state = .closed
          s.consecutiveFailures = 0
          s.probesInFlight = 0
          s.openedAt = nil
          s.transitions += 1
          change = (.halfOpen, .closed)
        }
      case (.halfOpen, true):
        s.state = .open
        s.openedAt = now
        s.probesInFlight = 0
        s.transitions += 1
        change = (.halfOpen, .open)
      case (.open, _): break  // a call admitted before the breaker opened
      }
    }
    if let change { onTransition?(service, change.0, change.1) }
  }

  /// Runs `operation` under the breaker. `ServiceFailure`s are recorded; other errors release the permit.
  public func run<T: Sendable>(_ operation: () async throws -> T) async throws -> T {
    let p = try acquire()
    do {
      let v = try await operation()
      recordSuccess(p)
      return v
    } catch let f as ServiceFailure {
      recordFailure(p, f)
      throw f
    } catch let e as RetriesExhausted {
      recordFailure(p, e.last)
      throw e
    } catch {
      recordIgnored(p)
      throw error
    }
  }

  static func snake(_ s: String) -> String {
    var out = ""
    for ch in s {
      if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) }
    }
    return out
  }
}

/// The breakers of all services, created on first use.
public final class BreakerRegistry: Sendable {
  private let breakers = Mutex<[String: CircuitBreaker]>([:])
  private let settings: @Sendable (String) -> CircuitBreaker.Settings
  private let clock: any ResilienceClock
  private let onTransition: (@Sendable (String, CircuitBreaker.State, CircuitBreaker.State) -> Void)?

  public init(
    clock: any ResilienceClock = SystemClock(), settings: @escaping @Sendable (String) -> CircuitBreaker.Settings = { _ in .init() },
    onTransition: (@Sendable (String, CircuitBreaker.State, CircuitBreaker.State) -> Void)? = nil
  ) {
    self.clock = clock
    self.settings = settings
    self.onTransition = onTransition
  }

  public func breaker(_ service: String) -> CircuitBreaker {
    breakers.withLock { b in
      if let x = b[service] { return x }
      let x = CircuitBreaker(service: service, settings: settings(service), clock: clock, onTransition: onTransition)
      b[service] = x
      return x
    }
  }

  public var states: [String: CircuitBreaker.State] {
    breakers.withLock { $0 }.mapValues { $0.snapshot.state }
  }
}
