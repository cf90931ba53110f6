import DriverKit
import Testing

@testable import PrometheusDriver

/// Which alerting rules `ytempire import` can write as Monitors, and why the others cannot be.
@Suite("Prometheus import: rules as Monitors")
struct PrometheusImportTests {
  @Test("an alerting rule the model can express becomes a Monitor spec with severity, summary, description and runbook")
  func expressible() throws {
    let rule: JSONValue = [
      "alert": "high-api-latency", "expr": "avg_over_time(x[5m]) > 1", "for": "5m",
      "labels": ["severity": "warning", "team": "platform"],
      "annotations": ["summary": "High", "description": "Long", "runbook_url": "https://r.example/x"],
    ]
    let spec = try PrometheusDriver.monitorSpec(rule).get()
    #expect(spec["severity"] == "warning" && spec["summary"] == "High" && spec["runbook"] == "https://r.example/x")
    #expect(spec["labels"] == ["team": "platform"] && spec["for"] == "5m" && spec["description"] == "Long")
  }

  static let unexpressible: [(JSONValue, String)] = [
    (["record": "job:rate5m", "expr": "x"], "a recording rule"),
    (["alert": "HighLatency", "expr": "x", "labels": ["severity": "warning"], "annotations": ["summary": "s"]], "not a resource name"),
    (["alert": "a", "expr": "x", "labels": ["severity": "page"], "annotations": ["summary": "s"]], "not info, warning or critical"),
    (["alert": "a", "expr": "x", "labels": ["severity": "info"]], "no summary annotation"),
    (["alert": "a", "expr": "x", "labels": ["severity": "info"], "annotations": ["summary": "s", "dashboard": "d"]], "dashboard"),
    (
      ["alert": "a", "expr": "x", "keep_firing_for": "5m", "labels": ["severity": "info"], "annotations": ["summary": "s"]],
      "keep_firing_for"
    ),
  ]

  @Test("rules the model cannot express are refused with the reason", arguments: unexpressible)
  func refused(_ rule: JSONValue, _ why: String) {
    switch PrometheusDriver.monitorSpec(rule) {
    case .success(let s): Issue.record("imported \(s)")
    case .failure(let e): #expect(e.description.contains(why), "\(e)")
    }
  }
}
