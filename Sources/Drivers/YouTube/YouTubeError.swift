import Basics
import CurlHTTP
import DriverKit
import Foundation

/// A YouTube (or OAuth) call that failed: which call, for which channel, and the API's reason
/// (`quotaExceeded`, `channelNotFound`, `invalid_grant`, …). Never carries a token or secret:
/// messages come from the API's error body and are scrubbed of the secrets of the call.
public struct YouTubeError: DriverError, Sendable, CustomStringConvertible, Equatable {
  /// `channels.list`, `playlists.update`, `oauth.token`, …
  public var operation: String
  /// The Channel resource the call was for (the first of a batch).
  public var channel: String?
  /// HTTP status, when there was a response.
  public var status: Int?
  /// The API's machine-readable reason, or the driver's own (`credentialsNotConfigured`,
  /// `secretUnavailable`, `channelNotFound`, `malformedResponse`).
  public var reason: String
  public var message: String

  public init(operation: String, channel: String?, status: Int?, reason: String, message: String) {
    self.operation = operation
    self.channel = channel
    self.status = status
    self.reason = reason
    self.message = message
  }

  public var description: String {
    var s = "youtube \(operation)"
    if let channel { s += " for \(channel)" }
    s += ": "
    return s + ServiceErrorText.statusAndReason(status, reason) + (message.isEmpty ? "" : ": " + message)
  }
}

enum ErrorText {
  /// Google messages carry HTML (`<a href=…>quota</a>`): keep the text.
  static func stripHTML(_ s: String) -> String {
    guard s.contains("<") else { return s }
    var out = ""
    var inTag = false
    for ch in s {
      if ch == "<" {
        inTag = true
        continue
      }
      if ch == ">" && inTag {
        inTag = false
        continue
      }
      if !inTag { out.append(ch) }
    }
    return out
  }

  /// Replaces every occurrence of a secret by `[redacted]`, so a server echoing one cannot leak it.
  /// Every configured secret is masked too (`Redaction.scrub`).
  static func scrub(_ s: String, _ secrets: [String]) -> String { Redaction.scrub(s, secrets: secrets, limit: 500) }

  /// (reason, message) of a Google or OAuth error body.
  static func parse(_ body: [UInt8], status: Int) -> (reason: String, message: String) {
    guard let v = try? JSONValue.parse(body) else { return ("HTTP \(status)", "") }
    if let e = v["error"], e.object != nil {
      let first = e["errors"]?.array?.first
      let reason = first?["reason"]?.string ?? e["status"]?.string ?? "HTTP \(status)"
      return (reason, stripHTML(e["message"]?.string ?? first?["message"]?.string ?? ""))
    }
    if let e = v["error"]?.string {
      return (e, v["error_description"]?.string ?? "")
    }
    return ("HTTP \(status)", v["message"]?.string ?? "")
  }
}

extension YouTubeError {
  public var reasonCode: String { reason }
  public var category: DriverErrorCategory {
    return DriverErrorCategory.of(
      status: status, reason: reason,
      own: [
        "invalid_grant": .authentication, "invalid_client": .authentication, "unauthorized_client": .authentication,
        "channelNotFound": .notFound, "credentialsNotConfigured": .configuration, "secretUnavailable": .configuration,
        "malformedAction": .configuration, "malformedResponse": .malformed,
      ])
  }
}
