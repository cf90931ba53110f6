import Basics
import Crypto
import CurlHTTP
import DriverKit
import EmpireModel
import Foundation

/// A sink with its credentials resolved: what a delivery needs, and nothing that prints them.
public struct ResolvedSink: Sendable {
  public var config: NotificationSink
  /// Where deliveries go: the chat webhook's URL, the webhook's or Alertmanager's URL, or the forge's API base.
  var url: String
  /// webhook: the HMAC key; github, gitlab: the token.
  var key: [UInt8]?
  /// Every secret value of this sink, masked in whatever it sends or logs.
  var secrets: [String]

  public init(config: NotificationSink, url: String, key: [UInt8]?, secrets: [String]) {
    self.config = config
    self.url = url
    self.key = key
    self.secrets = secrets
  }

  public var name: String { config.name }
}

/// How each sink type's request is written (API-NOTES "Notification sinks"). Pure: no I/O.
public enum Payloads {
  /// The longest text a chat message carries (Discord's limit is 2,000 characters).
  static let chatLimit = 1800
  static let maxSubjects = 20

  /// The request announcing `event` to `sink`; nil for a forge sink (they take commit statuses).
  public static func request(_ event: NotificationEvent, sink: ResolvedSink, statusPage: String?) -> HTTPRequest? {
    let scrub = { (s: String) in Redaction.scrub(s, secrets: sink.secrets) }
    var e = event
    e.summary = scrub(e.summary)
    e.resources = e.resources.map { NotificationEvent.Subject(kind: $0.kind, name: $0.name, message: $0.message.map(scrub)) }
    let id = event.deliveryID(sink: sink.name)
    var headers: HTTPHeaders = ["Content-Type": "application/json", "User-Agent": "ytempire"]
    let body: [UInt8]
    var url = sink.url
    switch sink.config.type {
    case .github, .gitlab:
      return nil
    case .webhook:
      body = json(webhookBody(e, id: id, statusPage: statusPage))
      headers.add("X-Ytempire-Event", e.event.rawValue)
      headers.add("X-Ytempire-Delivery", id)
      if let key = sink.key { headers.add("X-Ytempire-Signature", "sha256=" + signature(body, key: key)) }
    case .slack:
      body = json(["text": .string(chatText(e, escape: slackEscape, statusPage: statusPage))])
    case .discord:
      // No @everyone, role or user mention from a resource's text.
      body = json([
        "content": .string(chatText(e, escape: { $0 }, statusPage: statusPage)), "allowed_mentions": .object(["parse": .array([])]),
      ])
    case .msteams:
      let card: [String: JSONValue] = [
        "type": "AdaptiveCard", "version": "1.4", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "body": .array([
          .object(["type": "TextBlock", "wrap": .bool(true), "text": .string(chatText(e, escape: { $0 }, statusPage: statusPage))])
        ]),
      ]
      body = json([
        "type": "message",
        "attachments": .array([.object(["contentType": "application/vnd.microsoft.card.adaptive", "content": .object(card)])]),
      ])
    case .alertmanager:
      url += "/api/v2/alerts"
      body = json(.array([alert(e, statusPage: statusPage)]))
    }
    return HTTPRequest(method: "POST", url: url, headers: headers, body: body, timeout: sink.config.timeout.swiftDuration, maxRedirects: 0)
  }

  /// The commit status request of a forge sink; nil for other sinks.
  public static func request(_ status: CommitStatus, sink: ResolvedSink) -> HTTPRequest? {
    guard let repo = sink.config.repository, let token = sink.key else { return nil }
    let description = String(Redaction.scrub(status.description, secrets: sink.secrets).prefix(140))
    let tokenText = String(decoding: token, as: UTF8.self)
    let sha = status.commit
    guard sha.utf8.count == 40 || sha.utf8.count == 64, sha.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
    else { return nil }
    switch sink.config.type {
    case .github:
      var o: [String: JSONValue] = [
        "state": .string(status.state.rawValue), "description": .string(description), "context": .string(status.context),
      ]
      if let t = status.targetURL { o["target_url"] = .string(t) }
      let headers: HTTPHeaders = [
        "Authorization": "Bearer \(tokenText)", "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
        "Content-Type": "application/json", "User-Agent": "ytempire",
      ]
      return HTTPRequest(
        method: "POST", url: "\(sink.url)/repos/\(repo)/statuses/\(sha)", headers: headers, body: json(.object(o)),
        timeout: sink.config.timeout.swiftDuration, maxRedirects: 0)
    case .gitlab:
      let state: String =
        switch status.state {
        case .pending: "running"
        case .success: "success"
        case .failure, .error: "failed"
        }
      var q = "state=\(state)&name=\(PercentEncoding.encode(status.context))&description=\(PercentEncoding.encode(description))"
      if let t = status.targetURL { q += "&target_url=\(PercentEncoding.encode(t))" }
      let headers: HTTPHeaders = ["PRIVATE-TOKEN": tokenText, "User-Agent": "ytempire"]
      return HTTPRequest(
        method: "POST", url: "\(sink.url)/api/v4/projects/\(PercentEncoding.encode(repo))/statuses/\(sha)?\(q)", headers: headers,
        body: nil, timeout: sink.config.timeout.swiftDuration, maxRedirects: 0)
    default:
      return nil
    }
  }

