import Foundation
import Testing
import YAMLKit

@testable import EmpireModel

/// `notifications:` and `serve.externalURL` in ytempire.yaml (docs/notifications.md).
@Suite struct NotificationsConfigTests {
  typealias C = ReconcilerConfigTests

  @Test("every sink type loads with its defaults; secrets are references, listed with the configuration's other secrets")
  func sinksLoad() throws {
    let (config, diags) = C.load(
      C.minimal(
        """
        serve: {externalURL: "https://ytempire.example/"}
        notifications:
          - {name: ops, type: slack, url: {env: SLACK_WEBHOOK_URL}, events: [failed, stalled, failed]}
          - {name: pager, type: webhook, url: https://hooks.example/ytempire, secret: {env: HOOK_SECRET}, timeout: 3s, rateLimit: {perMinute: 10}}
          - {name: am, type: alertmanager, url: http://127.0.0.1:9093, resources: {kinds: [Channel], names: [tech-daily]}}
          - {name: commits, type: github, repository: acme/empire-config, token: {env: GITHUB_TOKEN}}
          - {name: mr, type: gitlab, endpoint: https://gitlab.example, project: group/sub/empire, token: {file: /etc/ytempire/gitlab}, events: [failed]}
          - {name: d, type: discord, url: {env: DISCORD_URL}}
          - {name: t, type: msteams, url: {env: TEAMS_URL}}
        """))
    #expect(C.errors(diags).isEmpty, "\(diags.map(\.rendered))")
    let c = try #require(config)
    #expect(c.serve.externalURL == "https://ytempire.example")
    #expect(c.notifications.map(\.name) == ["ops", "pager", "am", "commits", "mr", "d", "t"])
    let ops = c.notifications[0]
    #expect(ops.events == [.failed, .stalled])
    #expect(ops.secretURL?.source == .env("SLACK_WEBHOOK_URL"))
    #expect(ops.timeout == NotificationSink.defaultTimeout)
    let pager = c.notifications[1]
    #expect(pager.endpoint == "https://hooks.example/ytempire")
    #expect(pager.timeout == .seconds(3))
    #expect(pager.perMinute == 10)
    #expect(pager.events == NotificationSink.defaultEvents)
    #expect(c.notifications[2].selector == .init(kinds: [.channel], names: ["tech-daily"]))
    let gh = c.notifications[3]
    #expect(gh.endpoint == NotificationSink.githubEndpoint)
    #expect(gh.repository == "acme/empire-config")
    #expect(gh.events == [.applied, .failed])
    #expect(c.notifications[4].repository == "group/sub/empire")
    #expect(c.notifications[4].events == [.failed])
    let paths = c.allSecretRefs.map(\.path)
    for p in ["notifications[0].url", "notifications[1].secret", "notifications[3].token", "notifications[4].token"] {
      #expect(paths.contains(p), "\(paths)")
    }
  }

  @Test("a chat webhook URL written in the file is refused without being repeated; the sink's location is given")
  func chatURLIsASecret() throws {
    let url = "https://hooks.slack.com/services/T000/B000/very-secret-path"
    let (config, diags) = C.load(C.minimal("notifications:\n  - {name: ops, type: slack, url: \(url)}"))
    #expect(config == nil)
    let e = try #require(C.errors(diags).first)
    #expect(e.message.contains("notifications[0].url of a slack sink is a secret"))
    #expect(!e.message.contains("very-secret-path"))
    #expect(e.line == 7)
  }

  @Test("wrong sinks are located errors: unknown type and event (did-you-mean), no repository, another type's fields, duplicates")
  func badSinks() throws {
    let (config, diags) = C.load(
      C.minimal(
        """
        notifications:
          - {name: a, type: slak, url: {env: X}}
          - {name: b, type: webhook, url: https://h.example/x, events: [aplied]}
          - {name: c, type: github, token: {env: T}}
          - {name: d, type: github, repository: acme/x, token: {env: T}, events: [drifted]}
          - {name: e, type: webhook, url: https://h.example/x, token: {env: T}}
          - {name: b, type: webhook, url: ftp://h.example/x}
          - {name: f, type: webhook, url: https://h.example/x, events: []}
          - {name: g, type: gitlab, project: "a b", token: {env: T}}
          - {name: h, type: webhook, url: https://h.example/x, timeout: 10m}
        """))
    #expect(config == nil)
    let messages = C.errors(diags).map(\.message)
    func has(_ s: String) -> Bool { messages.contains { $0.contains(s) } }
    #expect(has("'slak'") && has("slack"), "\(messages)")
    #expect(has("'aplied'") && has("applied"), "\(messages)")
    #expect(has("repository"), "\(messages)")
    #expect(has("from applied and failed only; 'drifted'"), "\(messages)")
    #expect(has("notifications[4].token is not used by a webhook sink"), "\(messages)")
    #expect(has("is not a valid URL"), "\(messages)")
    #expect(has("notifications[6].events is empty"), "\(messages)")
    #expect(has("a GitLab project id"), "\(messages)")
    #expect(has("between 100ms and 5m"), "\(messages)")
    #expect(messages.contains { $0.contains("'b'") }, "duplicate name: \(messages)")
    #expect(C.errors(diags).allSatisfy { $0.line > 0 && $0.column > 0 })
  }
}
