import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Resilience
import TestSupport
import Testing
import YAMLKit

@testable import PrometheusDriver

@Suite("PrometheusDriver over a fake Prometheus")
struct PrometheusDriverTests {
  @Test("the desired rule: alert from the name, expr, for, severity and labels, summary/description/runbook annotations")
  func desiredForm() {
    let rig = FakeRig(threeMonitors)
    let r = rig.index.resource(.monitor, "workflow-failure-rate")!
    #expect(
      rig.driver.desired(r, in: rig.index) == [
        "alert": "workflow-failure-rate",
        "expr": "sum(rate(ytempire_workflow_failures_total[10m])) > 0.1",
        "for": "1h30m",
        "labels": ["severity": "critical", "team": "platform"],
        "annotations": ["summary": "Workflows are failing"],
      ])
    let q = rig.driver.desired(rig.index.resource(.monitor, "quota-usage-warning")!, in: rig.index)
    #expect(q["for"] == nil)
    #expect(q["labels"] == ["severity": "warning", "team": "platform", "service": "youtube"])
    #expect(rig.driver.observationCalls(rig.targets(), pricing: Pricing(rig.index)).isEmpty)
  }

  @Test("create from an empty (missing) file: one create per Monitor, each a checked write, a reload and a verification")
  func createFromEmpty() async throws {
    let rig = FakeRig(threeMonitors)
    #expect(!FileManager.default.fileExists(atPath: rig.rulesFile))
    let actions = try await rig.plan()
    #expect(actions.keys == ["high-api-latency:create", "quota-usage-warning:create", "workflow-failure-rate:create"])
    for a in actions {
      #expect(a.calls.map(\.name) == ["prometheus.reload", "prometheus.rules.list"])
      #expect(a.units == 0)
      #expect(a.key == "rule")
    }
    #expect(
      actions[0].changes.map(\.path) == [
        "alert", "annotations.description", "annotations.summary", "expr", "for",
        "labels.severity", "labels.team",
      ])
    let states = try await rig.apply(actions)
    #expect(rig.fake.seen.map(\.operation) == Array(repeating: ["reload", "rules.list"], count: 3).flatMap { $0 })
    // The file: one group ytempire, rules by name, Prometheus durations.
    let text = readText(rig.rulesFile)!
    #expect(text.contains("- name: ytempire"))
    #expect(text.contains("for: 1h30m"))
    #expect(text.contains("alert: high-api-latency"))
    // The states apply returned equal what observation reads back: nothing left to do.
    let again = try await rig.observe(rig.targets())
    for (id, s) in again { #expect(s == states[id], "\(id)") }
    #expect(try await rig.plan().isEmpty)
  }

  @Test("one changed field is one update with that change and exactly its two calls")
  func oneFieldChange() async throws {
    let rig = FakeRig(threeMonitors)
    try await rig.apply(try await rig.plan())
    rig.fake.clearSeen()
    let changed = threeMonitors.replacingOccurrences(of: "summary: High API latency", with: "summary: API latency is high")
    rig.resources.withLock { $0 = decode(changed) }
    let actions = try await rig.plan()
    #expect(actions.keys == ["high-api-latency:update"])
    #expect(actions[0].changes == [FieldChange(path: "annotations.summary", old: "High API latency", new: "API latency is high")])
    try await rig.apply(actions)
    #expect(
      rig.fake.seen == [
        .init(method: "POST", path: "/-/reload", operation: "reload"),
        .init(method: "GET", path: "/api/v1/rules", operation: "rules.list"),
      ])
    #expect(try await rig.plan().isEmpty)
  }

  @Test("foreign groups keep their content; another rule file in the directory is untouched")
  func foreignSurvive() async throws {
    let rig = FakeRig(threeMonitors)
    writeText(rig.rulesFile, foreignGroup)
    let other = rig.dir + "/other.yml"
    let otherText = "# hand-written\ngroups:\n- name: other\n  rules:\n  - alert: X\n    expr: up == 0\n"
    writeText(other, otherText)
    let before = try RuleFile.parse(Array(foreignGroup.utf8), display: "f")
    #expect(chmod(rig.rulesFile, 0o640) == 0)
    try await rig.apply(try await rig.plan())
    // The replaced file keeps the old one's mode.
    let mode = (try FileManager.default.attributesOfItem(atPath: rig.rulesFile)[.posixPermissions] as? NSNumber)?.intValue
    #expect(mode == 0o640)
    let after = try RuleFile.parse(Array(readText(rig.rulesFile)!.utf8), display: "f")
    guard case .foreign(let g0) = before.groups[0], case .foreign(let g1) = after.groups[0] else {
      Issue.record("the foreign group is not first any more")
      return
    }
    #expect(g0 == g1)
    #expect(after.groups.count == 2)
    #expect(after.ownedAlertNames == ["high-api-latency", "quota-usage-warning", "workflow-failure-rate"])
    // Values keep their types: the limit a number, the quoted label a string.
    let text = readText(rig.rulesFile)!
    #expect(text.contains("limit: 10\n"))
    #expect(text.contains("tier: \"1\""))
    #expect(readText(other) == otherText)
    // promtool agrees the rewritten file is a rule file.
    let out = try await Promtool.run(["promtool", "check", "rules", rig.rulesFile], timeout: 30)
    #expect(out.status == 0, "\(out.output)")
  }

  @Test("only the ytempire group's lines change: comments and layout of the rest of the file stay byte for byte")
  func commentsKept() async throws {
    let head = """
      # Rules of the platform team. Keep this comment.
      groups:
          # first foreign group
          - name: first   # trailing comment
            rules:
                - alert: A
                  expr: up == 0   # the simplest alert


      """
    let oldOwned = """
          - name: ytempire
            rules:
              - alert: stale
                expr: vector(1)

      """
    let tail = """
          # comment about the last group
          - name: last
            rules: [{alert: B, expr: up == 1}]
      # the end

      """
    let rig = FakeRig(monitorYAML("a") + monitorYAML("stale", expr: "vector(1)"))
    writeText(rig.rulesFile, head + oldOwned + tail)
    try await rig.apply(try await rig.plan())
    var text = readText(rig.rulesFile)!
    #expect(text.hasPrefix(head), "\(text)")
    #expect(text.hasSuffix(tail), "\(text)")
    #expect(text.contains("    - name: ytempire\n      rules:\n      - alert: a\n"), "\(text)")
    #expect(try await rig.plan().isEmpty)
    // Removing every owned rule removes exactly the group's lines.
    rig.resources.withLock { $0 = [] }
    try await rig.apply(try await rig.plan(orphans: ["a", "stale"]))
    text = readText(rig.rulesFile)!
    #expect(text == head + tail, "\(text)")
    // Appending a new group after the last one keeps everything before it.
    rig.resources.withLock { $0 = decode(monitorYAML("a")) }
    try await rig.apply(try await rig.plan())
    text = readText(rig.rulesFile)!
    #expect(text.hasPrefix(head + tail), "\(text)")
    #expect(
      text.hasSuffix(
        "    - name: ytempire\n      rules:\n      - alert: a\n        expr: up == 0\n        for: 5m\n        labels:\n          severity: warning\n          team: platform\n        annotations:\n          summary: Something is down\n"
      ), "\(text)")
    let out = try await Promtool.run(["promtool", "check", "rules", rig.rulesFile], timeout: 30)
    #expect(out.status == 0, "\(out.output)")
  }

  @Test("prune: an owned rule whose Monitor left is deleted; the last one takes the group with it; foreign rules stay")
  func prune() async throws {
    let rig = FakeRig(threeMonitors)
    writeText(rig.rulesFile, foreignGroup)
    try await rig.apply(try await rig.plan())
    let remaining = monitorYAML(
      "high-api-latency", expr: "avg_over_time(ytempire_api_latency_seconds[5m]) > 1", summary: "High API latency",
      description: "Average latency above 1 second.")
    rig.resources.withLock { $0 = decode(remaining) }
    let actions = try await rig.plan(orphans: ["quota-usage-warning", "workflow-failure-rate", "never-existed"])
    #expect(actions.keys == ["quota-usage-warning:delete", "workflow-failure-rate:delete"])
    #expect(actions[0].payload == ["alert": "quota-usage-warning"])
    let states = try await rig.apply(actions)
    #expect(states[ResourceID(.monitor, "workflow-failure-rate")] == .null)
    let file = try RuleFile.parse(Array(readText(rig.rulesFile)!.utf8), display: "f")
    #expect(file.ownedAlertNames == ["high-api-latency"])
    // The last one goes: the group goes, the foreign group stays.
    rig.resources.withLock { $0 = [] }
    let last = try await rig.plan(orphans: ["high-api-latency"])
    #expect(last.keys == ["high-api-latency:delete"])
    try await rig.apply(last)
    let text = readText(rig.rulesFile)!
    #expect(!text.contains("ytempire"))
    #expect(text.contains("DiskFull"))
  }

  @Test("drift: a hand edit of an owned rule shows as the changed fields, and apply restores it")
  func drift() async throws {
    let rig = FakeRig(threeMonitors)
    try await rig.apply(try await rig.plan())
    var text = readText(rig.rulesFile)!
    text = text.replacingOccurrences(of: "for: 1h30m", with: "for: 2h").replacingOccurrences(
      of: "severity: critical", with: "severity: info")
    writeText(rig.rulesFile, text)
    let actions = try await rig.plan()
    #expect(actions.keys == ["workflow-failure-rate:update"])
    #expect(
      actions[0].changes == [
        FieldChange(path: "for", old: "2h", new: "1h30m"),
        FieldChange(path: "labels.severity", old: "info", new: "critical"),
      ])
    try await rig.apply(actions)
    #expect(readText(rig.rulesFile)!.contains("for: 1h30m"))
    #expect(try await rig.plan().isEmpty)
  }

  @Test("durations written by hand in Prometheus's other spellings are the same duration: no perpetual diff")
  func durationCanonical() async throws {
    let rig = FakeRig(monitorYAML("a", for: "90s") + monitorYAML("b", for: "7d") + monitorYAML("c", for: "0s"))
    writeText(
      rig.rulesFile,
      """
      groups:
      - name: ytempire
        rules:
        - {alert: a, expr: up == 0, for: 1m30s, labels: {severity: warning, team: platform}, annotations: {summary: Something is down}}
        - {alert: b, expr: up == 0, for: 1w, labels: {severity: warning, team: platform}, annotations: {summary: Something is down}}
        - {alert: c, expr: up == 0, for: 0s, labels: {severity: warning, team: platform}, annotations: {summary: Something is down}}

      """)
    #expect(try await rig.plan().isEmpty)
    #expect(PromDuration.parse("1y2w") == ModelDuration(milliseconds: 32_745_600_000))
    #expect(PromDuration.parse("5") == nil)
    #expect(PromDuration.parse("5m1h") == nil)
    #expect(PromDuration.parse("99999999999999999999d") == nil)
  }

  @Test("a rule promtool rejects never replaces the file, and the error carries promtool's words")
  func promtoolRejects() async throws {
    let rig = FakeRig(monitorYAML("broken", expr: "sum(rate(x[5m])) by"))
    writeText(rig.rulesFile, foreignGroup)
    let actions = try await rig.plan()
    let error = await #expect(throws: PrometheusError.self) { try await rig.apply(actions) }
    #expect(error?.reason == .promtoolRejected)
    #expect(error?.message.contains("parse error") == true, "\(String(describing: error))")
    #expect(error?.message.contains(rig.rulesFile) == true)
    #expect(error?.message.contains(".tmp") == false)
    #expect(readText(rig.rulesFile) == foreignGroup)
    #expect(rig.fake.seen.isEmpty)
    #expect(try FileManager.default.contentsOfDirectory(atPath: rig.dir) == ["ytempire.yml"])
  }

  @Test("a missing promtool is a clear error and nothing is written")
  func promtoolMissing() async throws {
    let rig = FakeRig(monitorYAML("a"), promtool: "/nonexistent/promtool")
    let error = await #expect(throws: PrometheusError.self) { try await rig.apply(try await rig.plan()) }
    #expect(error?.reason == .promtoolUnavailable)
    #expect(error?.message.contains("/nonexistent/promtool") == true)
    #expect(!FileManager.default.fileExists(atPath: rig.rulesFile))
  }

  @Test("a refused reload restores the old file, reloads it, and reports Prometheus's text")
  func reloadRefused() async throws {
    let rig = FakeRig(threeMonitors)
    writeText(rig.rulesFile, foreignGroup)
    rig.fake.script(
      "/-/reload", .response(HTTPResponse(status: 500, body: Array("failed to reload config: one or more errors occurred".utf8))))
    let actions = try await rig.plan()
    let error = await #expect(throws: PrometheusError.self) {
      try await rig.driver.apply(actions[0], observed: .null, external: [:], context: rig.context)
    }
    #expect(error?.reason == .reloadFailed)
    #expect(error?.status == 500)
    #expect(error?.message.contains("failed to reload config: one or more errors occurred") == true)
    #expect(
      error?.message.contains("the previous rule file was restored and Prometheus reloaded it") == true, "\(String(describing: error))")
    #expect(readText(rig.rulesFile) == foreignGroup)
    #expect(rig.fake.seen.map(\.operation) == ["reload", "reload"])
  }

  @Test("the lifecycle API disabled: the message says to start Prometheus with --web.enable-lifecycle")
  func lifecycleDisabled() async throws {
    let rig = FakeRig(monitorYAML("a"))
    rig.fake.script("/-/reload", .response(HTTPResponse(status: 403, body: Array("Lifecycle APIs are not enabled".utf8))))
    rig.fake.script("/-/reload", .response(HTTPResponse(status: 403, body: Array("Lifecycle APIs are not enabled".utf8))))
    let error = await #expect(throws: PrometheusError.self) { try await rig.apply(try await rig.plan()) }
    #expect(error?.message.contains("--web.enable-lifecycle") == true)
    #expect(error?.message.contains("the new rule file was removed (there was none before)") == true, "\(String(describing: error))")
    #expect(!FileManager.default.fileExists(atPath: rig.rulesFile))
  }

  @Test("a rule Prometheus reports unhealthy after the reload: restored, with its lastError")
  func unhealthy() async throws {
    let rig = FakeRig(monitorYAML("a"))
    try await rig.apply(try await rig.plan())
    let before = readText(rig.rulesFile)
    rig.fake.setHealth("b", "err", "many-to-many matching not allowed")
    rig.resources.withLock { $0 = decode(monitorYAML("a") + monitorYAML("b")) }
    let error = await #expect(throws: PrometheusError.self) { try await rig.apply(try await rig.plan()) }
    #expect(error?.reason == .verificationFailed)
    #expect(error?.message.contains("rule b has health err: many-to-many matching not allowed") == true, "\(String(describing: error))")
    #expect(readText(rig.rulesFile) == before)
  }

  @Test("Prometheus's JSON error body is the message")
  func jsonErrorBody() async throws {
    let rig = FakeRig(monitorYAML("a"))
    let body: JSONValue = ["status": "error", "errorType": "internal", "error": "rule manager is not ready"]
    rig.fake.script("/api/v1/rules", .response(HTTPResponse(status: 503, body: body.canonicalBytes)))
    let error = await #expect(throws: PrometheusError.self) { try await rig.apply(try await rig.plan()) }
    #expect(error?.status == 503)
    #expect(
      error?.message.contains("GET /api/v1/rules failed with HTTP 503: internal: rule manager is not ready") == true,
      "\(String(describing: error))")
    #expect(!FileManager.default.fileExists(atPath: rig.rulesFile))
  }

  @Test("Prometheus unreachable: the old file is restored, no second reload is tried, the error says unreachable")
  func unreachable() async throws {
    let rig = FakeRig(monitorYAML("a"))
    writeText(rig.rulesFile, foreignGroup)
    rig.fake.script(
      "/-/reload",
      .failure(
        ServiceFailure(
          service: "prometheus", category: .networkError, reason: "connectFailed",
          message: "Could not connect to server")))
    let error = await #expect(throws: PrometheusError.self) { try await rig.apply(try await rig.plan()) }
    #expect(error?.reason == .unreachable)
    #expect(error?.message.contains("Prometheus at http://prometheus.test:9090 is unreachable") == true, "\(String(describing: error))")
    #expect(error?.message.contains("the previous rule file was restored") == true)
    #expect(readText(rig.rulesFile) == foreignGroup)
    #expect(rig.fake.count("/-/reload") == 1)
  }

  @Test("an error that is not a call failure (an open breaker, cancellation) is passed on unchanged, the file restored")
  func otherErrorsPassThrough() async throws {
    let rig = FakeRig(monitorYAML("a"))
    writeText(rig.rulesFile, foreignGroup)
    rig.fake.script("/api/v1/rules", .other(RigError(message: "circuit open for prometheus")))
    let error = await #expect(throws: RigError.self) { try await rig.apply(try await rig.plan()) }
    #expect(error?.message == "circuit open for prometheus")
    #expect(readText(rig.rulesFile) == foreignGroup)
    #expect(rig.fake.seen.map(\.operation) == ["reload", "rules.list"])
  }

  @Test("the rule file must be a regular file: a FIFO, a directory and a symbolic link are refused without being read")
  func onlyRegularFiles() async throws {
    let rig = FakeRig(monitorYAML("a"))
    #expect(mkfifo(rig.rulesFile, 0o600) == 0)
    let out = try await rig.driver.observe(rig.targets(), context: rig.context)
    guard case .failed(let m)? = out.values.first else {
      Issue.record("observed a FIFO")
      return
    }
    #expect(m.contains("is a FIFO, not a regular file"))
    unlink(rig.rulesFile)
    writeText(rig.dir + "/elsewhere.yml", foreignGroup)
    #expect(symlink(rig.dir + "/elsewhere.yml", rig.rulesFile) == 0)
    let out2 = try await rig.driver.observe(rig.targets(), context: rig.context)
    guard case .failed(let m2)? = out2.values.first else {
      Issue.record("observed through a symlink")
      return
    }
    #expect(m2.contains("is a symbolic link (to \(rig.dir)/elsewhere.yml)"))
    let error = await #expect(throws: PrometheusError.self) {
      try await rig.driver.apply(
        Action(
          driver: "prometheus", resource: ResourceID(.monitor, "a"), operation: .delete, key: "rule",
          summary: "", changes: [], calls: [], payload: ["alert": "a"]),
        observed: .null, external: [:], context: rig.context)
    }
    #expect(error?.reason == .ruleFileUnusable)
    #expect(readText(rig.dir + "/elsewhere.yml") == foreignGroup)
    // Not YAML / not a rule file: clear, located errors.
    unlink(rig.rulesFile)
    writeText(rig.rulesFile, "groups: {a: 1}\n")
    let out3 = try await rig.driver.observe(rig.targets(), context: rig.context)
    guard case .failed(let m3)? = out3.values.first else {
      Issue.record("observed a bad file")
      return
    }
    #expect(m3.contains("`groups` in \(rig.rulesFile) is a mapping, not a sequence"))
    let relative = PrometheusDriver(config: .init(endpoint: "http://x", rulesFile: "rules.yml"))
    let out4 = try await relative.observe(rig.targets(), context: rig.context)
    guard case .failed(let m4)? = out4.values.first else {
      Issue.record("relative path accepted")
      return
    }
    #expect(m4.contains("must be an absolute path"))
  }

  @Test("concurrent actions of one run are serialised: every rule lands")
  func concurrentApplies() async throws {
    let names = (1...6).map { "m\($0)" }
    let rig = FakeRig(names.map { monitorYAML($0) }.joined())
    let actions = try await rig.plan()
    #expect(actions.count == 6)
    try await withThrowingTaskGroup(of: Void.self) { group in
      for a in actions {
        group.addTask { _ = try await rig.driver.apply(a, observed: .null, external: [:], context: rig.context) }
      }
      try await group.waitForAll()
    }
    let file = try RuleFile.parse(Array(readText(rig.rulesFile)!.utf8), display: "f")
    #expect(file.ownedAlertNames == names)
    #expect(try await rig.plan().isEmpty)
  }

  @Test("a malformed action is refused before anything is touched")
  func malformedAction() async throws {
    let rig = FakeRig(monitorYAML("a"))
    let bad = Action(
      driver: "prometheus", resource: ResourceID(.monitor, "a"), operation: .create, key: "rule", summary: "",
      changes: [], calls: [], payload: ["rule": ["alert": "other", "expr": "up"]])
    let error = await #expect(throws: PrometheusError.self) {
      try await rig.driver.apply(bad, observed: .null, external: [:], context: rig.context)
    }
    #expect(error?.reason == .malformedAction)
    #expect(!FileManager.default.fileExists(atPath: rig.rulesFile))
  }

  @Test("awkward strings (line breaks, quotes, ': ', ' #', numbers and booleans as text) round-trip: promtool accepts, no perpetual diff")
  func awkwardStrings() async throws {
    let yaml = """
      apiVersion: ytempire.io/v1
      kind: Monitor
      metadata:
        name: awkward
      spec:
        expr: |
          sum by (job) (rate(http_requests_total{path=~"/api/.*", code!="200"}[5m]))
            > 0.5 # trailing comment inside PromQL
        for: 90s
        severity: info
        summary: "Errors: {{ $labels.job }} is at #1"
        description: "'quoted' and \\"double\\" and: colons"
        labels: {answer: "true", tier: "1", empty_ish: "null"}

      """
    let rig = FakeRig(yaml)
    try await rig.apply(try await rig.plan())
    #expect(try await rig.plan().isEmpty)
    let out = try await Promtool.run(["promtool", "check", "rules", rig.rulesFile], timeout: 30)
    #expect(out.status == 0, "\(out.output)")
    let state = try await rig.observe(rig.targets()).values.first
    #expect(state?["labels"] == ["answer": "true", "tier": "1", "empty_ish": "null", "severity": "info"])
    #expect(state?["expr"]?.string?.contains("\n  > 0.5 # trailing comment") == true)
    #expect(state?["for"] == "1m30s")
  }

  @Test("the example repository's monitors render to a rule file promtool accepts, as docs/drivers/prometheus.md shows it")
  func exampleMonitors() async throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let dir = root.appendingPathComponent("examples/empire/monitors").path
    let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }.sorted()
    #expect(files.count == 3)
    let yaml = try files.map { try String(contentsOfFile: dir + "/" + $0, encoding: .utf8) + "\n---\n" }.joined()
    let rig = FakeRig(yaml)
    try await rig.apply(try await rig.plan())
    let out = try await Promtool.run(["promtool", "check", "rules", rig.rulesFile], timeout: 30)
    #expect(out.status == 0, "\(out.output)")
    #expect(out.output.contains("SUCCESS: 3 rules found"))
    #expect(
      readText(rig.rulesFile)!.hasPrefix(
        """
        groups:
        - name: ytempire
          rules:
          - alert: high-api-latency
            expr: avg_over_time(ytempire_api_latency_seconds[5m]) > 1
            for: 5m
            labels:
              severity: warning
              team: platform
            annotations:
              description: The average API latency over the last 5 minutes is above 1 second.
              runbook_url: https://ytempire.com/runbooks/high-api-latency
              summary: High API latency
          - alert: quota-usage-warning

        """))
  }
}
