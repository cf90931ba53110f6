import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Resilience
import TestSupport
import Testing

@testable import PrometheusDriver

/// Retries of calls to Prometheus kept short, so an unreachable server fails fast.
let prometheusLimit = """
  apiVersion: ytempire.io/v1
  kind: RateLimit
  metadata:
    name: prometheus-api
  spec:
    service: prometheus
    retry: {maxRetries: 1, initialDelay: 10ms, maxDelay: 10ms}
  ---

  """

/// A second rule file Prometheus loads, which ytempire never writes; it even has a rule with
/// an owned rule's name.
let otherFileText = """
  # Written by hand: ytempire must never touch this file.
  groups:
    - name: other
      rules:
        - alert: quota-usage-warning
          expr: vector(1) < 0
          labels: {severity: info}

  """

/// The real Engine, real libcurl and the real Prometheus (Debian's package) on 127.0.0.1.
final class EngineRig: Sendable {
  let dir = tempDir()
  let rulesFile: String
  let otherFile: String
  let prom: PrometheusServer
  let store: SQLiteStateStore
  let driver: PrometheusDriver
  let http = CurlHTTPClient()

  init() throws {
    rulesFile = dir + "/ytempire.yml"
    otherFile = dir + "/other.yml"
    writeText(rulesFile, foreignGroup)
    writeText(otherFile, otherFileText)
    prom = try PrometheusServer.start(ruleFiles: [rulesFile, otherFile])
    store = try SQLiteStateStore(stateDir: dir + "/state")
    driver = PrometheusDriver(config: PrometheusDriverConfig(endpoint: prom.url, rulesFile: rulesFile, promtool: "/usr/bin/promtool"))
  }

  func engine(_ refresh: RefreshMode = .changed, driver: PrometheusDriver? = nil) -> Engine {
    var o = EngineOptions()
    o.refresh = refresh
    return Engine(drivers: [driver ?? self.driver], store: store, transport: http, options: o)
  }

  func plan(_ resources: [Resource], _ refresh: RefreshMode = .changed, driver: PrometheusDriver? = nil) async throws -> Plan {
    try await engine(refresh, driver: driver).plan(resources, revision: "main@sha1:test")
  }

  func apply(_ plan: Plan, _ resources: [Resource], driver: PrometheusDriver? = nil) async throws -> ApplyReport {
    try await engine(.changed, driver: driver).apply(plan, desired: resources)
  }

  /// What Prometheus has loaded: `group@file` → the groups' rules (name → rule JSON).
  func loaded() throws -> [String: [String: JSONValue]] {
    guard let r = prom.get("/api/v1/rules"), r.status == 200 else { throw RigError(message: "GET /api/v1/rules failed") }
    let json = try JSONValue.parse(Array(r.body.utf8))
    var out: [String: [String: JSONValue]] = [:]
    for g in json["data"]?["groups"]?.array ?? [] {
      let key =
        "\(g["name"]?.string ?? "")@\((g["file"]?.string ?? "") == rulesFile ? "rules" : (g["file"]?.string == otherFile ? "other" : "?"))"
      var rules: [String: JSONValue] = [:]
      for rule in g["rules"]?.array ?? [] { rules[rule["name"]?.string ?? ""] = rule }
      out[key] = rules
    }
    return out
  }

  deinit {
    prom.stop()
    try? FileManager.default.removeItem(atPath: dir)
  }
}

