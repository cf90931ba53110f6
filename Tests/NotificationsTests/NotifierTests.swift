import Crypto
import CurlHTTP
import EmpireModel
import Foundation
import Resilience
import Synchronization
import Testing
import YAMLKit

@testable import Notifications

/// Answers from a script (then 200), recording every request.
final class ScriptedTransport: HTTPTransport {
  let script: Mutex<[HTTPResponse]>
  let seen = Mutex<[HTTPRequest]>([])
  init(_ script: [HTTPResponse] = []) { self.script = Mutex(script) }
  func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
    seen.withLock { $0.append(request) }
    return script.withLock { $0.isEmpty ? HTTPResponse(status: 200) : $0.removeFirst() }
  }
  var requests: [HTTPRequest] { seen.withLock { $0 } }
}

/// Accepts the request and never answers: waits until cancelled.
final class SilentSink: HTTPTransport {
  let started = Atomic<Int>(0)
  func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
    started.add(1, ordering: .sequentiallyConsistent)
    try await Task.sleep(for: .seconds(86_400))
    return HTTPResponse(status: 200)
  }
}

final class MemoryBox: NotificationMemory {
  let m = Mutex<[String: String]>([:])
  func load() -> [String: String] { m.withLock { $0 } }
  func save(_ sent: [String: String]) { m.withLock { $0 = sent } }
}

func sink(
  _ name: String, _ type: NotificationSink.SinkType, events: [NotificationSink.Event]? = nil, timeout: ModelDuration = .seconds(10),
  selector: NotificationSink.Selector? = nil, repository: String? = nil
) -> NotificationSink {
  NotificationSink(
    name: name, type: type, secretURL: nil, endpoint: "http://127.0.0.1:9/\(name)", secret: nil, token: nil, repository: repository,
    events: events ?? (type.isForge ? NotificationSink.forgeEvents : NotificationSink.defaultEvents), selector: selector,
    perMinute: 6000, timeout: timeout, mark: SourceMark(file: "ytempire.yaml", line: 1, column: 1))
}

func resolved(_ s: NotificationSink, key: String? = nil, extraSecrets: [String] = []) -> ResolvedSink {
  ResolvedSink(config: s, url: s.endpoint ?? "", key: key.map { Array($0.utf8) }, secrets: (key.map { [$0] } ?? []) + extraSecrets)
}

func event(_ e: NotificationSink.Event = .failed, state: String = "s1", resources: [NotificationEvent.Subject] = []) -> NotificationEvent {
  NotificationEvent(
    event: e, time: Date(timeIntervalSince1970: 1_780_000_000), revision: "main@sha1:abc", commit: nil, summary: "something happened",
    resources: resources, state: state, actor: "apply@test")
}

