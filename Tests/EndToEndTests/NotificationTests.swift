import Crypto
import Foundation
import Sandbox
import TestSupport
import Testing

/// `notifications:` through the built binary against the sandbox's receivers (Slack, GitHub,
/// and `/hooks/…`, which records what it is sent).
@Suite("end to end: notifications")
struct NotificationTests {
  static let hookSecret = "hook-secret-canary-7f3a9c"

  static func sinks(_ base: String, pager: String = "pager", timeout: String = "10s") -> String {
    """
    serve: {externalURL: "https://ytempire.example"}
    notifications:
      - {name: pager, type: webhook, url: "\(base)/hooks/\(pager)", secret: {value: "\(hookSecret)"}, timeout: \(timeout)}
      - {name: ops, type: slack, url: {value: "\(base)/slack/services/\(SandboxCredentials.slackHookPath)"}}
      - {name: commits, type: github, endpoint: "\(base)/github", repository: acme/empire-config, token: {value: "\(SandboxCredentials.githubToken)"}}

    """
  }

  static func with(pager: String = "pager", timeout: String = "10s", faults: String? = nil, _ body: (Empire) async throws -> Void)
    async throws
  {
    try await Empire.with(faults: faults) { e in
      try e.writeConfig(e.configText + sinks(e.sandbox.baseURL, pager: pager, timeout: timeout))
      try await body(e)
    }
  }

  struct Received {
    var hooks: [[String: Any]]
    var statuses: [[String: Any]]
    var slack: [[String: Any]]
  }

  static func received(_ e: Empire) async throws -> Received {
    let (code, body) = try await e.admin("GET", "/notifications")
    guard code == 200, let o = body as? [String: Any] else { throw E2EFailure("GET /notifications: \(code)") }
    return Received(
      hooks: o["hooks"] as? [[String: Any]] ?? [],
      statuses: (o["github"] as? [String: Any])?["statuses"] as? [[String: Any]] ?? [],
      slack: o["slack"] as? [[String: Any]] ?? [])
  }

