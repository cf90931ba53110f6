import Foundation
import YAMLKit

/// One sink of `notifications:` in ytempire.yaml (DESIGN A10 "Events", docs/notifications.md).
public struct NotificationSink: Sendable {
  public enum SinkType: String, Sendable, CaseIterable {
    case slack, discord, msteams, webhook, alertmanager, github, gitlab

    /// Chat webhooks whose URL is itself the credential.
    public var urlIsSecret: Bool { self == .slack || self == .discord || self == .msteams }
    /// Commit statuses (and, in `serve`, pull-request plans).
    public var isForge: Bool { self == .github || self == .gitlab }
  }

  /// What a sink can be told about. A forge sink (github, gitlab) turns `applied` and `failed`
  /// into the commit status `ytempire/apply`.
  public enum Event: String, Sendable, CaseIterable, Codable {
    case applied, failed, stalled, drifted, deferred, quotaLow, rotationDue, leaderChanged
  }

  /// Which resources' events a sink receives; events that concern no resource (stalled,
  /// quotaLow, leaderChanged) pass every selector.
  public struct Selector: Sendable, Equatable {
    public var kinds: [Kind]?
    public var names: [String]?
    public init(kinds: [Kind]? = nil, names: [String]? = nil) {
      self.kinds = kinds
      self.names = names
    }
    public func matches(kind: Kind, name: String) -> Bool {
      (kinds.map { $0.contains(kind) } ?? true) && (names.map { $0.contains(name) } ?? true)
    }
  }

  public var name: String
  public var type: SinkType
  /// slack, discord, msteams: the incoming-webhook URL, a secret reference.
  public var secretURL: SecretRef?
  /// webhook, alertmanager: where events are posted; github, gitlab: the API's base URL.
  public var endpoint: String?
  /// webhook: the HMAC-SHA256 key of `X-Ytempire-Signature`.
  public var secret: SecretRef?
  /// github, gitlab: the API token.
  public var token: SecretRef?
  /// github: `owner/repo`; gitlab: the project's id or its path (`group/project`).
  public var repository: String?
  public var events: [Event]
  public var selector: Selector?
  /// Deliveries per minute to this sink (default 30).
  public var perMinute: Int
  /// One delivery, every retry included, gives up after this (default 10s).
  public var timeout: ModelDuration
  public var mark: SourceMark

  public init(
    name: String, type: SinkType, secretURL: SecretRef? = nil, endpoint: String? = nil, secret: SecretRef? = nil, token: SecretRef? = nil,
    repository: String? = nil, events: [Event], selector: Selector? = nil, perMinute: Int = Self.defaultPerMinute,
    timeout: ModelDuration = Self.defaultTimeout, mark: SourceMark
  ) {
    self.name = name
    self.type = type
    self.secretURL = secretURL
    self.endpoint = endpoint
    self.secret = secret
    self.token = token
    self.repository = repository
    self.events = events
    self.selector = selector
    self.perMinute = perMinute
    self.timeout = timeout
    self.mark = mark
  }

  public static let defaultEvents: [Event] = [.applied, .failed, .stalled, .drifted, .deferred, .quotaLow, .rotationDue, .leaderChanged]
  public static let forgeEvents: [Event] = [.applied, .failed]
  public static let defaultPerMinute = 30
  public static let defaultTimeout = ModelDuration.seconds(10)
  public static let githubEndpoint = "https://api.github.com"
  public static let gitlabEndpoint = "https://gitlab.com"
  /// At most this many sinks.
  public static let maxSinks = 32

  public func wants(_ e: Event) -> Bool { events.contains(e) }
}

extension NodeDecoder {
  static let sinkKeys = [
    "name", "type", "url", "endpoint", "secret", "token", "repository", "project", "events", "resources", "rateLimit", "timeout",
  ]

  /// `notifications:`, a list of sinks with unique names.
  func configNotifications(_ node: YAMLNode?, _ path: String, _ ctx: inout ConfigContext) -> [NotificationSink] {
    guard let node, let items = list(node, path) else { return [] }
    if items.count > NotificationSink.maxSinks {
      diags.error(.outOfRange, "\(path) has \(items.count) sinks; at most \(NotificationSink.maxSinks) are allowed", at: node.mark)
      return []
    }
    var out: [NotificationSink] = []
    var names: [Reference] = []
    for (ip, item) in items {
      guard let s = sink(item, ip, &ctx) else { continue }
      names.append(Reference(name: s.name, mark: s.mark))
      out.append(s)
    }
    checkUnique(names, in: path)
    return out
  }