@Suite struct PayloadTests {
  @Test("a webhook delivery is JSON signed with HMAC-SHA256 of its exact body, with a stable delivery id")
  func webhookSigned() throws {
    let s = sink("pager", .webhook)
    let e = event(.applied, resources: [.init(kind: "Channel", name: "tech-daily", message: "update branding")])
    let req = try #require(Payloads.request(e, sink: resolved(s, key: "hook-secret-123"), statusPage: "https://ytempire.example"))
    let body = try #require(req.body)
    let expected = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array("hook-secret-123".utf8)))
      .map { String(format: "%02x", $0) }.joined()
    #expect(req.headers["X-Ytempire-Signature"] == "sha256=" + expected)
    #expect(req.headers["X-Ytempire-Delivery"] == e.deliveryID(sink: "pager"))
    #expect(req.headers["X-Ytempire-Event"] == "applied")
    #expect(req.maxRedirects == 0)
    let json = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
    #expect(json["event"] as? String == "applied")
    #expect(json["revision"] as? String == "main@sha1:abc")
    #expect(json["statusPage"] as? String == "https://ytempire.example")
    #expect((json["resources"] as? [[String: Any]])?.first?["name"] as? String == "tech-daily")
    // The same event to another sink has another id; the same to this one, the same id.
    #expect(e.deliveryID(sink: "pager") == event(.applied).deliveryID(sink: "pager"))
    #expect(e.deliveryID(sink: "other") != e.deliveryID(sink: "pager"))
  }

  @Test("chat texts cannot carry a link, an entity or a mention from a repository, and secrets are masked everywhere")
  func chatTextsAreInert() throws {
    let e = event(
      .failed,
      resources: [.init(kind: "Channel", name: "x", message: "<https://evil.example|click> & @everyone token=canary-SECRET-42")])
    let slack = try #require(Payloads.request(e, sink: resolved(sink("ops", .slack), extraSecrets: ["canary-SECRET-42"]), statusPage: nil))
    let text = String(decoding: slack.body ?? [], as: UTF8.self)
    #expect(text.contains("&lt;https://evil.example|click&gt; &amp;"))
    #expect(!text.contains("<https://evil"))
    #expect(!text.contains("canary-SECRET-42"))
    let discord = try #require(
      Payloads.request(e, sink: resolved(sink("d", .discord), extraSecrets: ["canary-SECRET-42"]), statusPage: nil))
    let d = try #require(try JSONSerialization.jsonObject(with: Data(discord.body ?? [])) as? [String: Any])
    #expect((d["allowed_mentions"] as? [String: Any])?["parse"] as? [Any] != nil)
    #expect(((d["allowed_mentions"] as? [String: Any])?["parse"] as? [Any])?.isEmpty == true)
    #expect(!(d["content"] as? String ?? "").contains("canary-SECRET-42"))
    let teams = try #require(Payloads.request(e, sink: resolved(sink("t", .msteams), extraSecrets: ["canary-SECRET-42"]), statusPage: nil))
    #expect(String(decoding: teams.body ?? [], as: UTF8.self).contains("AdaptiveCard"))
    let am = try #require(Payloads.request(e, sink: resolved(sink("am", .alertmanager)), statusPage: nil))
    #expect(am.url.hasSuffix("/am/api/v2/alerts"))
    let alerts = try #require(try JSONSerialization.jsonObject(with: Data(am.body ?? [])) as? [[String: Any]])
    #expect((alerts.first?["labels"] as? [String: String])?["alertname"] == "YtempireFailed")
    #expect(alerts.first?["startsAt"] as? String == "2026-05-28T20:26:40Z")
  }

  @Test("a chat message longer than the chat limit is cut, with at most 20 resources listed")
  func chatLimit() throws {
    let many = (0..<500).map {
      NotificationEvent.Subject(kind: "Channel", name: "channel-\($0)", message: String(repeating: "x", count: 50))
    }
    let req = try #require(Payloads.request(event(.drifted, resources: many), sink: resolved(sink("d", .discord)), statusPage: nil))
    let d = try #require(try JSONSerialization.jsonObject(with: Data(req.body ?? [])) as? [String: Any])
    let content = try #require(d["content"] as? String)
    #expect(content.count <= Payloads.chatLimit + 1)
    #expect(!content.contains("channel-21"))
  }

  @Test("commit statuses: GitHub's JSON with a Bearer token, GitLab's query with PRIVATE-TOKEN; the description fits 140 characters")
  func commitStatuses() throws {
    let sha = String(repeating: "a1", count: 20)
    let long = String(repeating: "d", count: 300)
    let gh = sink("gh", .github, repository: "acme/empire-config")
    let req = try #require(
      Payloads.request(CommitStatus(commit: sha, state: .success, description: long), sink: resolved(gh, key: "ghp_token")))
    #expect(req.url == "http://127.0.0.1:9/gh/repos/acme/empire-config/statuses/\(sha)")
    #expect(req.headers["Authorization"] == "Bearer ghp_token")
    #expect(req.headers["X-GitHub-Api-Version"] == "2022-11-28")
    let j = try #require(try JSONSerialization.jsonObject(with: Data(req.body ?? [])) as? [String: Any])
    #expect(j["state"] as? String == "success")
    #expect(j["context"] as? String == "ytempire/apply")
    #expect((j["description"] as? String)?.count == 140)
    let gl = sink("gl", .gitlab, repository: "group/empire")
    let glr = try #require(
      Payloads.request(CommitStatus(commit: sha, state: .pending, description: "applying 2 changes"), sink: resolved(gl, key: "glpat")))
    #expect(glr.url.contains("/api/v4/projects/group%2Fempire/statuses/\(sha)?state=running&name=ytempire%2Fapply"))
    #expect(glr.headers["PRIVATE-TOKEN"] == "glpat")
    // Not a commit id: nothing is sent.
    #expect(Payloads.request(CommitStatus(commit: "main", state: .success, description: ""), sink: resolved(gh, key: "t")) == nil)
  }
}

@Suite struct NotifierTests {
  func notifier(
    _ sinks: [NotificationSink], transport: any HTTPTransport, clock: any ResilienceClock = SystemClock(), memory: MemoryBox = MemoryBox(),
    key: String? = nil
  ) -> Notifier {
    Notifier(
      sinks: sinks, resolve: { resolved($0, key: key) }, transport: transport, clock: clock, memory: memory, random: { 0 })
  }

  @Test("one delivery per condition state: a repeat is not sent, a new state is, and a cleared condition is sent again")
  func deduplicated() async throws {
    let t = ScriptedTransport()
    let memory = MemoryBox()
    let n = notifier([sink("pager", .webhook)], transport: t, memory: memory)
    n.post(event(.stalled, state: "a"))
    n.post(event(.stalled, state: "a"))
    #expect(await n.flush(within: .seconds(60)))
    #expect(t.requests.count == 1)
    n.post(event(.stalled, state: "b"))
    #expect(await n.flush(within: .seconds(60)))
    #expect(t.requests.count == 2)
    n.clear("stalled")
    n.post(event(.stalled, state: "b"))
    #expect(await n.flush(within: .seconds(60)))
    #expect(t.requests.count == 3)
    // Another notifier on the same memory (the next `apply`) does not repeat it.
    let t2 = ScriptedTransport()
    let again = notifier([sink("pager", .webhook)], transport: t2, memory: memory)
    again.post(event(.stalled, state: "b"))
    #expect(await again.flush(within: .seconds(60)))
    #expect(t2.requests.isEmpty)
    #expect(n.counts["pager"]?[.delivered] == 3)
  }

