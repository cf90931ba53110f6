import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Resilience
import Testing

/// Decodes manifests from YAML text (one or more documents) with the real loader.
func resources(_ yaml: String, file: String = "test.yaml") throws -> [Resource] {
  let report = ManifestLoader.validate([ManifestSource(displayPath: file, relativePath: file, content: .bytes(Array(yaml.utf8)))])
  #expect(report.isValid, "\(report.diagnostics.map(\.message))")
  return report.resources
}

func monitor(_ name: String, summary: String = "s", annotations: String = "") -> String {
  """
  apiVersion: ytempire.io/v1
  kind: Monitor
  metadata:
    name: \(name)
  \(annotations.isEmpty ? "" : "  annotations: {\(annotations)}")
  spec:
    expr: up == 0
    for: 5m
    severity: warning
    summary: \(summary)
  ---

  """
}

func memoryLimit(units: Int = 1000, put: Int = 10) -> String {
  """
  apiVersion: ytempire.io/v1
  kind: RateLimit
  metadata:
    name: memory-api
  spec:
    service: memory
    quota: {units: \(units), window: daily, resetAt: "00:00", timezone: UTC, costs: {objects.put: \(put), objects.list: 1, objects.delete: 5}}
  ---

  """
}

func tempDir() -> String {
  let d = NSTemporaryDirectory() + "ytempire-rec-" + UUID().uuidString
  try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
  return d
}

/// An engine over a fresh state directory and an in-memory driver of Monitors.
struct Rig {
  let dir = tempDir()
  let store: SQLiteStateStore
  let driver = InMemoryDriver(
    kinds: [.monitor],
    render: { r in
      .object(["summary": .string(r.monitor?.summary ?? ""), "severity": .string(r.monitor?.severity.rawValue ?? "")])
    })
  let clock = ManualClock(wall: Date(timeIntervalSince1970: 1_780_000_000), autoAdvance: true)

  init() throws { store = try SQLiteStateStore(stateDir: dir) }

  func engine(_ configure: (inout EngineOptions) -> Void = { _ in }) -> Engine {
    var o = EngineOptions()
    configure(&o)
    return Engine(drivers: [driver], store: store, transport: NullTransport(), options: o, clock: clock)
  }
}