@Suite("PrometheusDriver through the Engine, real libcurl, the real Prometheus", .enabled(if: PrometheusServer.isAvailable))
struct PrometheusEngineTests {
  @Test("converge from empty, keep foreign groups and files, no perpetual diff; a one-field change is one action of two calls")
  func convergeAndChange() async throws {
    let rig = try EngineRig()
    let resources = decode(prometheusLimit + threeMonitors)
    let plan = try await rig.plan(resources)
    #expect(
      plan.actions.map { "\($0.action.resource.name):\($0.action.operation.rawValue)" }
        == ["high-api-latency:create", "quota-usage-warning:create", "workflow-failure-rate:create"])
    #expect(plan.observation.calls.isEmpty)
    let report = try await rig.apply(plan, resources)
    #expect(report.failed == 0, "\(report.outcomes.compactMap(\.message))")
    for o in report.outcomes {
      #expect(o.calls.map(\.call.name) == ["prometheus.reload", "prometheus.rules.list"])
      #expect(o.calls.allSatisfy { $0.ok && $0.status == 200 })
    }
    var loaded = try rig.loaded()
    #expect(Set(loaded["ytempire@rules"]?.keys ?? [:].keys) == ["high-api-latency", "quota-usage-warning", "workflow-failure-rate"])
    let rule = loaded["ytempire@rules"]?["workflow-failure-rate"]
    #expect(rule?["duration"]?.double == 5400)
    #expect(rule?["labels"] == ["severity": "critical", "team": "platform"])
    #expect(rule?["health"]?.string != "err")
    #expect(loaded["team-other@rules"]?.keys.sorted() == ["DiskFull", "job:up:sum"])
    #expect(loaded["other@other"]?.keys.sorted() == ["quota-usage-warning"])
    #expect(readText(rig.otherFile) == otherFileText)

    // Apply, then plan twice (from the stored state, and observing everything again): nothing.
    #expect(try await rig.plan(resources).actions.isEmpty)
    let full = try await rig.plan(resources, .all)
    #expect(full.actions.isEmpty)
    #expect(full.resources.allSatisfy { $0.driftedFields.isEmpty && $0.observationError == nil })

