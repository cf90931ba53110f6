import DriverKit

/// Why the Prometheus driver could not observe or apply: which step, and what the file system,
/// promtool or Prometheus said. `reason` is machine-readable (the engine and status show it).
public struct PrometheusError: DriverError, Sendable, CustomStringConvertible, Equatable {
  public enum Reason: String, Sendable {
    /// The rule file is not a regular file, too large, unreadable or not writable.
    case ruleFileUnusable
    /// The rule file is not YAML, or not the shape of a Prometheus rule file.
    case invalidRuleFile
    /// `promtool check rules` refused the new file (it never replaced the old one).
    case promtoolRejected
    /// promtool could not be run (missing, not executable, timed out).
    case promtoolUnavailable
    /// Prometheus could not be reached.
    case unreachable
    /// `POST /-/reload` failed (lifecycle API disabled, configuration error).
    case reloadFailed
    /// `/api/v1/rules` did not show the rules as written, healthy.
    case verificationFailed
    /// Prometheus answered something that is not its API's JSON.
    case malformedResponse
    /// The action lacks what apply needs.
    case malformedAction
  }

  public var reason: Reason
  public var message: String
  /// HTTP status, when Prometheus answered.
  public var status: Int?

  public init(_ reason: Reason, _ message: String, status: Int? = nil) {
    self.reason = reason
    self.message = message
    self.status = status
  }

  public var description: String { "prometheus: \(message)" }
  public var reasonCode: String { reason.rawValue }
  public var category: DriverErrorCategory {
    switch reason {
    case .ruleFileUnusable, .malformedAction, .promtoolUnavailable: .configuration
    case .invalidRuleFile, .promtoolRejected: .rejected
    case .unreachable, .reloadFailed: .unavailable
    case .verificationFailed: .configuration
    case .malformedResponse: .malformed
    }
  }
}
