import Crypto
import EmpireModel
import Foundation

/// Something a sink is told about (docs/notifications.md): an apply's outcome, a stalled
/// revision, drift, deferred work, a low quota, a key due for rotation.
///
/// `condition` and `state` make deliveries transitions, not polls: a sink gets an event only
/// when its condition's state differs from the last one it was sent (`Notifier`).
public struct NotificationEvent: Sendable, Codable, Equatable {
  public struct Subject: Sendable, Codable, Equatable {
    public var kind: String
    public var name: String
    /// What happened to it; never a secret (messages are scrubbed again when rendered).
    public var message: String?
    public init(kind: String, name: String, message: String? = nil) {
      self.kind = kind
      self.name = name
      self.message = message
    }
  }

  public var event: NotificationSink.Event
  public var time: Date
  /// `main@sha1:<hex>` or `dir@sha256:<hex>`.
  public var revision: String?
  /// The commit id when the revision is a git commit.
  public var commit: String?
  /// One line for people: "3 changes applied at main@sha1:1a2b3c4".
  public var summary: String
  public var resources: [Subject]
  /// The condition whose transition this is (`failed`, `quotaLow/youtube`, …).
  public var condition: String
  /// The condition's state; the same state is never sent twice in a row to one sink.
  public var state: String
  /// Who sent it: `apply` or `serve`, and the host.
  public var actor: String

  public init(
    event: NotificationSink.Event, time: Date, revision: String?, commit: String?, summary: String,
    resources: [Subject] = [], condition: String? = nil, state: String, actor: String
  ) {
    self.event = event
    self.time = time
    self.revision = revision
    self.commit = commit
    self.summary = summary
    self.resources = resources
    self.condition = condition ?? event.rawValue
    self.state = state
    self.actor = actor
  }

  /// Stable across retries and restarts: receivers can drop a delivery they already have.
  public func deliveryID(sink: String) -> String {
    let digest = SHA256.hash(data: Data("\(sink)\n\(condition)\n\(state)".utf8))
    return digest.prefix(16).map { String(format: "%02x", $0) }.joined()
  }

  /// The event as a sink with `selector` sees it: only its resources; nil when none of them
  /// match (an event about no resource passes every selector).
  public func selected(by selector: NotificationSink.Selector?) -> NotificationEvent? {
    guard let selector, !resources.isEmpty else { return self }
    let kept = resources.filter { s in Kind(rawValue: s.kind).map { selector.matches(kind: $0, name: s.name) } ?? false }
    guard !kept.isEmpty else { return nil }
    var e = self
    e.resources = kept
    return e
  }
}

/// The commit status `ytempire/apply` (or `ytempire/plan`) of one commit, for forge sinks.
public struct CommitStatus: Sendable, Equatable {
  public enum State: String, Sendable { case pending, success, failure, error }
  public var commit: String
  public var state: State
  /// At most 140 characters (GitHub's limit) once rendered.
  public var description: String
  public var context: String
  /// The status page, when `serve.externalURL` is set.
  public var targetURL: String?
  public init(commit: String, state: State, description: String, context: String = "ytempire/apply", targetURL: String? = nil) {
    self.commit = commit
    self.state = state
    self.description = description
    self.context = context
    self.targetURL = targetURL
  }
}