    // One field: one update, its two calls.
    let changed = decode(
      prometheusLimit + threeMonitors.replacingOccurrences(of: "summary: High API latency", with: "summary: API latency is high"))
    let plan2 = try await rig.plan(changed)
    #expect(plan2.actions.count == 1)
    let a = try #require(plan2.actions.first?.action)
    #expect(a.operation == .update && a.resource.name == "high-api-latency")
    #expect(a.changes == [FieldChange(path: "annotations.summary", old: "High API latency", new: "API latency is high")])
    #expect(a.calls.map(\.name) == ["prometheus.reload", "prometheus.rules.list"])
    let r2 = try await rig.apply(plan2, changed)
    #expect(r2.succeeded == 1 && r2.failed == 0)
    #expect(r2.outcomes.first?.calls.map(\.call.name) == ["prometheus.reload", "prometheus.rules.list"])
    loaded = try rig.loaded()
    #expect(loaded["ytempire@rules"]?["high-api-latency"]?["annotations"]?["summary"] == "API latency is high")
    #expect(try await rig.plan(changed, .all).actions.isEmpty)
    #expect(readText(rig.otherFile) == otherFileText)
  }

  @Test("drift: a hand edit is corrected, or with ytempire.io/drift: report only reported")
  func drift() async throws {
    let rig = try EngineRig()
    let yaml =
      prometheusLimit
      + monitorYAML("reported", summary: "Reported only", annotations: "ytempire.io/drift: report")
      + monitorYAML("corrected", summary: "Corrected")
    let resources = decode(yaml)
    let first = try await rig.apply(try await rig.plan(resources), resources)
    #expect(first.succeeded == 2)
    let edited = readText(rig.rulesFile)!
      .replacingOccurrences(of: "summary: Reported only", with: "summary: Edited by hand")
      .replacingOccurrences(of: "summary: Corrected", with: "summary: Edited by hand too")
    writeText(rig.rulesFile, edited)
    let plan = try await rig.plan(resources, .all)
    #expect(plan.actions.map(\.action.resource.name) == ["corrected"])
    #expect(plan.actions.first?.fromGit == false)
    let reported = plan.resources.first { $0.id.name == "reported" }
    #expect(reported?.driftReportOnly == true)
    #expect(reported?.driftedFields == ["annotations.summary"])
    #expect(plan.resources.first { $0.id.name == "corrected" }?.driftedFields == ["annotations.summary"])
    let report = try await rig.apply(plan, resources)
    #expect(report.succeeded == 1)
    let text = readText(rig.rulesFile)!
    #expect(text.contains("summary: Corrected"))
    #expect(text.contains("summary: Edited by hand\n"))
    #expect(try rig.loaded()["ytempire@rules"]?["corrected"]?["annotations"]?["summary"] == "Corrected")
  }

  @Test("prune deletes only owned rules: the same alert name in another file and the foreign group stay")
  func prune() async throws {
    let rig = try EngineRig()
    let all = decode(prometheusLimit + threeMonitors)
    #expect(try await rig.apply(try await rig.plan(all), all).succeeded == 3)
    let fewer = all.filter { $0.name != "quota-usage-warning" }
    let plan = try await rig.plan(fewer)
    #expect(plan.actions.map { "\($0.action.resource.name):\($0.action.operation.rawValue)" } == ["quota-usage-warning:delete"])
    let report = try await rig.apply(plan, fewer)
    #expect(report.succeeded == 1, "\(report.outcomes.compactMap(\.message))")
    let loaded = try rig.loaded()
    #expect(loaded["ytempire@rules"]?.keys.sorted() == ["high-api-latency", "workflow-failure-rate"])
    #expect(loaded["other@other"]?.keys.sorted() == ["quota-usage-warning"])
    #expect(loaded["team-other@rules"]?.keys.sorted() == ["DiskFull", "job:up:sum"])
    #expect(readText(rig.otherFile) == otherFileText)
    #expect(try await rig.plan(fewer, .all).actions.isEmpty)
  }

  @Test("errors: a rule promtool rejects leaves the old file and the loaded rules; Prometheus unreachable restores the file")
  func errors() async throws {
    let rig = try EngineRig()
    let one = decode(prometheusLimit + monitorYAML("fine"))
    #expect(try await rig.apply(try await rig.plan(one), one).succeeded == 1)
    let before = readText(rig.rulesFile)

    let broken = decode(prometheusLimit + monitorYAML("fine") + monitorYAML("broken", expr: "sum(rate(x[5m])) by"))
    let report = try await rig.apply(try await rig.plan(broken), broken)
    #expect(report.failed == 1)
    let message = report.outcomes.first?.message ?? ""
    #expect(message.contains("promtool check rules refused the new rule file, which did not replace the old one"), "\(message)")
    #expect(message.contains("parse error"))
    #expect(report.outcomes.first?.calls.isEmpty == true)
    #expect(readText(rig.rulesFile) == before)
    #expect(try rig.loaded()["ytempire@rules"]?.keys.sorted() == ["fine"])

    // Prometheus unreachable (nothing listens on the port): the file goes back as it was.
    let port = try Processes.freePort()
    let away = PrometheusDriver(config: PrometheusDriverConfig(endpoint: "http://127.0.0.1:\(port)", rulesFile: rig.rulesFile))
    let changed = decode(prometheusLimit + monitorYAML("fine", summary: "Changed"))
    let plan = try await rig.plan(changed, driver: away)
    #expect(plan.actions.count == 1)
    let r2 = try await rig.apply(plan, changed, driver: away)
    #expect(r2.failed == 1)
    let m2 = r2.outcomes.first?.message ?? ""
    #expect(m2.contains("Prometheus at http://127.0.0.1:\(port) is unreachable"), "\(m2)")
    #expect(m2.contains("the previous rule file was restored"))
    #expect(readText(rig.rulesFile) == before)
    // Reachable again: the same change goes through.
    let r3 = try await rig.apply(try await rig.plan(changed, .all), changed)
    #expect(r3.succeeded == 1, "\(r3.outcomes.compactMap(\.message))")
    #expect(try rig.loaded()["ytempire@rules"]?["fine"]?["annotations"]?["summary"] == "Changed")
  }

  @Test(
    "a misconfigured Prometheus: lifecycle API disabled, or the rule file not in rule_files — the file is restored, the message says what to fix"
  )
  func misconfigured() async throws {
    let dir = tempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let rulesFile = dir + "/ytempire.yml"
    let otherFile = dir + "/other.yml"
    writeText(rulesFile, foreignGroup)
    writeText(otherFile, otherFileText)
    let resources = decode(prometheusLimit + monitorYAML("fine"))
    let store = try SQLiteStateStore(stateDir: dir + "/state")

    let noLifecycle = try PrometheusServer.start(ruleFiles: [rulesFile], lifecycle: false)
    defer { noLifecycle.stop() }
    let d1 = PrometheusDriver(config: PrometheusDriverConfig(endpoint: noLifecycle.url, rulesFile: rulesFile))
    let e1 = Engine(drivers: [d1], store: store, transport: CurlHTTPClient())
    let r1 = try await e1.apply(try await e1.plan(resources, revision: "r"), desired: resources)
    #expect(r1.failed == 1)
    let m1 = r1.outcomes.first?.message ?? ""
    #expect(m1.contains("POST /-/reload failed with HTTP 403"), "\(m1)")
    #expect(m1.contains("--web.enable-lifecycle"))
    #expect(m1.contains("the previous rule file was restored"))
    #expect(readText(rulesFile) == foreignGroup)
    noLifecycle.stop()

    // Prometheus loads only the other file: the reload works, the verification notices.
    let elsewhere = try PrometheusServer.start(ruleFiles: [otherFile])
    defer { elsewhere.stop() }
    let d2 = PrometheusDriver(config: PrometheusDriverConfig(endpoint: elsewhere.url, rulesFile: rulesFile))
    let e2 = Engine(drivers: [d2], store: store, transport: CurlHTTPClient())
    let r2 = try await e2.apply(try await e2.plan(resources, revision: "r"), desired: resources)
    #expect(r2.failed == 1)
    let m2 = r2.outcomes.first?.message ?? ""
    #expect(m2.contains("shows no group ytempire from \(rulesFile): is the file named in rule_files"), "\(m2)")
    #expect(m2.contains("the previous rule file was restored and Prometheus reloaded it"))
    #expect(readText(rulesFile) == foreignGroup)
    #expect(r2.outcomes.first?.calls.map(\.call.name) == ["prometheus.reload", "prometheus.rules.list", "prometheus.reload"])
  }

  @Test(
    "first run: no rule file yet — apply creates it and Prometheus loads it; pruning the last rule leaves an empty file Prometheus accepts")
  func fromNoFileToEmpty() async throws {
    let dir = tempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let rulesFile = dir + "/ytempire.yml"
    let prom = try PrometheusServer.start(ruleFiles: [rulesFile])
    defer { prom.stop() }
    let driver = PrometheusDriver(config: PrometheusDriverConfig(endpoint: prom.url, rulesFile: rulesFile))
    let engine = Engine(drivers: [driver], store: try SQLiteStateStore(stateDir: dir + "/state"), transport: CurlHTTPClient())
    let one = decode(prometheusLimit + monitorYAML("first"))
    let r1 = try await engine.apply(try await engine.plan(one, revision: "r1"), desired: one)
    #expect(r1.succeeded == 1, "\(r1.outcomes.compactMap(\.message))")
    let rules = try JSONValue.parse(Array((prom.get("/api/v1/rules")?.body ?? "").utf8))
    #expect(rules["data"]?["groups"]?.array?.map { $0["name"] } == ["ytempire"])
    #expect(rules["data"]?["groups"]?.array?.first?["rules"]?.array?.first?["name"] == "first")

    let none = decode(prometheusLimit)
    let plan = try await engine.plan(none, revision: "r2")
    #expect(plan.actions.map(\.action.operation) == [.delete])
    let r2 = try await engine.apply(plan, desired: none)
    #expect(r2.succeeded == 1, "\(r2.outcomes.compactMap(\.message))")
    #expect(readText(rulesFile) == "groups: []\n")
    let after = try JSONValue.parse(Array((prom.get("/api/v1/rules")?.body ?? "").utf8))
    #expect(after["data"]?["groups"]?.array == [])
    #expect(try await engine.plan(none, revision: "r2").actions.isEmpty)
  }
}
