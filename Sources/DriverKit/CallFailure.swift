import Resilience

/// The HTTP side of a failed call, whichever layer threw it: a `ServiceFailure`, or the
/// `RetriesExhausted` wrapping the last one. Lets a driver react to a status (a 401 → refresh
/// the token; a 404 on delete → already gone) without importing the resilience layer.
/// Other errors (the ledger's `QuotaExhausted`, `CircuitOpenError`, cancellation) are not
/// call failures: `init` returns nil for them, and drivers pass them on unchanged.
public struct CallFailure: Sendable, CustomStringConvertible {
  /// HTTP status, when there was a response.
  public var status: Int?
  /// The provider's machine-readable reason (YouTube `errors[].reason`, OAuth `error`, the curl error kind).
  public var reason: String?
  /// Human-readable, from the response body (already free of request secrets).
  public var message: String

  public init(status: Int?, reason: String?, message: String) {
    self.status = status
    self.reason = reason
    self.message = message
  }

  public init?(_ error: any Error) {
    let f: ServiceFailure
    if let e = error as? ServiceFailure { f = e } else if let e = error as? RetriesExhausted { f = e.last } else { return nil }
    self.init(status: f.status, reason: f.reason, message: f.message)
  }

  public var description: String {
    (status.map { ServiceErrorText.statusAndReason($0, reason ?? "") } ?? ("no response" + (reason.map { " \($0)" } ?? ""))) + ": "
      + message
  }
}

/// How the drivers' errors show a status and a reason.
public enum ServiceErrorText {
  /// "HTTP 403 quotaExceeded"; a reason that only repeats the status (the fallback reason
  /// "HTTP 302" of an answer without one) is not written twice.
  public static func statusAndReason(_ status: Int?, _ reason: String) -> String {
    guard let status else { return reason }
    let s = "HTTP \(status)"
    return reason.isEmpty || reason == s ? s : s + " " + reason
  }
}

/// What kind of failure an error is, whichever driver or layer threw it. The engine decides
/// from this alone — defer a quota answer to the reset, mark a rejection Stalled until a new
/// commit, leave a transient failure to the next run — never from an error's text.
public enum DriverErrorCategory: String, Sendable, Codable, CaseIterable {
  /// The service's quota is spent (YouTube `quotaExceeded`, the ledger's own refusal): defer to the reset.
  case quota
  /// Too many requests now (HTTP 429, `rateLimitExceeded`): the next run tries again.
  case rateLimited
  /// Credentials missing, expired or refused (HTTP 401, OAuth `invalid_grant`).
  case authentication
  /// The credentials may not do this (HTTP 403 that is not a quota answer).
  case permission
  /// The service refused the request as invalid (HTTP 400, 422 and other 4xx).
  case rejected
  /// What the request names does not exist (HTTP 404, 410).
  case notFound
  /// Someone else changed it first (HTTP 409, 412): plan again.
  case conflict
  /// The service could not be reached or failed (network, timeouts, 5xx, an open breaker).
  case unavailable
  /// The service answered something that is not its API.
  case malformed
  /// ytempire's side: a secret that cannot be read, a file missing, an object it does not own, an action that lacks what it needs.
  case configuration

  /// A failure that repeats until the repository (or a person) changes something: Stalled.
  /// (A conflict is not: the next plan observes what the other writer did.)
  public var waitsForChange: Bool { self == .rejected || self == .permission || self == .notFound }

  /// The category an HTTP answer's status means; the classifier's quota and rate reasons are
  /// the service's own words for a 403/429 that is about quota.
  public static func http(status: Int, reason: String?) -> DriverErrorCategory {
    if let reason, ErrorClassifier.quotaReasons.contains(reason) { return .quota }
    if let reason, ErrorClassifier.rateReasons.contains(reason) { return .rateLimited }
    switch status {
    case 401: return .authentication
    case 403: return .permission
    case 404, 410: return .notFound
    case 409, 412: return .conflict
    case 429: return .rateLimited
    case 400..<500: return .rejected
    default: return .unavailable
    }
  }

  /// A driver error's category: the driver's own reasons by `own`; a service's answer by its
  /// status; no status and no own reason: the service could not be reached.
  public static func of(status: Int?, reason: String, own: [String: DriverErrorCategory]) -> DriverErrorCategory {
    if let c = own[reason] { return c }
    if let status { return http(status: status, reason: reason) }
    return .unavailable
  }

  /// The category of any error a driver's apply or observe throws: a driver's own error
  /// says it; the resilience layer's are mapped; anything else is nil (unknown).
  public static func of(_ error: any Error) -> DriverErrorCategory? {
    switch error {
    case let e as any DriverError: return e.category
    case is QuotaExhausted, is RetryAfterDeferral: return .quota
    case is CircuitOpenError, is OutcomeUnknown: return .unavailable
    case let e as RetriesExhausted: return of(e.last)
    case let e as ServiceFailure:
      switch e.category {
      case .quotaExceeded: return .quota
      case .rateLimit: return .rateLimited
      case .networkError, .apiError: return e.status.map { http(status: $0, reason: e.reason) } ?? .unavailable
      case .validationError: return e.status.map { http(status: $0, reason: e.reason) } ?? .rejected
      }
    default: return nil
    }
  }
}

/// A driver's error: which service refused what, its machine-readable reason, and the
/// category the engine acts on.
public protocol DriverError: Error, CustomStringConvertible {
  /// HTTP status, when the service answered.
  var status: Int? { get }
  /// The service's machine-readable reason (`quotaExceeded`, Cloudflare's `10000`) or the driver's own.
  var reasonCode: String { get }
  var category: DriverErrorCategory { get }
}
