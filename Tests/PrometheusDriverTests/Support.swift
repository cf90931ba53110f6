import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Resilience
import Synchronization
import TestSupport
import Testing

@testable import PrometheusDriver

/// One Monitor document.
func monitorYAML(
  _ name: String, expr: String = "up == 0", for duration: String? = "5m", severity: String = "warning",
  summary: String = "Something is down", description: String? = nil, labels: String = "{team: platform}",
  annotations: String? = nil
) -> String {
  var s = """
    apiVersion: ytempire.io/v1
    kind: Monitor
    metadata:
      name: \(name)

    """
  if let annotations { s += "  annotations: {\(annotations)}\n" }
  s += "spec:\n  expr: '\(expr.replacingOccurrences(of: "'", with: "''"))'\n"
  if let duration { s += "  for: \(duration)\n" }
  s += "  severity: \(severity)\n  summary: \(summary)\n"
  if let description { s += "  description: \(description)\n" }
  s += "  labels: \(labels)\n---\n"
  return s
}

/// The three monitors of the tests (like examples/empire/monitors).
let threeMonitors =
  monitorYAML(
    "high-api-latency", expr: "avg_over_time(ytempire_api_latency_seconds[5m]) > 1", summary: "High API latency",
    description: "Average latency above 1 second.")
  + monitorYAML(
    "quota-usage-warning", expr: #"avg_over_time(ytempire_quota_used_units{service="youtube"}[1h]) > 8000"#, for: nil,
    summary: "YouTube quota usage above 8000 units", labels: "{team: platform, service: youtube}")
  + monitorYAML(
    "workflow-failure-rate", expr: "sum(rate(ytempire_workflow_failures_total[10m])) > 0.1", for: "1h30m", severity: "critical",
    summary: "Workflows are failing")

func tempDir() -> String {
  let d = NSTemporaryDirectory() + "ytempire-prom-test-" + UUID().uuidString.prefix(8)
  try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
  return d
}

func readText(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }
func writeText(_ path: String, _ text: String) { try! Data(text.utf8).write(to: URL(fileURLWithPath: path)) }

/// A foreign group and a top-level layout the driver must keep.
let foreignGroup = """
  groups:
    - name: team-other
      interval: 30s
      limit: 10
      rules:
        - alert: DiskFull
          expr: node_filesystem_avail_bytes / node_filesystem_size_bytes < 0.05
          for: 10m
          labels:
            severity: critical
            tier: "1"
          annotations:
            summary: "Disk almost full: {{ $labels.instance }}"
        - record: job:up:sum
          expr: sum by (job) (up)

  """

/// A fake Prometheus behind `ServiceClient`: `POST /-/reload` loads the rule file's ytempire
/// group as it is on disk, `GET /api/v1/rules` shows it; answers can be scripted once per path.
final class FakePrometheus: ServiceClient {
  struct Seen: Sendable, Equatable {
    var method: String
    var path: String
    var operation: String
  }
  enum Script: Sendable {
    case response(HTTPResponse)
    case failure(ServiceFailure)
    case other(RigError)
  }
  struct State {
    var seen: [Seen] = []
    var loaded: [JSONValue] = []
    var loadedAny = false
    var scripted: [String: [Script]] = [:]
    /// alert → (health, lastError) shown instead of `unknown`.
    var health: [String: (String, String)] = [:]
  }
  let state = Mutex(State())
  let rulesFile: String

  init(rulesFile: String) { self.rulesFile = rulesFile }

  var seen: [Seen] { state.withLock { $0.seen } }
  func count(_ path: String) -> Int { seen.filter { $0.path == path }.count }
  func clearSeen() { state.withLock { $0.seen = [] } }
  func script(_ path: String, _ s: Script) { state.withLock { $0.scripted[path, default: []].append(s) } }
  func setHealth(_ alert: String, _ health: String, _ lastError: String) { state.withLock { $0.health[alert] = (health, lastError) } }

