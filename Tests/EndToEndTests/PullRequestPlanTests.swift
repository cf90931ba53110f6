import Foundation
import Sandbox
import Service
import TestSupport
import Testing

/// `serve` plans pull requests (DESIGN A10 "Events"): a GitHub `pull_request` webhook → the head
/// is fetched as refs/pull/N/head, planned from stored observations, and posted as one comment
/// that later pushes edit; nothing is applied and no quota is spent.
@Suite("serve: pull-request plans", .serialized)
struct PullRequestPlanTests {
  static func prBody(number: Int, sha: String, action: String, fork: Bool = false) -> String {
    let head = fork ? "someone/empire-config" : "acme/empire-config"
    return #"""
      {"action":"\#(action)","number":\#(number),"pull_request":{"head":{"sha":"\#(sha)","ref":"feature","repo":{"full_name":"\#(head)"}},"base":{"ref":"main","repo":{"full_name":"acme/empire-config"}}},"repository":{"full_name":"acme/empire-config"}}
      """#
  }

  /// Commits `description` for science-simplified on a branch and pushes it as refs/pull/N/head.
  static func pushPullRequest(_ e: Empire, number: Int, description: String) throws -> String {
    try e.repo.git("checkout", "-q", "-B", "pr-\(number)")
    let text = try e.channelFile("science-simplified").replacingOccurrences(of: ServeTests.original, with: description)
    let sha = try e.commit("pull request \(number)", ["channels/science-simplified.yaml": text])
    try e.repo.git("push", "-q", "-f", "origin", "HEAD:refs/pull/\(number)/head")
    try e.repo.git("checkout", "-q", "main")
    return sha
  }

  static func comments(_ e: Empire, _ number: Int) async throws -> [[String: Any]] {
    let (_, body) = try await e.admin("GET", "/notifications")
    let github = (body as? [String: Any])?["github"] as? [String: Any]
    return ((github?["comments"] as? [String: Any])?["acme/empire-config#\(number)"] as? [[String: Any]]) ?? []
  }

  static func planStatuses(_ e: Empire) async throws -> [[String: Any]] {
    let (_, body) = try await e.admin("GET", "/notifications")
    let github = (body as? [String: Any])?["github"] as? [String: Any]
    return ((github?["statuses"] as? [[String: Any]]) ?? []).filter { $0["context"] as? String == "ytempire/plan" }
  }

  @Test("a pull request's plan is one comment, edited on the next push; no unit is spent and nothing is applied")
  func commentedAndEdited() async throws {
    try await Empire.with { e in
      let s = try Served(e, interval: "1h")
      try e.writeConfig(
        e.configText + """
          notifications:
            - {name: commits, type: github, endpoint: "\(e.sandbox.baseURL)/github", repository: acme/empire-config, token: {value: "\(SandboxCredentials.githubToken)"}}

          """)
      let (p, port) = try await s.start()
      try await s.eventually("the first revision applied") {
        try await e.description(ofChannel: "science-simplified") == ServeTests.original
      }
      try await s.eventually("the first reconcile finished") { s.log().contains("reconciled:") }
      let units = e.sandbox.youtubeQuotaUsed
      let youtubeCalls = e.sandbox.callCounts.filter { $0.key.hasPrefix("youtube") || $0.key.hasPrefix("oauth") }

      func send(_ body: String, delivery: String) async throws {
        let sig = WebhookGate.githubSignature(secret: Array(Served.webhookSecret.utf8), body: Array(body.utf8))
        let r = try await s.http(
          port, "POST", "/hooks/github",
          headers: ["X-Hub-Signature-256": sig, "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": delivery], body: body)
        #expect(r.0 == 202, "\(r.1)")
      }

      let first = try Self.pushPullRequest(e, number: 7, description: "Proposed in pull request seven.")
      try await send(Self.prBody(number: 7, sha: first, action: "opened"), delivery: "pr-1")
      try await s.eventually("the plan comment posted") { try await Self.comments(e, 7).count == 1 }
      var comment = try #require(try await Self.comments(e, 7).first)
      var text = try #require(comment["body"] as? String)
      // The marker opens it; the revision planned is the pull request's head, not main.
      #expect(text.hasPrefix("<!-- ytempire-plan -->\n### ytempire plan for `refs/pull/7/head@sha1:\(first)`"), "\(text.prefix(200))")
      #expect(text.contains("Channel/science-simplified"), "\(text)")
      #expect(text.contains("Proposed in pull request seven."), "\(text)")
      try await s.eventually("the plan status set") { try await Self.planStatuses(e).count == 1 }
      #expect(try await Self.planStatuses(e).first?["sha"] as? String == first)

      // A second push edits the same comment.
      let second = try Self.pushPullRequest(e, number: 7, description: "Revised in a second push.")
      try await send(Self.prBody(number: 7, sha: second, action: "synchronize"), delivery: "pr-2")
      try await s.eventually("the comment edited") {
        (try await Self.comments(e, 7).first?["body"] as? String)?.contains("Revised in a second push.") == true
      }
      #expect(try await Self.comments(e, 7).count == 1)
      comment = try #require(try await Self.comments(e, 7).first)
      text = try #require(comment["body"] as? String)
      #expect(!text.contains("Proposed in pull request seven."))
      try await s.eventually("the second plan status set") { try await Self.planStatuses(e).count == 2 }

      // From a fork: planned the same way (its own comment), never applied.
      let fork = try Self.pushPullRequest(e, number: 8, description: "From a fork.")
      try await send(Self.prBody(number: 8, sha: fork, action: "opened", fork: true), delivery: "pr-3")
      try await s.eventually("the fork's plan comment posted") { try await Self.comments(e, 8).count == 1 }
      #expect((try await Self.comments(e, 8).first?["body"] as? String)?.contains("comes from a fork") == true)

      // Nothing applied, nothing observed on YouTube.
      #expect(try await e.description(ofChannel: "science-simplified") == ServeTests.original)
      #expect(e.sandbox.youtubeQuotaUsed == units)
      #expect(e.sandbox.callCounts.filter { $0.key.hasPrefix("youtube") || $0.key.hasPrefix("oauth") } == youtubeCalls)
      // ytempire/apply pending and success for the first apply, then one delivery per plan (comment and status).
      let metrics = try await s.http(port, "GET", "/metrics")
      let delivered = metrics.1.split(separator: "\n").first {
        $0.hasPrefix("ytempire_notifications_total{") && $0.contains("sink=\"commits\"") && $0.contains("result=\"delivered\"")
      }
      #expect(delivered?.hasSuffix(" 5") == true, "\(metrics.1.split(separator: "\n").filter { $0.contains("notifications") })")
      #expect(try await s.stop(p) == 0)
      #expect(!s.log().contains(SandboxCredentials.githubToken))
    }
  }
}
