import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Sandbox
import TestSupport
import Testing

@testable import N8nDriver

/// The real engine (state store, resilience layer, libcurl) driving N8nDriver against the
/// in-process sandbox seeded from examples/empire (which holds one hand-made "Manual backup").
final class EngineRig: Sendable {
  let sb: SandboxServer
  let dir: TemporaryDirectory
  let store: SQLiteStateStore
  let http = CurlHTTPClient()

  init(_ sb: SandboxServer) throws {
    self.sb = sb
    dir = try TemporaryDirectory("n8n-engine")
    store = try SQLiteStateStore(stateDir: dir.path)
  }

  func engine(key: String? = nil, refresh: RefreshMode = .all) -> Engine {
    let config = N8nDriverConfig(endpoint: sb.n8nURL, apiKey: .literal("integrations.n8n.apiKey", key ?? sb.credentials.n8nAPIKey))
    var o = EngineOptions()
    o.refresh = refresh
    return Engine(drivers: [N8nDriver(config: config)], store: store, transport: http, options: o)
  }

  /// n8n's API as an operator (or another tool) would use it.
  func n8n(_ method: String, _ path: String, _ body: JSONValue? = nil) async throws -> (Int, JSONValue?) {
    var headers: HTTPHeaders = ["X-N8N-API-KEY": sb.credentials.n8nAPIKey]
    if body != nil { headers.add("Content-Type", "application/json") }
    let r = try await http.execute(
      HTTPRequest(method: method, url: sb.n8nURL + "/api/v1" + path, headers: headers, body: body?.canonicalBytes))
    return (r.status, try? JSONValue.parse(r.body))
  }

  func workflows() async throws -> [JSONValue] {
    let (status, v) = try await n8n("GET", "/workflows?limit=250")
    #expect(status == 200)
    return v?["data"]?.array ?? []
  }

  func id(_ schedule: String) throws -> String? {
    try store.record(driver: "n8n", id: ResourceID(.schedule, schedule))?.external[N8nDriver.ExternalKey.workflowId]
  }

  static func with(_ body: (EngineRig) async throws -> Void) async throws {
    var o = SandboxOptions()
    o.seedFrom = Repo.examples
    let sb = try await SandboxServer.start(o)
    let rig: EngineRig
    do { rig = try EngineRig(sb) } catch {
      await sb.stop()
      throw error
    }
    do {
      try await body(rig)
    } catch {
      rig.http.shutdown()
      await sb.stop()
      throw error
    }
    rig.http.shutdown()
    await sb.stop()
  }
}

extension Plan {
  var keys: [String] { actions.map { "\($0.action.resource.name):\($0.action.operation.rawValue):\($0.action.key)" } }
}

@Suite("N8nDriver through the engine against the sandbox", .serialized)
struct SandboxEngineTests {
  static let schedules = ["analytics-collection", "analytics-daily", "analytics-hourly", "content-generation"]

  @Test("create from empty, then plan twice: no changes; the hand-made workflow survives")
  func createThenNoDiff() async throws {
    try await EngineRig.with { rig in
      let engine = rig.engine()
      let plan = try await engine.plan(Example.resources, revision: "r1")
      #expect(plan.keys == Self.schedules.map { "\($0):create:workflow" })
      #expect(plan.observation.calls.map(\.operation) == ["tags.list"] + Array(repeating: "workflows.list", count: 4))
      #expect(!plan.json().contains(rig.sb.credentials.n8nAPIKey))
      let report = try await engine.apply(plan, desired: Example.resources)
      #expect(report.failed == 0 && report.succeeded == 4)
      #expect(rig.sb.callCounts["n8n POST /api/v1/workflows"] == 4)
      #expect(rig.sb.callCounts["n8n POST /api/v1/tags"] == 1)

      let all = try await rig.workflows()
      #expect(all.count == 5)
      #expect(all.contains { $0["name"] == "Manual backup" && $0["tags"] == [] })
      for s in Self.schedules {
        let wf = all.first { $0["name"]?.string == "ytempire/\(s)" }
        #expect(wf?["id"]?.string == (try rig.id(s)))
        #expect(wf?["active"] == true)
        #expect(wf?["tags"]?.array?.compactMap { $0["name"]?.string } == ["ytempire"])
      }
      for _ in 0..<2 {
        let again = try await engine.plan(Example.resources, revision: "r1")
        #expect(again.actions.isEmpty)
        #expect(again.resources.allSatisfy { $0.observationError == nil })
        #expect(again.observation.calls.map(\.operation) == ["tags.list"] + Array(repeating: "workflows.get", count: 4))
      }
      // With stored observations (the default refresh), nothing is observed or changed either.
      let stored = try await rig.engine(refresh: .changed).plan(Example.resources, revision: "r1")
      #expect(stored.actions.isEmpty)

      // One field changed in git: one PUT, nothing else.
      let changed = modified("content-generation") { $0.timeout = .seconds(45) }
      let plan2 = try await rig.engine(refresh: .changed).plan(changed, revision: "r2")
      #expect(plan2.keys == ["content-generation:update:workflow"])
      #expect(plan2.actions.first?.fromGit == true)
      #expect(plan2.actions.first?.action.calls.map(\.operation) == ["workflows.update"])
      let id = try #require(try rig.id("content-generation"))
      let report2 = try await engine.apply(plan2, desired: changed)
      #expect(report2.succeeded == 1)
      #expect(rig.sb.callCounts["n8n PUT /api/v1/workflows/\(id)"] == 1)
      let (_, wf) = try await rig.n8n("GET", "/workflows/\(id)")
      #expect(wf?["settings"]?["executionTimeout"] == 45)
      #expect(wf?["active"] == true)
      #expect(try await engine.plan(changed, revision: "r2").actions.isEmpty)
    }
  }