  static func hmac(_ body: String) -> String {
    HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: SymmetricKey(data: Array(hookSecret.utf8)))
      .map { String(format: "%02x", $0) }.joined()
  }

  @Test("an apply sends one signed `applied` event, a Slack message and the commit status pending → success; a second apply sends nothing")
  func appliedOnce() async throws {
    try await Self.with { e in
      let applied = try await e.apply()
      let sha = try e.repo.head()
      var got = try await Self.received(e)
      func events(_ hooks: [[String: Any]]) -> [String] { hooks.map { ($0["headers"] as? [String: String])?["x-ytempire-event"] ?? "?" } }
      // The example's Vault keys are past their maxAge in the sandbox: rotationDue comes too.
      #expect(events(got.hooks).sorted() == ["applied", "rotationDue"], "\(events(got.hooks))")
      let hook = try #require(got.hooks.first { ($0["headers"] as? [String: String])?["x-ytempire-event"] == "applied" })
      let headers = try #require(hook["headers"] as? [String: String])
      let body = try #require(hook["body"] as? String)
      #expect(headers["x-ytempire-event"] == "applied")
      #expect(headers["x-ytempire-signature"] == "sha256=" + Self.hmac(body), "the signature is the HMAC of the exact body")
      #expect(headers["x-ytempire-delivery"]?.count == 32)
      let event = try E2E.object(body)
      #expect(event["event"] as? String == "applied")
      #expect(event["commit"] as? String == sha)
      #expect(event["revision"] as? String == "main@sha1:\(sha)")
      #expect(event["statusPage"] as? String == "https://ytempire.example")
      #expect((event["resources"] as? [[String: Any]])?.isEmpty == false)

      #expect(got.statuses.map { $0["state"] as? String } == ["pending", "success"], "\(got.statuses)")
      #expect(got.statuses.allSatisfy { $0["sha"] as? String == sha && $0["context"] as? String == "ytempire/apply" })
      #expect(got.statuses.last?["target_url"] as? String == "https://ytempire.example")
      #expect(got.slack.count == 2)
      #expect(got.slack.contains { ($0["text"] as? String)?.hasPrefix("ytempire applied:") == true }, "\(got.slack)")

      // Nothing changed: nothing to announce, and the commit already has its status.
      let again = try await e.apply()
      got = try await Self.received(e)
      #expect(got.hooks.count == 2 && got.statuses.count == 2 && got.slack.count == 2, "\(events(got.hooks)) \(got.statuses) \(got.slack)")

      // No secret of a sink in any output.
      for text in [applied.stdout, applied.stderr, again.stdout, again.stderr] {
        #expect(!text.contains(Self.hookSecret))
        #expect(!text.contains(SandboxCredentials.slackHookPath))
        #expect(!text.contains(SandboxCredentials.githubToken))
      }
    }
  }

  @Test("a commit that fails validation sends `stalled` once, not once per run; the next good commit clears it")
  func stalledOnce() async throws {
    try await Self.with { e in
      try await e.apply()
      try e.commit(
        "break a channel",
        ["channels/tech-daily.yaml": "apiVersion: ytempire.io/v1\nkind: Channel\nmetadata: {name: tech-daily}\nspec: {nope: 1}\n"])
      for _ in 0..<2 {
        let r = try await e.run(["apply", "--auto-approve"])
        #expect(r.status != 0, "\(r)")
      }
      var got = try await Self.received(e)
      let stalled = got.hooks.filter { ($0["headers"] as? [String: String])?["x-ytempire-event"] == "stalled" }
      #expect(stalled.count == 1, "\(got.hooks.map { ($0["headers"] as? [String: String])?["x-ytempire-event"] ?? "?" })")
      let event = try E2E.object(try #require(stalled.first?["body"] as? String))
      #expect((event["summary"] as? String)?.contains("tech-daily.yaml") == true, "\(event)")
      // A good commit clears the condition (and applies nothing: the channel is as before).
      try e.commit(
        "fix it", ["channels/tech-daily.yaml": try String(contentsOfFile: E2E.examples + "/channels/tech-daily.yaml", encoding: .utf8)])
      try await e.apply()
      try e.commit("break it again", ["channels/tech-daily.yaml": "kind: Channel\n"])
      _ = try await e.run(["apply", "--auto-approve"])
      got = try await Self.received(e)
      #expect(got.hooks.filter { ($0["headers"] as? [String: String])?["x-ytempire-event"] == "stalled" }.count == 2)
    }
  }

  @Test("serve: a commit that fails validation is announced as stalled once, not once per poll")
  func stalledOncePerCondition() async throws {
    try await Empire.with { e in
      let s = try Served(e, interval: "1s")
      try e.writeConfig(
        e.configText + """
          notifications:
            - {name: pager, type: webhook, url: "\(e.sandbox.baseURL)/hooks/pager", secret: {value: "\(Self.hookSecret)"}}

          """)
      let (p, _) = try await s.start()
      try await s.eventually("the first reconcile finished") { s.log().contains("reconciled:") }
      try s.push(
        "break a channel", ["channels/tech-daily.yaml": "apiVersion: ytempire.io/v1\nkind: Channel\nmetadata: {name: tech-daily}\n"])
      // Several polls meet the broken revision.
      try await s.eventually("three polls skipped the broken revision") {
        s.log().components(separatedBy: "reconcile skipped").count > 3
      }
      let got = try await Self.received(e)
      let stalled = got.hooks.filter { ($0["headers"] as? [String: String])?["x-ytempire-event"] == "stalled" }
      #expect(stalled.count == 1, "\(got.hooks.count) deliveries")
      #expect((stalled.first?["body"] as? String)?.contains("\"actor\":\"serve@") == true)
      #expect(try await s.stop(p) == 0)
      #expect(!s.log().contains(Self.hookSecret))
    }
  }

  @Test("a sink that answers 500, then 429, gets the event after retries; a sink that never answers is given up at its timeout")
  func retriesAndSilence() async throws {
    try await Self.with(faults: "hooks:POST /hooks/pager#1=error:1:500:boom;hooks:POST /hooks/pager#1=throttle:1:1") { e in
      try await e.apply()
      let got = try await Self.received(e)
      // applied and rotationDue, each received once: the first delivery met the 500 and the 429.
      #expect(got.hooks.count == 2, "\(got.hooks)")
      #expect(e.sandbox.callCounts["hooks POST /hooks/pager"] == 4, "\(e.sandbox.callCounts)")
    }
    // A receiver that holds the request for five seconds: the apply ends once the 1s timeout has passed.
    try await Self.with(pager: "slow", timeout: "1s", faults: "hooks:POST /hooks/slow=latency:5s") { e in
      let r = try await e.apply()
      #expect(r.stderr.contains("notification applied to pager failed"), "\(r)")
      #expect(r.stderr.contains("deadline of 1s"), "\(r)")
      #expect(!r.stderr.contains(Self.hookSecret))
    }
  }
}
