import Basics
import CurlHTTP
import EmpireModel
import Foundation

extension TLSPolicy {
  /// The TLS settings of SecurityPolicy.spec.transport.
  public init(_ t: SecurityPolicySpec.Transport?) {
    self.init(
      minimumVersion: t?.minTLSVersion.map { $0 == .tls13 ? .tls13 : .tls12 },
      tls13CipherSuites: t?.cipherSuites?.map(\.rawValue),
      pinnedKeys: t?.pinnedKeys ?? [:],
      caBundlePath: t?.caBundle)
  }
}

/// Everything that governs the calls to one service, built from its RateLimit (and the global one).
public struct ServiceLimits: Sendable {
  public let service: String
  public let retry: RetryPolicy
  public let limiter: RateLimiter
  public let concurrency: ConcurrencyLimiter?
  public let adaptive: AdaptiveThrottle?
  public let ledger: QuotaLedger?

  public init(
    spec: RateLimitSpec?, service: String, global: RateLimitSpec? = nil, ledger: QuotaLedger? = nil,
    clock: any ResilienceClock = SystemClock()
  ) {
    self.service = service
    retry = RetryPolicy(spec?.retry)
    limiter = RateLimiter(service: service, requests: spec?.requests, tokens: spec?.tokens, characters: spec?.characters, clock: clock)
    concurrency = spec?.concurrency.map { ConcurrencyLimiter(limit: $0) }
    let a = spec?.adaptive ?? global?.adaptive
    adaptive = (a?.enabled ?? false) ? AdaptiveThrottle(settings: .init(a!)) : nil
    self.ledger = ledger
  }
}

/// The resilient path of one integration call: breaker → global limits → service limits →
/// adaptive and predictive spacing → quota ledger → HTTP → classification, all inside the retry
/// loop of the service's RateLimit.
public final class ResilientHTTP: Sendable {
  public let http: any HTTPTransport
  public let limits: ServiceLimits
  public let breaker: CircuitBreaker
  public let global: GlobalLimiter?
  private let clock: any ResilienceClock
  private let random: RandomSource
  /// The longest retry wait accepted (nil: whatever the policy says, e.g. until a quota reset).
  public let maxRetryWait: Duration?
  /// The deadline of one call, from its first attempt to its last (retry and rate-limit waits
  /// included), `deadlines.call`; nil: none.
  public let callTimeout: Duration?

  public init(
    http: any HTTPTransport, limits: ServiceLimits, breakers: BreakerRegistry, global: GlobalLimiter? = nil,
    clock: any ResilienceClock = SystemClock(), random: @escaping RandomSource = { Double.random(in: 0..<1) },
    maxRetryWait: Duration? = nil, callTimeout: Duration? = nil
  ) {
    self.http = http
    self.limits = limits
    self.breaker = breakers.breaker(limits.service)
    self.global = global
    self.clock = clock
    self.random = random
    self.maxRetryWait = maxRetryWait
    self.callTimeout = callTimeout
  }

  /// The name of the call deadline's setting, for messages.
  public static let callDeadlineSetting = "deadlines.call"

  /// Sends `request`; a non-2xx/3xx answer or a transport failure is retried per the policy and
  /// finally thrown as `RetriesExhausted` (holding the classified `ServiceFailure`). An open
  /// breaker throws `CircuitOpenError` at once; a call the ledger refuses throws `QuotaExhausted`
  /// at once (our own refusal says nothing about the service's health and is not retried).
  /// - Parameter operation: `resource.method` for the quota's cost map (videos.list, …).
  public func send(
    _ request: HTTPRequest, operation: String? = nil, channel: String? = nil, priority: QuotaLedger.Priority = .normal,
    workClass: GlobalLimiter.WorkClass = .apiRequest, cost: RateLimiter.Cost = RateLimiter.Cost()
  ) async throws -> HTTPResponse {
    let ledger = limits.ledger
    var untilReset: (@Sendable () -> Duration?)?
    if let ledger { untilReset = { ledger.untilReset } }
    var retrier = Retrier(policy: limits.retry, clock: clock, random: random, untilReset: untilReset)
    retrier.maxWait = maxRetryWait
    guard let callTimeout else {
      return try await retrier.run { _ in
        try await self.attempt(request, operation: operation, channel: channel, priority: priority, workClass: workClass, cost: cost)
      }
    }
    // A retry that could only start after the deadline is not waited for.
    retrier.deadline = (
      clock.now.advanced(by: callTimeout), "the call's deadline of \(Deadline.format(callTimeout)) (\(Self.callDeadlineSetting))"
    )
    let r = retrier
    let what = "\(limits.service) \(operation ?? request.method + " call")"
    return try await Deadline.run(
      callTimeout, clock: clock, exceeded: { DeadlineExceeded(what: what, limit: callTimeout, setting: Self.callDeadlineSetting) },
      {
        try await r.run { _ in
          try await self.attempt(request, operation: operation, channel: channel, priority: priority, workClass: workClass, cost: cost)
        }
      })
  }