  @Test("drift by hand is corrected with one PUT, or only reported under ytempire.io/drift: report")
  func drift() async throws {
    try await EngineRig.with { rig in
      let engine = rig.engine()
      _ = try await engine.apply(try await engine.plan(Example.resources, revision: "r1"), desired: Example.resources)
      let id = try #require(try rig.id("content-generation"))
      let (_, got) = try await rig.n8n("GET", "/workflows/\(id)")
      let wf = try #require(got)
      let nodes = (wf["nodes"]?.array ?? []).map { n -> JSONValue in
        guard n["name"] == "Publish to YouTube", var o = n.object, var p = o["parameters"]?.object else { return n }
        p["url"] = "http://localhost:9999/hand-edited"
        o["parameters"] = .object(p)
        return .object(o)
      }
      let (status, _) = try await rig.n8n(
        "PUT", "/workflows/\(id)",
        [
          "name": wf["name"]!, "nodes": .array(nodes),
          "connections": wf["connections"]!, "settings": wf["settings"]!,
          "staticData": ["node:Schedule Trigger": ["recurrenceRules": [8]]],
        ])
      #expect(status == 200)

      // Reported only.
      let reportOnly = Example.resources.map { r -> Resource in
        guard r.kind == .schedule, r.name == "content-generation" else { return r }
        var m = r
        m.metadata.annotations[Annotations.drift] = "report"
        return m
      }
      let reported = try await engine.plan(reportOnly, revision: "r1")
      #expect(reported.actions.isEmpty)
      let change = reported.resources.first { $0.id == ResourceID(.schedule, "content-generation") }
      #expect(change?.driftReportOnly == true)
      #expect(change?.driftedFields == ["nodes.Publish to YouTube.parameters.url"])

      // Corrected.
      let plan = try await engine.plan(Example.resources, revision: "r1")
      #expect(plan.keys == ["content-generation:update:workflow"])
      #expect(plan.actions.first?.fromGit == false)
      #expect(plan.actions.first?.action.calls.map(\.operation) == ["workflows.update"])
      let before = rig.sb.callCounts["n8n PUT /api/v1/workflows/\(id)"] ?? 0
      let report = try await engine.apply(plan, desired: Example.resources)
      #expect(report.succeeded == 1)
      #expect(rig.sb.callCounts["n8n PUT /api/v1/workflows/\(id)"] == before + 1)
      let (_, fixed) = try await rig.n8n("GET", "/workflows/\(id)")
      #expect(
        fixed?["nodes"]?.array?.first { $0["name"] == "Publish to YouTube" }?["parameters"]?["url"]
          == "http://localhost:8004/api/v1/publish/video")
      // The triggers' run-time state is not ytempire's: the correction leaves it.
      #expect(fixed?["staticData"] == ["node:Schedule Trigger": ["recurrenceRules": [8]]])
      #expect(try await engine.plan(Example.resources, revision: "r1").actions.isEmpty)
    }
  }

  @Test("a Schedule that leaves the repository is pruned; foreign workflows stay")
  func prune() async throws {
    try await EngineRig.with { rig in
      let engine = rig.engine()
      _ = try await engine.apply(try await engine.plan(Example.resources, revision: "r1"), desired: Example.resources)
      let id = try #require(try rig.id("analytics-hourly"))
      let fewer = Example.resources.filter { !($0.kind == .schedule && $0.name == "analytics-hourly") }
      let plan = try await engine.plan(fewer, revision: "r2")
      #expect(plan.keys == ["analytics-hourly:delete:workflow"])
      let report = try await engine.apply(plan, desired: fewer)
      #expect(report.succeeded == 1)
      let (status, _) = try await rig.n8n("GET", "/workflows/\(id)")
      #expect(status == 404)
      let names = Set(try await rig.workflows().compactMap { $0["name"]?.string })
      #expect(names == ["Manual backup", "ytempire/analytics-collection", "ytempire/analytics-daily", "ytempire/content-generation"])
      #expect(try rig.id("analytics-hourly") == nil)
      #expect(try await engine.plan(fewer, revision: "r2").actions.isEmpty)
    }
  }

  @Test("a tagged workflow with ytempire's name and no record (a crash before the id was kept) is adopted, then converged")
  func adoption() async throws {
    try await EngineRig.with { rig in
      let (_, tag) = try await rig.n8n("POST", "/tags", ["name": "ytempire"])
      let tagId = try #require(tag?["id"]?.string)
      let (_, made) = try await rig.n8n(
        "POST", "/workflows",
        [
          "name": "ytempire/content-generation", "connections": [:], "settings": [:],
          "nodes": [
            ["name": "Old trigger", "type": "n8n-nodes-base.scheduleTrigger", "typeVersion": 1, "position": [0, 0], "parameters": [:]]
          ],
        ])
      let id = try #require(made?["id"]?.string)
      let (status, _) = try await rig.n8n("PUT", "/workflows/\(id)/tags", [["id": .string(tagId)]])
      #expect(status == 200)
      let engine = rig.engine()
      let plan = try await engine.plan(Example.resources, revision: "r1")
      #expect(plan.adopted[DriverResourceKey("n8n", ResourceID(.schedule, "content-generation"))] == [N8nDriver.ExternalKey.workflowId: id])
      #expect(
        plan.keys.filter { $0.hasPrefix("content-generation:") } == [
          "content-generation:update:workflow", "content-generation:update:activation",
        ])
      // The tag exists: no create plans a tags.create.
      #expect(!plan.actions.contains { $0.action.calls.contains { $0.operation == "tags.create" } })
      let report = try await engine.apply(plan, desired: Example.resources)
      #expect(report.failed == 0)
      #expect(try rig.id("content-generation") == id)
      #expect(try await rig.workflows().filter { $0["name"] == "ytempire/content-generation" }.count == 1)
      #expect(rig.sb.callCounts["n8n POST /api/v1/tags"] == 1)
      #expect(try await engine.plan(Example.resources, revision: "r1").actions.isEmpty)
    }
  }

  @Test("a workflow with ytempire's name but not its tag is a conflict in the plan; a wrong key is unauthorized")
  func conflictAndErrors() async throws {
    try await EngineRig.with { rig in
      let (status, made) = try await rig.n8n(
        "POST", "/workflows",
        [
          "name": "ytempire/analytics-daily", "nodes": [], "connections": [:],
          "settings": ["executionOrder": "v1"],
        ])
      #expect(status == 200)
      let foreign = try #require(made?["id"]?.string)
      let engine = rig.engine()
      let plan = try await engine.plan(Example.resources, revision: "r1")
      #expect(
        plan.keys == ["analytics-collection:create:workflow", "analytics-hourly:create:workflow", "content-generation:create:workflow"])
      let conflict = plan.resources.first { $0.id == ResourceID(.schedule, "analytics-daily") }?.observationError ?? ""
      #expect(conflict.contains("notOwned") && conflict.contains(foreign))
      _ = try await engine.apply(plan, desired: Example.resources)
      let (_, still) = try await rig.n8n("GET", "/workflows/\(foreign)")
      #expect(still?["nodes"] == [] && still?["tags"] == [])

      let denied = try await rig.engine(key: "not-the-key").plan(Example.resources, revision: "r1")
      #expect(denied.actions.isEmpty)
      for r in denied.resources where r.id.kind == .schedule {
        #expect(r.observationError?.contains("HTTP 401 unauthorized") == true)
        #expect(r.observationError?.contains("integrations.n8n.apiKey") == true)
        #expect(r.observationError?.contains("not-the-key") == false)
      }
    }
  }
}
