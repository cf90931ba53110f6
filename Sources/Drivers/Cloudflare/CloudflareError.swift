import Basics
import CurlHTTP
import DriverKit
import Foundation

/// A Cloudflare call that failed, or a state the driver will not act on: which call, for which
/// CDNZone, the HTTP status and Cloudflare's error code (`10003`, `971`, `9109`, …) or the
/// driver's own reason (`zoneNotFound`, `concurrentEdit`, `malformedResponse`, …). Never carries
/// the API token: messages come from the error envelope and are scrubbed of it.
public struct CloudflareError: DriverError, Sendable, CustomStringConvertible, Equatable {
  /// `rulesets.update`, `scripts.upload`, …
  public var operation: String
  /// The CDNZone resource the call was for.
  public var resource: String?
  public var status: Int?
  /// Cloudflare's first error code as a string, or the driver's reason.
  public var reason: String
  public var message: String

  public init(operation: String, resource: String?, status: Int?, reason: String, message: String) {
    self.operation = operation
    self.resource = resource
    self.status = status
    self.reason = reason
    self.message = message
  }

  public var description: String {
    var s = "cloudflare \(operation)"
    if let resource { s += " for \(resource)" }
    s += ": "
    s += ServiceErrorText.statusAndReason(status, Self.code(reason))
    if !message.isEmpty { s += ": " + message }
    if let hint = Self.hints[reason] { s += " (\(hint))" }
    return s
  }

  static func code(_ reason: String) -> String { reason.allSatisfy(\.isNumber) && !reason.isEmpty ? "code \(reason)" : reason }

  /// What a person can do about the codes worth explaining.
  static let hints: [String: String] = [
    "9106": "no API token was sent",
    "6003": "the Authorization header is not 'Bearer <token>'",
    "9109": "the API token is not valid: check integrations.cloudflare.token",
    "10000": "the token may not act on this account or zone",
    "971": "over Cloudflare's 1200 requests per 5 minutes: every call is blocked for five minutes",
    "7003": "the zone or object id is unknown",
    "10020": "another route already has this pattern",
    "10021": "Cloudflare rejected the script",
    "20021": "Cloudflare rejected the rules",
    "concurrentEdit": "someone else changed the ruleset while ytempire wrote it: plan again",
  ]

  public var reasonCode: String { reason }
  public var category: DriverErrorCategory {
    DriverErrorCategory.of(
      status: status, reason: reason,
      own: [
        "accountUnknown": .configuration, "zoneNotFound": .notFound, "concurrentEdit": .conflict, "scriptChanged": .conflict,
        "scriptMissing": .configuration, "secretUnavailable": .configuration, "malformedAction": .configuration,
        "malformedResponse": .malformed, "971": .rateLimited, "9106": .authentication, "6003": .authentication, "9109": .authentication,
        "10000": .permission,
      ])
  }
}

enum Envelope {
  /// (code, message) of Cloudflare's envelope `{"success":false,"errors":[{"code","message"}]}`.
  static func error(_ body: [UInt8], status: Int) -> (reason: String, message: String) {
    guard let v = try? JSONValue.parse(body, maxDepth: 16) else {
      return ("HTTP \(status)", body.isEmpty ? "" : "the answer is not Cloudflare's JSON envelope")
    }
    let first = v["errors"]?.array?.first
    let code = first?["code"]?.int.flatMap { (0...99_999_999).contains($0) ? String($0) : nil }
    var message = first?["message"]?.string ?? v["message"]?.string ?? ""
    if let chain = first?["error_chain"]?.array?.first?["message"]?.string { message += " — " + chain }
    return (code ?? "HTTP \(status)", message)
  }

  /// Replaces the token (and every configured secret, `Redaction.scrub`) wherever it appears and bounds the length.
  static func scrub(_ s: String, _ secrets: [String]) -> String { Redaction.scrub(s, secrets: secrets, limit: 500) }
}