  /// Lower-case hex HMAC-SHA256 of `body` with `key` (`X-Ytempire-Signature: sha256=<this>`).
  public static func signature(_ body: [UInt8], key: [UInt8]) -> String {
    let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: key))
    return mac.map { String(format: "%02x", $0) }.joined()
  }

  static func webhookBody(_ e: NotificationEvent, id: String, statusPage: String?) -> JSONValue {
    var o: [String: JSONValue] = [
      "id": .string(id), "event": .string(e.event.rawValue), "time": .string(Self.time(e.time)), "summary": .string(e.summary),
      "condition": .string(e.condition), "actor": .string(e.actor),
      "resources": .array(
        e.resources.map { s in
          var r: [String: JSONValue] = ["kind": .string(s.kind), "name": .string(s.name)]
          if let m = s.message { r["message"] = .string(m) }
          return .object(r)
        }),
    ]
    if let r = e.revision { o["revision"] = .string(r) }
    if let c = e.commit { o["commit"] = .string(c) }
    if let p = statusPage { o["statusPage"] = .string(p) }
    return .object(o)
  }

  static func alert(_ e: NotificationEvent, statusPage: String?) -> JSONValue {
    var labels: [String: JSONValue] = [
      "alertname": .string("Ytempire" + e.event.rawValue.prefix(1).uppercased() + e.event.rawValue.dropFirst()),
      "event": .string(e.event.rawValue), "condition": .string(e.condition), "source": "ytempire",
      "severity": .string(e.event == .failed || e.event == .stalled ? "critical" : "warning"),
    ]
    if e.resources.count == 1 {
      labels["resource_kind"] = .string(e.resources[0].kind)
      labels["resource"] = .string(e.resources[0].name)
    }
    var annotations: [String: JSONValue] = ["summary": .string(e.summary)]
    let details = e.resources.prefix(maxSubjects).map { "\($0.kind)/\($0.name)" + ($0.message.map { ": \($0)" } ?? "") }
    if !details.isEmpty { annotations["description"] = .string(details.joined(separator: "\n")) }
    if let r = e.revision { annotations["revision"] = .string(r) }
    var o: [String: JSONValue] = [
      "labels": .object(labels), "annotations": .object(annotations), "startsAt": .string(time(e.time)),
      // Resolved by Alertmanager an hour later unless sent again.
      "endsAt": .string(time(e.time.addingTimeInterval(3600))),
    ]
    if let p = statusPage { o["generatorURL"] = .string(p) }
    return .object(o)
  }

  /// The text of a chat message: the summary, then one line per resource (at most 20), cut to the chat limit.
  static func chatText(_ e: NotificationEvent, escape: (String) -> String, statusPage: String?) -> String {
    var lines = ["ytempire \(e.event.rawValue): \(escape(e.summary))"]
    for s in e.resources.prefix(maxSubjects) {
      lines.append("• \(escape(s.kind))/\(escape(s.name))" + (s.message.map { ": " + escape($0) } ?? ""))
    }
    if e.resources.count > maxSubjects { lines.append("… and \(e.resources.count - maxSubjects) more") }
    if let p = statusPage { lines.append(p) }
    let text = lines.joined(separator: "\n")
    return text.count > chatLimit ? String(text.prefix(chatLimit)) + "…" : text
  }

  /// Slack reads `<…>` as links and mentions and `&` as an entity: all three are escaped
  /// (https://api.slack.com/reference/surfaces/formatting#escaping), so no text from a
  /// repository becomes a link or a ping.
  static func slackEscape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
  }

  static func time(_ d: Date) -> String { d.formatted(isoFormat) }
  static let isoFormat = Date.ISO8601FormatStyle()

  // Sorted keys: the signature is checked against exactly these bytes.
  static func json(_ o: [String: JSONValue]) -> [UInt8] { json(.object(o)) }
  static func json(_ v: JSONValue) -> [UInt8] { v.canonicalBytes }
}
