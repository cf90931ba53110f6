import Basics
import CurlHTTP
import DriverKit
import Foundation

/// An n8n call that failed, or a workflow the driver refuses to touch: which call, for which
/// Schedule, and why. n8n's errors are `{"message": "…"}`; the status gives the reason
/// (`unauthorized`, `badRequest`, `notFound`, `conflict`, `rateLimited`, `serverError`), and the
/// driver has its own (`notOwned`, `workflowFileMissing`, `workflowFileInvalid`,
/// `malformedResponse`, `malformedAction`, `secretUnavailable`, `transportError`). Never carries
/// the API key: messages are scrubbed of it.
public struct N8nError: DriverError, Sendable, CustomStringConvertible, Equatable {
  /// `workflows.create`, `tags.list`, …
  public var operation: String
  /// The Schedule the call was for.
  public var schedule: String?
  public var status: Int?
  public var reason: String
  public var message: String

  public init(operation: String, schedule: String?, status: Int?, reason: String, message: String) {
    self.operation = operation
    self.schedule = schedule
    self.status = status
    self.reason = reason
    self.message = message
  }

  public var description: String {
    var s = "n8n \(operation)"
    if let schedule { s += " for Schedule/\(schedule)" }
    s += ": "
    return s + ServiceErrorText.statusAndReason(status, reason) + (message.isEmpty ? "" : ": " + message)
  }

  public var reasonCode: String { reason }
  public var category: DriverErrorCategory {
    DriverErrorCategory.of(
      status: status, reason: reason,
      own: [
        "notOwned": .configuration, "workflowFileMissing": .configuration, "workflowFileInvalid": .configuration,
        "malformedResponse": .malformed, "malformedAction": .configuration, "secretUnavailable": .configuration,
        "transportError": .unavailable,
      ])
  }

  /// The reason n8n's status means.
  static func reason(status: Int?) -> String {
    switch status {
    case 400?: "badRequest"
    case 401?: "unauthorized"
    case 403?: "forbidden"
    case 404?: "notFound"
    case 409?: "conflict"
    case 429?: "rateLimited"
    case let s? where s >= 500: "serverError"
    case let s?: "HTTP \(s)"
    case nil: "transportError"
    }
  }

  /// A hint for what the operator can do.
  static func hint(status: Int?) -> String? {
    switch status {
    case 401?: "check integrations.n8n.apiKey (an n8n API key from Settings → n8n API)"
    case 403?: "the API key's user may not do this"
    default: nil
    }
  }

  /// The `message` of an n8n error body (or the start of a non-JSON one).
  static func message(_ body: [UInt8]) -> String {
    if let v = try? JSONValue.parse(body, maxDepth: 16), let m = v["message"]?.string { return m }
    let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    return text
  }

  /// Replaces a secret (and every configured one, `Redaction.scrub`) by `[redacted]` and bounds the length.
  static func scrub(_ s: String, _ secret: String?) -> String { Redaction.scrub(s, secrets: secret.map { [$0] } ?? [], limit: 500) }
}