  private func sink(_ node: YAMLNode, _ path: String, _ ctx: inout ConfigContext) -> NotificationSink? {
    guard let f = mapping(node, path, known: Self.sinkKeys) else { return nil }
    requireFields(f, ["name", "type"])
    let name = pattern(f, "name", what: "a sink name (\(Names.rule))", code: .invalidName) { Names.isValid($0) }
    guard let type = enumeration(f, "type", NotificationSink.SinkType.self) else { return nil }
    func refuse(_ key: String, _ why: String) {
      if let m = f.keyMark(key) {
        diags.error(.unknownField, "\(f.sub(key)) is not used by a \(type.rawValue) sink: \(why)", at: m)
      }
    }
    var s = NotificationSink(
      name: name ?? "", type: type, events: type.isForge ? NotificationSink.forgeEvents : NotificationSink.defaultEvents,
      perMinute: NotificationSink.defaultPerMinute, timeout: NotificationSink.defaultTimeout, mark: node.mark)
    switch type {
    case .slack, .discord, .msteams:
      if let n = f.value("url") {
        if case .scalar = n.value {
          // Never repeated: the URL of a chat webhook is the credential.
          diags.error(
            .invalidValue,
            "\(f.sub("url")) of a \(type.rawValue) sink is a secret (whoever has it can post): write {env: NAME} or {file: PATH}",
            at: n.mark)
        } else {
          s.secretURL = secretRef(n, f.sub("url"), &ctx)
        }
      } else {
        requireFields(f, ["url"])
      }
      for k in ["endpoint", "secret", "token", "repository", "project"] { refuse(k, "its url says everything") }
    case .webhook, .alertmanager:
      s.endpoint = endpoint(f, "url", &ctx)
      if type == .alertmanager { refuse("secret", "Alertmanager's API v2 takes no signature") }
      if type == .webhook { s.secret = secretRef(f, "secret", &ctx) }
      for k in ["endpoint", "token", "repository", "project"] { refuse(k, "write the address as url") }
    case .github, .gitlab:
      let def = type == .github ? NotificationSink.githubEndpoint : NotificationSink.gitlabEndpoint
      s.endpoint = endpoint(f, "endpoint", default: def, &ctx)
      s.token = secretRef(f, "token", required: true, &ctx)
      refuse("url", "write the API's base URL as endpoint")
      refuse("secret", "it authenticates with token")
      if type == .github {
        refuse("project", "a GitHub sink names its repository as repository: owner/repo")
        s.repository = pattern(f, "repository", required: true, what: "a GitHub repository written owner/repo") { Self.isOwnerRepo($0) }
      } else {
        refuse("repository", "a GitLab sink names its project as project: (an id or group/project)")
        s.repository = pattern(f, "project", required: true, what: "a GitLab project id (1234) or path (group/subgroup/project)") {
          Self.isGitLabProject($0)
        }
      }
    }
    if let events = enumList(f, "events", NotificationSink.Event.self) {
      if let n = f.value("events"), events.isEmpty, case .sequence(let items) = n.value, items.isEmpty {
        diags.error(.outOfRange, "\(f.sub("events")) is empty: the sink would receive nothing; remove the sink instead", at: n.mark)
      }
      if type.isForge, let bad = events.first(where: { !NotificationSink.forgeEvents.contains($0) }), let n = f.value("events") {
        diags.error(
          .invalidValue,
          "\(f.sub("events")): a \(type.rawValue) sink posts the commit status ytempire/apply, from applied and failed only; '\(bad.rawValue)' is not one of them",
          at: n.mark)
      }
      var seen = Set<NotificationSink.Event>()
      s.events = events.filter { seen.insert($0).inserted }
    }
    if let rn = f.value("resources"), let r = mapping(rn, f.sub("resources"), known: ["kinds", "names"]) {
      let kinds = enumList(r, "kinds", Kind.self)
      let names = nameList(r, "names")
      s.selector = .init(kinds: kinds, names: names?.map(\.name))
    }
    if let n = f.value("rateLimit"), let rl = mapping(n, f.sub("rateLimit"), known: ["perMinute"]) {
      s.perMinute = int(rl, "perMinute", required: true, min: 1, max: 6000) ?? s.perMinute
    }
    if let d = duration(f, "timeout") {
      if d < ReconcilerConfigLoader.Defaults.minDeadline || ModelDuration.seconds(300) < d {
        diags.error(.outOfRange, "\(f.sub("timeout")) is \(d); write a timeout between 100ms and 5m", at: f.value("timeout")!.mark)
      } else {
        s.timeout = d
      }
    }
    guard name != nil else { return nil }
    return s
  }

  static func isOwnerRepo(_ s: String) -> Bool {
    let parts = s.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, s.utf8.count <= 140 else { return false }
    return parts.allSatisfy { p in
      !p.isEmpty && p != "." && p != ".."
        && p.utf8.allSatisfy {
          ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || "-_.".utf8.contains($0)
        }
    }
  }

  static func isGitLabProject(_ s: String) -> Bool {
    guard !s.isEmpty, s.utf8.count <= 255 else { return false }
    if s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) { return s.utf8.count <= 18 }
    let parts = s.split(separator: "/", omittingEmptySubsequences: false)
    return parts.count >= 2
      && parts.allSatisfy { p in
        !p.isEmpty && p != "." && p != ".."
          && p.utf8.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || "-_.".utf8.contains($0)
          }
      }
  }
}