  @Test("a sink that answers 500, then 429, gets the event on the third try; a 400 is not retried and is sent again next time")
  func retries() async throws {
    let t = ScriptedTransport([
      HTTPResponse(status: 500, body: Array("{\"error\":\"boom\"}".utf8)),
      HTTPResponse(status: 429, headers: ["Retry-After": "0"]),
    ])
    let n = notifier([sink("pager", .webhook)], transport: t)
    n.post(event(.failed, state: "x"))
    #expect(await n.flush(within: .seconds(60)))
    #expect(t.requests.count == 3)
    #expect(n.counts["pager"]?[.delivered] == 1)

    let bad = ScriptedTransport([HTTPResponse(status: 400, body: Array("invalid_payload".utf8))])
    let m = notifier([sink("ops", .webhook)], transport: bad)
    m.post(event(.failed, state: "y"))
    #expect(await m.flush(within: .seconds(60)))
    #expect(bad.requests.count == 1)
    #expect(m.counts["ops"]?[.failed] == 1)
    // Not delivered: the condition was not told, so the next poll tries again.
    m.post(event(.failed, state: "y"))
    #expect(await m.flush(within: .seconds(60)))
    #expect(bad.requests.count == 2)
    #expect(m.counts["ops"]?[.delivered] == 1)
  }

  @Test("a sink that never answers is given up at its timeout, and post never waits for it")
  func silentSinkBounded() async throws {
    let clock = ManualClock()
    let silent = SilentSink()
    let n = notifier([sink("slow", .webhook, timeout: .seconds(5))], transport: silent, clock: clock)
    n.post(event(.failed, state: "1"))
    n.post(event(.deferred, state: "1"))
    #expect(n.pending == 2)
    // The worker is waiting on the deadline (and the request); nothing else waits.
    await clock.waitForSleepers(1)
    clock.advance(by: .seconds(5))
    await clock.waitForSleepers(1)
    clock.advance(by: .seconds(5))
    #expect(await n.flush(within: .seconds(120)))
    #expect(n.counts["slow"]?[.failed] == 2)
    #expect(silent.started.load(ordering: .sequentiallyConsistent) == 2)
  }

  @Test("selectors pick resources; forge sinks take commit statuses only, each state of a commit once")
  func selectorsAndForges() async throws {
    let t = ScriptedTransport()
    let sinks = [
      sink("channels", .webhook, selector: .init(kinds: [.channel])),
      sink("only-failed", .webhook, events: [.failed]),
      sink("gh", .github, repository: "acme/empire"),
    ]
    let n = notifier(sinks, transport: t, key: "tok")
    n.post(event(.drifted, state: "d", resources: [.init(kind: "CDNZone", name: "main")]))
    n.post(event(.failed, state: "f", resources: [.init(kind: "Channel", name: "tech"), .init(kind: "CDNZone", name: "main")]))
    let sha = String(repeating: "b", count: 40)
    n.status(CommitStatus(commit: sha, state: .pending, description: "applying"))
    n.status(CommitStatus(commit: sha, state: .success, description: "2 applied"))
    n.status(CommitStatus(commit: sha, state: .success, description: "in sync: nothing to change"))
    #expect(await n.flush(within: .seconds(60)))
    let urls = t.requests.map(\.url)
    #expect(urls.filter { $0.hasSuffix("/channels") }.count == 1)  // the failed event, not the CDN drift
    #expect(urls.filter { $0.hasSuffix("/only-failed") }.count == 1)
    #expect(urls.filter { $0.contains("/statuses/") }.count == 2)
    let channelsBody = try #require(t.requests.first { $0.url.hasSuffix("/channels") }?.body)
    let j = try #require(try JSONSerialization.jsonObject(with: Data(channelsBody)) as? [String: Any])
    #expect((j["resources"] as? [[String: Any]])?.map { $0["kind"] as? String } == ["Channel"])
  }

  @Test("a sink whose credentials cannot be read fails its deliveries without a word of the secret")
  func unreadableCredentials() async throws {
    let t = ScriptedTransport()
    let logged = Mutex<[String]>([])
    struct Missing: Error, CustomStringConvertible { var description: String { "notifications.ops.url {env: SLACK_URL}: not set" } }
    let n = Notifier(
      sinks: [sink("ops", .slack)], resolve: { _ in throw Missing() }, transport: t, log: { m in logged.withLock { $0.append(m) } })
    n.post(event(.stalled, state: "1"))
    #expect(await n.flush(within: .seconds(60)))
    #expect(t.requests.isEmpty)
    #expect(n.counts["ops"]?[.failed] == 1)
    #expect(logged.withLock { $0 }.first?.contains("SLACK_URL") == true)
  }
}