  private func attempt(
    _ request: HTTPRequest, operation: String?, channel: String?, priority: QuotaLedger.Priority,
    workClass: GlobalLimiter.WorkClass, cost: RateLimiter.Cost
  ) async throws -> HTTPResponse {
    let permit = try breaker.acquire()
    do {
      let response = try await limited(workClass) {
        try await self.limits.limiter.acquire(cost)
        if let a = self.limits.adaptive { try await self.clock.sleep(for: a.delay) }
        if let l = self.limits.ledger, let operation {
          try await self.clock.sleep(for: l.predictiveDelay(cost: l.cost(of: operation), channel: channel))
          // A refusal by our own ledger is final for this call: it is thrown as it is, never
          // retried and never slept on until the reset (the planner defers such work).
          _ = try await AsyncBridge.offload(when: l.chargesOverNetwork) { try l.charge(operation, channel: channel, priority: priority) }
        }
        let started = self.clock.now
        let r: HTTPResponse
        do { r = try await self.http.execute(request) } catch let e as CurlHTTPError {
          // A request that is not idempotent (POST: an insert) is not sent again once it
          // may have reached the server: the caller observes to find out what happened.
          if !Self.isIdempotent(request.method) && !e.kind.failedBeforeSending {
            throw OutcomeUnknown(service: self.limits.service, method: request.method, url: e.url, cause: e.description)
          }
          throw ErrorClassifier.classify(e, service: self.limits.service)
        }
        let latency = started.duration(to: self.clock.now)
        if let f = ErrorClassifier.classify(r, service: self.limits.service, now: self.clock.wallNow) {
          if f.category == .rateLimit { self.limits.adaptive?.recordRateLimited() }
          self.limits.adaptive?.record(success: false, latency: latency)
          throw f
        }
        self.limits.adaptive?.record(success: true, latency: latency)
        return r
      }
      breaker.recordSuccess(permit)
      return response
    } catch let f as ServiceFailure {
      breaker.recordFailure(permit, f)
      throw f
    } catch {
      breaker.recordIgnored(permit)
      throw error
    }
  }

  private func limited<T: Sendable>(_ c: GlobalLimiter.WorkClass, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let inner: @Sendable () async throws -> T = {
      if let sem = self.limits.concurrency { return try await sem.withPermit(body) }
      return try await body()
    }
    if let global { return try await global.run(c, inner) }
    return try await inner()
  }
}

extension ResilientHTTP {
  /// GET, HEAD, PUT, DELETE, OPTIONS may be repeated without changing the outcome.
  static func isIdempotent(_ method: String) -> Bool {
    ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"].contains(method.uppercased())
  }
}

extension CurlHTTPError.Kind {
  /// The transfer failed before any byte of the request could reach the server.
  var failedBeforeSending: Bool {
    switch self {
    case .resolveFailed, .connectFailed, .tls, .pinMismatch, .invalidRequest: true
    case .timeout, .connectionLost, .bodyTooLarge, .tooManyRedirects, .other: false
    }
  }
}

/// A non-idempotent request failed after it may have reached the server (the connection was
/// lost or timed out mid-exchange). It is not retried: repeating an insert could create the
/// object twice. The caller observes again to learn whether it happened.
public struct OutcomeUnknown: Error, Sendable, CustomStringConvertible {
  public var service: String
  public var method: String
  /// scheme://host/path, no query.
  public var url: String
  public var cause: String
  public var description: String {
    "\(service): \(method) \(url) may or may not have been executed (\(cause)); not repeated, the next plan observes what happened"
  }
}

// MARK: fallback chains

/// One provider's turn in a fallback chain: the operation gets the provider and its parameters
/// scaled by the provider's weight (the seed's _adjust_parameters).
public struct ProviderAttempt: Sendable {
  public let provider: ProviderChainSpec.Provider
  public let weight: Double
  /// defaults.maxTokens × weight (at least 1).
  public let maxTokens: Int?
  public let temperature: Double?
  public let timeout: Duration?
  /// Scales any quality/size parameter by the provider's weight.
  public func scale(_ x: Double) -> Double { x * weight }
  public func scale(_ x: Int) -> Int { max(1, Int((Double(x) * weight).rounded())) }
}

public struct FallbackResult<T: Sendable>: Sendable {
  public var value: T
  /// The provider that served the call.
  public var provider: String
  public var weight: Double
  /// Providers tried before it, with why they were passed over.
  public var skipped: [(provider: String, reason: String)]
}

public struct AllProvidersFailed: Error, Sendable, CustomStringConvertible {
  public var capability: String
  public var failures: [(provider: String, reason: String)]
  public var description: String {
    "every provider of the \(capability) chain failed: " + failures.map { "\($0.provider): \($0.reason)" }.joined(separator: "; ")
  }
}

public enum FallbackChain {
  /// Runs `operation` over the chain's providers in order, skipping those whose breaker is open
  /// and moving on when one fails; returns the first result and who served it.
  /// - Parameter breakerName: the breaker of a provider (its RateLimit's name if it has one, else its name).
  public static func run<T: Sendable>(
    _ chain: ProviderChainSpec, breakers: BreakerRegistry,
    breakerName: (ProviderChainSpec.Provider) -> String = { $0.rateLimit?.name ?? $0.name },
    _ operation: @Sendable (ProviderAttempt) async throws -> T
  ) async throws -> FallbackResult<T> {
    var skipped: [(provider: String, reason: String)] = []
    for p in chain.providers {
      try Task.checkCancellation()
      let breaker = breakers.breaker(breakerName(p))
      let attempt = ProviderAttempt(
        provider: p, weight: p.weight,
        maxTokens: chain.defaults?.maxTokens.map { max(1, Int((Double($0) * p.weight).rounded())) },
        temperature: chain.defaults?.temperature,
        timeout: (p.timeout ?? chain.defaults?.timeout)?.swiftDuration)
      do {
        let v = try await breaker.run { try await operation(attempt) }
        return FallbackResult(value: v, provider: p.name, weight: p.weight, skipped: skipped)
      } catch is CancellationError {
        throw CancellationError()
      } catch {
        skipped.append((p.name, "\(error)"))
      }
    }
    throw AllProvidersFailed(capability: chain.capability.rawValue, failures: skipped)
  }
}
