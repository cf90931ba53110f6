import Foundation
import Testing

@testable import Service

/// `pull_request` (GitHub) and `Merge Request Hook` (GitLab) deliveries: what is planned, from where.
@Suite struct PullRequestWebhookTests {
  let secret = Array("pr-secret".utf8)
  let sha = String(repeating: "ab", count: 20)

  func github(_ body: String, delivery: String = UUID().uuidString) -> WebhookVerdict {
    let gate = WebhookGate(githubSecret: secret, gitlabToken: nil, ref: "main")
    let b = Array(body.utf8)
    return gate.github(
      headers: [
        "x-hub-signature-256": WebhookGate.githubSignature(secret: secret, body: b), "x-github-event": "pull_request",
        "x-github-delivery": delivery,
      ], body: b)
  }

  func pr(_ action: String, number: String = "12", sha: String? = nil, head: String = "acme/empire", base: String = "acme/empire") -> String
  {
    #"{"action":"\#(action)","number":\#(number),"pull_request":{"head":{"sha":"\#(sha ?? self.sha)","repo":{"full_name":"\#(head)"}},"base":{"repo":{"full_name":"\#(base)"}}}}"#
  }

  @Test("opened, synchronize and reopened are planned at refs/pull/N/head; closed and others are accepted and ignored")
  func githubActions() {
    for action in ["opened", "synchronize", "reopened"] {
      #expect(
        github(pr(action))
          == .pullRequest(
            PullRequestEvent(forge: .github, number: 12, head: sha, ref: "refs/pull/12/head", fromFork: false, action: action)))
    }
    #expect(github(pr("opened")).status == 202)
    guard case .accepted = github(pr("closed")) else {
      Issue.record("closed is not planned")
      return
    }
    guard case .pullRequest(let fork) = github(pr("opened", head: "mallory/empire")) else {
      Issue.record("a fork's pull request is planned")
      return
    }
    #expect(fork.fromFork)
  }

  @Test("numbers and shas from outside are range-checked: no trap, a 400")
  func githubBadInput() {
    for n in ["0", "-1", "99999999999999999999999", "2147483648", "\"7\""] {
      #expect(github(pr("opened", number: n)).status == 400, "number \(n)")
    }
    for s in ["abc", String(repeating: "g", count: 40), String(repeating: "a", count: 41)] {
      #expect(github(pr("opened", sha: s)).status == 400, "sha \(s)")
    }
    #expect(github("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[").status == 400)
  }

  @Test("GitLab merge request hooks: open, update and reopen are planned at refs/merge-requests/N/head; a replay is refused")
  func gitlab() {
    let gate = WebhookGate(githubSecret: nil, gitlabToken: Array("gl-token".utf8), ref: "main")
    func mr(_ action: String, source: Int = 5, target: Int = 5) -> [UInt8] {
      Array(
        #"{"object_kind":"merge_request","object_attributes":{"iid":3,"action":"\#(action)","last_commit":{"id":"\#(sha)"},"source_project_id":\#(source),"target_project_id":\#(target)}}"#
          .utf8)
    }
    let h = ["x-gitlab-token": "gl-token", "x-gitlab-event": "Merge Request Hook"]
    #expect(
      gate.gitlab(headers: h, body: mr("update"))
        == .pullRequest(
          PullRequestEvent(forge: .gitlab, number: 3, head: sha, ref: "refs/merge-requests/3/head", fromFork: false, action: "update")))
    #expect(gate.gitlab(headers: h, body: mr("update")).status == 409)
    guard case .pullRequest(let fork) = gate.gitlab(headers: h, body: mr("open", source: 9)) else {
      Issue.record("a fork's merge request is planned")
      return
    }
    #expect(fork.fromFork)
    guard case .accepted = gate.gitlab(headers: h, body: mr("merge")) else {
      Issue.record("merge is not planned")
      return
    }
    #expect(gate.gitlab(headers: ["x-gitlab-token": "wrong", "x-gitlab-event": "Merge Request Hook"], body: mr("open")).status == 401)
  }
}
