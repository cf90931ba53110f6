import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Sandbox
import TestSupport
import Testing

@testable import N8nDriver

/// DESIGN A10: a Schedule renamed with `ytempire.io/renamed-from` keeps its workflow — the engine
/// moves its records, and the driver renames the workflow by PUT (never a delete and a create).
@Suite("n8n renames through the engine against the sandbox", .serialized)
struct N8nRenameTests {
  static func renamed(_ from: String, _ to: String) -> [Resource] {
    Example.resources.map { r in
      guard r.kind == .schedule, r.name == from else { return r }
      var r = r
      r.metadata.name = to
      r.metadata.annotations[Annotations.renamedFrom] = from
      return r
    }
  }

  static func count(_ rig: EngineRig, _ prefix: String) -> Int {
    rig.sb.callCounts.filter { $0.key.hasPrefix(prefix) }.values.reduce(0, +)
  }

  @Test("renamed-from: the workflow is renamed by PUT, keeps its id, and nothing is created or deleted")
  func renameByAnnotation() async throws {
    try await EngineRig.with { rig in
      let engine = rig.engine(refresh: .changed)
      _ = try await engine.apply(try await engine.plan(Example.resources, revision: "r1"), desired: Example.resources)
      let id = try #require(try rig.id("analytics-daily"))
      let (creates, deletes) = (Self.count(rig, "n8n POST /api/v1/workflows"), Self.count(rig, "n8n DELETE "))

      let desired = Self.renamed("analytics-daily", "analytics-nightly")
      let plan = try await engine.plan(desired, revision: "r2")
      #expect(plan.keys == ["analytics-nightly:update:workflow"])
      let name = plan.actions.first?.action.changes.first { $0.path == "name" }
      #expect(name?.old == "ytempire/analytics-daily" && name?.new == "ytempire/analytics-nightly")
      #expect(plan.count(.delete) == 0 && plan.count(.create) == 0)

      let report = try await engine.apply(plan, desired: desired)
      #expect(report.failed == 0 && report.succeeded == 1)
      #expect(rig.sb.callCounts["n8n PUT /api/v1/workflows/\(id)"] == 1)
      #expect(Self.count(rig, "n8n POST /api/v1/workflows") == creates)
      #expect(Self.count(rig, "n8n DELETE ") == deletes)
      #expect(try rig.id("analytics-nightly") == id)
      #expect(try rig.store.record(driver: "n8n", id: ResourceID(.schedule, "analytics-daily")) == nil)
      let wf = try await rig.workflows().first { $0["id"]?.string == id }
      #expect(wf?["name"]?.string == "ytempire/analytics-nightly")
      #expect(try await rig.workflows().count { $0["name"]?.string?.hasPrefix("ytempire/analytics-") == true } == 3)
      #expect(!(try await engine.plan(desired, revision: "r2")).hasChanges)
    }
  }
}
