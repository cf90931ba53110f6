import Basics
import CurlHTTP
import EmpireModel
import Foundation

/// A failed call, sorted into the seed's categories (ErrorHandler._categorize_error).
public struct ServiceFailure: Error, Sendable, CustomStringConvertible {
  public var service: String
  public var category: ErrorCategory
  /// HTTP status, when there was a response.
  public var status: Int?
  /// The provider's machine-readable reason: YouTube `errors[].reason`, Cloudflare's error code,
  /// or the curl error kind.
  public var reason: String?
  /// Human-readable and free of secrets.
  public var message: String
  /// The server's Retry-After, resolved to a delay.
  public var retryAfter: Duration?

  public init(
    service: String, category: ErrorCategory, status: Int? = nil, reason: String? = nil, message: String, retryAfter: Duration? = nil
  ) {
    self.service = service
    self.category = category
    self.status = status
    self.reason = reason
    self.message = message
    self.retryAfter = retryAfter
  }

  public var description: String {
    var s = "\(service): \(category.rawValue)"
    if let status { s += " (HTTP \(status)" + (reason.map { ", \($0)" } ?? "") + ")" } else if let reason { s += " (\(reason))" }
    return s + ": " + message
  }
}

public enum ErrorClassifier {
  /// Classifies a response. nil for 2xx/3xx (success).
  public static func classify(_ r: HTTPResponse, service: String, now: Date = Date()) -> ServiceFailure? {
    guard r.status >= 400 else { return nil }
    let body = ProviderErrorBody.parse(r.body)
    let retryAfter = r.headers["Retry-After"].flatMap { parseRetryAfter($0, now: now) }
    let reasons = body.reasons
    let category: ErrorCategory
    if reasons.contains(where: quotaReasons.contains) {
      category = .quotaExceeded
    } else if r.status == 429 || reasons.contains(where: rateReasons.contains) || body.codes.contains(971) {
      category = .rateLimit
    } else if r.status == 408 {
      category = .networkError
    } else if r.status >= 500 {
      category = .apiError
    } else {
      category = .validationError
    }
    var reason = reasons.first.map { Redaction.scrub($0, limit: 100) }
    if reason == nil, let code = body.codes.first { reason = String(code) }
    // The body is the service's text: a configured secret it echoes is masked here, where it comes in.
    let message = Redaction.scrub(body.message ?? "HTTP \(r.status)", limit: 300)
    var retry = retryAfter
    // Cloudflare blocks every call for five minutes after error 971 / a 429 without a header.
    if retry == nil, body.codes.contains(971) { retry = .seconds(300) }
    return ServiceFailure(service: service, category: category, status: r.status, reason: reason, message: message, retryAfter: retry)
  }

  /// Classifies a transport failure.
  public static func classify(_ e: CurlHTTPError, service: String) -> ServiceFailure {
    let category: ErrorCategory
    switch e.kind {
    case .resolveFailed, .connectFailed, .timeout, .connectionLost, .other: category = .networkError
    // A certificate or pin that does not match will not match on the next try either, and a
    // request libcurl refuses or a response over the limit is not going to change.
    case .tls, .pinMismatch, .bodyTooLarge, .tooManyRedirects, .invalidRequest: category = .validationError
    }
    return ServiceFailure(service: service, category: category, reason: e.kind.rawValue, message: e.description)
  }

  /// Providers' reasons for a spent quota and for too many requests (YouTube, OpenAI, ElevenLabs, …).
  public static let quotaReasons: Set<String> = [
    "quotaExceeded", "dailyLimitExceeded", "dailyLimitExceededUnreg", "quota_exceeded", "insufficient_quota",
  ]
  public static let rateReasons: Set<String> = ["rateLimitExceeded", "userRateLimitExceeded", "rate_limit_exceeded", "rate_limit_error"]

  /// The longest Retry-After taken as it is: a day, longer than any quota window. A larger
  /// value (`inf`, `1e16`, a date years ahead) is clamped to it, and a wait this long is never
  /// slept on: the retrier gives the call up as `RetryAfterDeferral` and the work is deferred.
  public static let maxRetryAfter: Duration = .seconds(86_400)

  /// Retry-After is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3). Range-checked
  /// here, where it comes in: a negative, NaN or unparsable value is ignored (nil), anything
  /// beyond `maxRetryAfter` (an infinite one included) is `maxRetryAfter`.
  public static func parseRetryAfter(_ value: String, now: Date) -> Duration? {
    let v = value.trimmingCharacters(in: .whitespaces)
    let cap = maxRetryAfter.seconds
    // delay-seconds is 1*DIGIT: any number of digits, so a long one is clamped, not trapped.
    if !v.isEmpty, v.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
      guard let s = Int(v), Double(s) <= cap else { return maxRetryAfter }
      return .seconds(s)
    }
    // Not RFC 9110, but servers send it: a decimal number of seconds.
    if let s = Double(v) {
      guard !s.isNaN, s >= 0 else { return nil }
      return s >= cap ? maxRetryAfter : .secondsDouble(s)
    }
    for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
      let f = DateFormatter()
      f.locale = Locale(identifier: "en_US_POSIX")
      f.timeZone = TimeZone(identifier: "GMT")
      f.dateFormat = format
      if let d = f.date(from: v) {
        let left = d.timeIntervalSince(now)
        guard left.isFinite else { return nil }
        return left >= cap ? maxRetryAfter : .secondsDouble(max(0, left))
      }
    }
    return nil
  }
}

/// The error bodies of the providers ytempire talks to (API-NOTES.md).
struct ProviderErrorBody {
  var reasons: [String] = []
  var codes: [Int] = []
  var message: String?

  static func parse(_ bytes: [UInt8]) -> ProviderErrorBody {
    var out = ProviderErrorBody()
    guard !bytes.isEmpty, let json = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) as? [String: Any]
    else {
      return out
    }
    if let err = json["error"] as? [String: Any] {
      // YouTube / Google: {"error":{"code":403,"message":"…","errors":[{"reason":"quotaExceeded",…}]}}
      out.message = err["message"] as? String
      for e in err["errors"] as? [[String: Any]] ?? [] { if let r = e["reason"] as? String { out.reasons.append(r) } }
      if let s = err["status"] as? String { out.reasons.append(s) }
      // OpenAI: {"error":{"type":"insufficient_quota","code":"rate_limit_exceeded",…}}
      if let t = err["type"] as? String { out.reasons.append(t) }
      if let c = err["code"] as? String { out.reasons.append(c) }
    } else if let err = json["error"] as? String {
      // OAuth: {"error":"invalid_grant","error_description":"…"}
      out.reasons.append(err)
      out.message = json["error_description"] as? String ?? err
    }
    if let errs = json["errors"] as? [[String: Any]] {
      // Cloudflare: {"success":false,"errors":[{"code":971,"message":"…"}]}
      for e in errs {
        if let c = e["code"] as? Int { out.codes.append(c) }
        if out.message == nil { out.message = e["message"] as? String }
      }
    } else if let errs = json["errors"] as? [String] {
      // Vault: {"errors":["permission denied"]}
      out.message = errs.isEmpty ? nil : errs.joined(separator: "; ")
    }
    if out.message == nil, let m = json["message"] as? String { out.message = m }  // n8n: {"message":"…"}
    return out
  }
}