  func send(_ request: HTTPRequest, call: PlannedCall) async throws -> HTTPResponse {
    let path = URLComponents(string: request.url)?.path ?? request.url
    #expect(call.service == "prometheus")
    let scripted: Script? = state.withLock { s in
      s.seen.append(Seen(method: request.method, path: path, operation: call.operation))
      guard var list = s.scripted[path], !list.isEmpty else { return nil }
      let first = list.removeFirst()
      s.scripted[path] = list
      return first
    }
    switch scripted {
    case .response(let r)?: return r
    case .failure(let f)?: throw f
    case .other(let e)?: throw e
    case nil: break
    }
    switch (request.method, path) {
    case ("POST", "/-/reload"):
      let bytes = (try? RuleFileIO.read(rulesFile)) ?? nil
      let file = try bytes.map { try RuleFile.parse($0, display: rulesFile) } ?? .empty
      state.withLock {
        $0.loaded = file.ownedRules.filter { RuleFile.alertName($0) != nil }.map(RuleFile.canonical)
        $0.loadedAny = true
      }
      return HTTPResponse(status: 200)
    case ("GET", "/api/v1/rules"):
      let (loaded, health) = state.withLock { ($0.loaded, $0.health) }
      var groups: [JSONValue] = []
      if !loaded.isEmpty {
        let rules: [JSONValue] = loaded.map { r in
          let alert = r["alert"]!.string!
          let seconds = r["for"]?.string.flatMap(PromDuration.parse).map { Double($0.milliseconds) / 1000 } ?? 0
          var o: [String: JSONValue] = [
            "name": .string(alert), "query": r["expr"] ?? "", "duration": .double(seconds),
            "labels": r["labels"] ?? [:], "annotations": r["annotations"] ?? [:],
            "health": .string(health[alert]?.0 ?? "unknown"), "type": "alerting",
          ]
          if let e = health[alert]?.1, !e.isEmpty { o["lastError"] = .string(e) }
          return .object(o)
        }
        groups.append(["name": "ytempire", "file": .string(rulesFile), "rules": .array(rules)])
      }
      let body: JSONValue = ["status": "success", "data": ["groups": .array(groups)]]
      return HTTPResponse(status: 200, headers: ["Content-Type": "application/json"], body: body.canonicalBytes)
    default:
      return HTTPResponse(status: 404, body: Array("404 page not found".utf8))
    }
  }
}

/// The driver over the fake, with an engine-like loop (observe → diff → apply every action).
final class FakeRig: Sendable {
  let dir = tempDir()
  let rulesFile: String
  let fake: FakePrometheus
  let driver: PrometheusDriver
  let resources: Mutex<[Resource]>

  init(_ yaml: String, promtool: String? = nil) {
    rulesFile = dir + "/ytempire.yml"
    fake = FakePrometheus(rulesFile: rulesFile)
    driver = PrometheusDriver(
      config: PrometheusDriverConfig(endpoint: "http://prometheus.test:9090", rulesFile: rulesFile, promtool: promtool))
    resources = Mutex(decode(yaml))
  }

  deinit { try? FileManager.default.removeItem(atPath: dir) }

  var index: DesiredIndex { DesiredIndex(resources.withLock { $0 }) }
  var context: DriverContext {
    let fake = self.fake
    let index = self.index
    return DriverContext(desired: index, pricing: Pricing(index), cache: MemoryCache(), client: { _ in fake })
  }

  /// Targets for the desired Monitors, plus `orphans` (names no longer desired).
  func targets(orphans: [String] = []) -> [ObserveTarget] {
    let index = self.index
    return index.all(.monitor).map { ObserveTarget(id: ResourceID($0), desired: driver.desired($0, in: index), external: [:]) }
      + orphans.map { ObserveTarget(id: ResourceID(.monitor, $0), desired: nil, external: [:]) }
  }

  func observe(_ targets: [ObserveTarget]) async throws -> [ResourceID: JSONValue] {
    var out: [ResourceID: JSONValue] = [:]
    for (id, o) in try await driver.observe(targets, context: context) {
      guard case .observed(let s, _) = o else { throw RigError(message: "\(id): \(o)") }
      out[id] = s
    }
    return out
  }

  func diff(_ targets: [ObserveTarget], _ observed: [ResourceID: JSONValue]) -> [Action] {
    let pricing = Pricing(index)
    return targets.flatMap { t in
      driver.diff(DiffInput(id: t.id, desired: t.desired, observed: observed[t.id] ?? .null, external: [:], pricing: pricing))
    }
  }

  /// Plans from a fresh observation.
  func plan(orphans: [String] = []) async throws -> [Action] {
    let t = targets(orphans: orphans)
    return diff(t, try await observe(t))
  }

  @discardableResult
  func apply(_ actions: [Action]) async throws -> [ResourceID: JSONValue] {
    var states: [ResourceID: JSONValue] = [:]
    for a in actions {
      let out = try await driver.apply(a, observed: .null, external: [:], context: context)
      states[a.resource] = out.observed
    }
    return states
  }
}

struct RigError: Error, CustomStringConvertible {
  var message: String
  var description: String { message }
}

extension Array where Element == Action {
  var keys: [String] { map { "\($0.resource.name):\($0.operation.rawValue)" } }
}
