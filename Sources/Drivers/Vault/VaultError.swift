import Basics
import CurlHTTP
import DriverKit
import Foundation

/// A Vault call that failed: which call, the HTTP status and Vault's `errors` text. Never
/// carries the token: messages come from Vault's error body, scrubbed of it.
public struct VaultError: DriverError, Sendable, CustomStringConvertible, Equatable {
  /// `sys.policies.acl.write`, `kv.metadata.read`, …
  public var operation: String
  public var status: Int?
  /// `permissionDenied`, `sealed`, `invalidRequest`, `notFound`, `malformedResponse`, `tokenRejected`, …
  public var reason: String
  public var message: String

  public init(operation: String, status: Int?, reason: String, message: String) {
    self.operation = operation
    self.status = status
    self.reason = reason
    self.message = message
  }

  public var description: String {
    var s = "vault \(operation): "
    return s + ServiceErrorText.statusAndReason(status, reason) + (message.isEmpty ? "" : ": " + message)
  }

  public var reasonCode: String { reason }
  public var category: DriverErrorCategory {
    return DriverErrorCategory.of(
      status: status, reason: reason,
      own: [
        "tokenRejected": .authentication, "sealed": .unavailable, "malformedResponse": .malformed, "malformedAction": .configuration,
        "secretUnavailable": .configuration,
      ])
  }

  /// Vault's machine-readable reason for a status (its error bodies carry only text).
  static func reason(status: Int, messages: [String]) -> String {
    switch status {
    case 400: return "invalidRequest"
    case 403: return messages.contains { $0.contains("invalid token") } ? "tokenRejected" : "permissionDenied"
    case 404: return "notFound"
    case 405: return "unsupportedOperation"
    case 429: return "rateLimited"
    case 500: return "internalError"
    case 503: return "sealed"
    default: return "HTTP \(status)"
    }
  }

  /// The `errors` array of a Vault error body (empty when the body is empty or not Vault's).
  static func messages(_ body: [UInt8]) -> [String] {
    guard let v = try? JSONValue.parse(body), let errs = v["errors"]?.array else { return [] }
    return errs.compactMap(\.string).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
  }

  /// Vault's multi-error text ("2 errors occurred:\n\t* permission denied\n\t* invalid token") on one line.
  static func flatten(_ messages: [String]) -> String {
    let parts = messages.flatMap { m in
      m.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        .map { $0.hasPrefix("* ") ? String($0.dropFirst(2)) : $0 }
        .filter { !$0.isEmpty && !($0.hasSuffix("errors occurred:") || $0.hasSuffix("error occurred:")) }
    }
    let s = parts.joined(separator: "; ")
    return s.count > 500 ? String(s.prefix(500)) + "…" : s
  }

  static func scrub(_ s: String, _ secret: String?) -> String { Redaction.scrub(s, secrets: secret.map { [$0] } ?? []) }
}
