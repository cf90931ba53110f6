import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import TestSupport
import Testing

@testable import N8nDriver

/// The example resources with one Schedule (or Channel) changed.
func modified(_ name: String, _ f: (inout ScheduleSpec) -> Void) -> [Resource] {
  Example.resources.map { r in
    guard r.kind == .schedule, r.name == name, var s = r.schedule else { return r }
    f(&s)
    var out = r
    out.spec = .schedule(s)
    return out
  }
}

func channelModified(_ resources: [Resource], _ name: String, _ f: (inout ChannelSpec) -> Void) -> [Resource] {
  resources.map { r in
    guard r.kind == .channel, r.name == name, var c = r.channel else { return r }
    f(&c)
    var out = r
    out.spec = .channel(c)
    return out
  }
}

func withoutSchedule(_ name: String) -> [Resource] { Example.resources.filter { !($0.kind == .schedule && $0.name == name) } }

func nodeTypes(_ d: JSONValue) -> Set<String> {
  Set((d["definition"]?["nodes"]?.object ?? [:]).values.compactMap { $0["type"]?.string })
}

@Suite("N8nDriver: rendering")
struct RenderingTests {
  @Test("content-generation renders the seed's workflow with node types n8n has today")
  func contentGeneration() {
    let rig = Rig()
    let d = rig.desired("content-generation")
    #expect(d["name"] == "ytempire/content-generation")
    #expect(d["active"] == true)
    let nodes = d["definition"]?["nodes"]?.object ?? [:]
    #expect(
      nodes.keys.sorted() == [
        "Channels", "Generate Script", "Generate Visuals", "Generate Voice", "Merge Media",
        "Publish to YouTube", "Schedule Trigger", "Trend Analysis", "Virality Check", "Wait for Processing",
      ])
    let types = nodeTypes(d)
    #expect(!types.contains("n8n-nodes-base.parallel") && !types.contains("n8n-nodes-base.function"))
    #expect(
      types.isSubset(of: [
        "n8n-nodes-base.scheduleTrigger", "n8n-nodes-base.code", "n8n-nodes-base.httpRequest",
        "n8n-nodes-base.if", "n8n-nodes-base.wait", "n8n-nodes-base.merge",
      ]))
    // every: 8h → the hours interval rule; timeout 60s → executionTimeout and the HTTP timeout.
    #expect(nodes["Schedule Trigger"]?["parameters"]?["rule"]?["interval"] == [["field": "hours", "hoursInterval": 8]])
    #expect(d["definition"]?["settings"] == ["executionOrder": "v1", "timezone": "UTC", "executionTimeout": 60])
    let script = nodes["Generate Script"]?["parameters"]
    #expect(script?["url"] == "http://localhost:8002/api/v1/generate/script")
    #expect(script?["options"]?["timeout"] == 60000)
    #expect(script?["bodyParameters"]?["parameters"]?.array?.contains(["name": "duration", "value": 600]) == true)
    #expect(nodes["Virality Check"]?["parameters"]?["conditions"]?["conditions"]?.array?.first?["rightValue"] == .double(0.8))
    #expect(nodes["Wait for Processing"]?["parameters"]?["options"]?["webhookSuffix"] == "video-ready")
    // The selected channels are rendered into the Code node.
    let code = nodes["Channels"]?["parameters"]?["jsCode"]?.string ?? ""
    for c in ["tech-daily", "finance-focus", "science-simplified"] { #expect(code.contains("\"\(c)\"")) }
    // Voice and visuals both feed the Merge node.
    let conns = d["definition"]?["connections"]
    #expect(conns?["Generate Script"]?["main"]?.array?.first?.array?.count == 2)
    #expect(conns?["Generate Visuals"]?["main"] == [[["node": "Merge Media", "type": "main", "index": 1]]])
    // Desired is stable.
    #expect(rig.desired("content-generation") == d)
  }

  @Test("cron becomes the cronExpression rule and the trigger's timezone the workflow's")
  func cronRule() {
    let d = Rig().desired("analytics-daily")
    let nodes = d["definition"]?["nodes"]?.object ?? [:]
    #expect(nodes["Schedule Trigger"]?["parameters"]?["rule"]?["interval"] == [["field": "cronExpression", "expression": "15 0 * * *"]])
    #expect(d["definition"]?["settings"]?["timezone"] == "America/Los_Angeles")
    #expect(d["definition"]?["settings"]?["executionTimeout"] == 120)
    let every5 = Rig().desired("analytics-collection")["definition"]?["nodes"]?["Schedule Trigger"]?["parameters"]?["rule"]?["interval"]
    #expect(every5 == [["field": "minutes", "minutesInterval": 5]])
  }

  @Test("analytics with SQLite renders the active selected channels; a change of channels changes the workflow")
  func analyticsSQLite() {
    let rig = Rig()
    let d = rig.desired("analytics-collection")
    let nodes = d["definition"]?["nodes"]?.object ?? [:]
    #expect(nodes["Channels"]?["type"] == "n8n-nodes-base.code")
    #expect(nodes["Split Channels"]?["type"] == "n8n-nodes-base.splitInBatches")
    #expect(nodes["Split Channels"]?["parameters"]?["batchSize"] == 1)
    #expect(!nodeTypes(d).contains("n8n-nodes-base.postgres"))
    let code = nodes["Channels"]?["parameters"]?["jsCode"]?.string ?? ""
    let selected = Example.index.all(.channel).filter { $0.metadata.labels["network"] == "ytempire" && $0.channel!.active }
    #expect(!selected.isEmpty)
    for c in selected { #expect(code.contains(c.channel!.youtube.channelId)) }
    // Deactivating a selected channel updates the rendered workflow.
    let changed = Rig(resources: channelModified(Example.resources, selected[0].name) { $0.active = false })
    let d2 = changed.desired("analytics-collection")
    #expect(d2 != d)
    let code2 = d2["definition"]?["nodes"]?["Channels"]?["parameters"]?["jsCode"]?.string ?? ""
    #expect(code2.contains(selected[0].channel!.youtube.channelId) == false)
    #expect(code2.contains(selected[1].channel!.youtube.channelId))
  }

  @Test("analytics with PostgreSQL reads the channels table through the named credential")
  func analyticsPostgres() {
    let rig = Rig(postgres: true)
    let d = rig.desired("analytics-collection")
    let ch = d["definition"]?["nodes"]?["Channels"]
    #expect(ch?["type"] == "n8n-nodes-base.postgres")
    #expect(ch?["credentials"] == ["postgres": ["name": "ytempire-postgres"]])
    let sql = ch?["parameters"]?["query"]?.string ?? ""
    #expect(sql.contains("FROM channels WHERE active = true"))
    #expect(sql.contains("labels @> '{\"network\":\"ytempire\"}'::jsonb"))
    #expect(d["definition"]?["nodes"]?["Store Analytics"]?["type"] == "n8n-nodes-base.postgres")
    #expect(d["definition"]?["nodes"]?["Apply Retention"]?["parameters"]?["query"]?.string?.contains("90 days") == true)
    // The table is read at run time: a channel change leaves the workflow as it is.
    let name = Example.index.all(.channel).first { $0.metadata.labels["network"] == "ytempire" }!.name
    let other = Rig(resources: channelModified(Example.resources, name) { $0.active = false }, postgres: true)
    #expect(other.desired("analytics-collection") == d)
    // An explicit list names the channels.
    #expect(
      rig.desired("analytics-daily")["definition"]?["nodes"]?["Channels"]?["parameters"]?["query"]?.string?
        .contains("name IN ('finance-focus', 'science-simplified', 'tech-daily')") == true)
    // Without a credential, n8n cannot reach the database: the channels are rendered.
    #expect(
      Rig(postgres: true, credential: nil).desired("analytics-collection")["definition"]?["nodes"]?["Channels"]?["type"]
        == "n8n-nodes-base.code")
  }

  @Test("workflowFile sends the repository's JSON under ytempire's name; a missing or broken file is a clear error")
  func workflowFile() async throws {
    let file: JSONValue = [
      "name": "My export", "id": "abc", "active": true, "versionId": "x", "tags": [["id": "t", "name": "mine"]],
      "nodes": [
        [
          "id": "n1", "name": "Every hour", "type": "n8n-nodes-base.scheduleTrigger", "typeVersion": .double(1.2), "position": [0, 0],
          "parameters": ["rule": ["interval": [["field": "hours"]]]],
        ],
        [
          "id": "n2", "name": "Ping", "type": "n8n-nodes-base.httpRequest", "typeVersion": .double(4.2), "position": [200, 0],
          "webhookId": "hook-1",
          "parameters": ["url": "http://localhost:9000/ping"],
        ],
      ],
      "connections": ["Every hour": ["main": [[["node": "Ping", "type": "main", "index": 0]]]]],
      "settings": ["executionOrder": "v1", "saveManualExecutions": true],
    ]
    let resources = modified("analytics-hourly") { $0.workflow = .file("workflows/ping.json") }
    let rig = Rig(resources: resources, files: .memory(["workflows/ping.json": file.canonicalBytes]))
    let d = rig.desired("analytics-hourly")
    #expect(d["source"] == "file/workflows/ping.json")
    #expect(d["definition"]?["settings"] == ["executionOrder": "v1", "saveManualExecutions": true, "timezone": "UTC"])
    _ = try await rig.converge(["analytics-hourly"])
    let created = rig.fake.workflows(named: "ytempire/analytics-hourly")
    #expect(created.count == 1)
    let names = Set((created.first?["nodes"]?.array ?? []).compactMap { $0["name"]?.string })
    #expect(names == ["Every hour", "Ping"])
    let ping = created.first?["nodes"]?.array?.first { $0["name"] == "Ping" }
    #expect(ping?["position"] == [200, 0])
    #expect(ping?["webhookId"] == "hook-1")
    #expect(ping?["id"]?.string == Canonical.derivedId("ytempire/analytics-hourly", "Ping"))
    let t = rig.targets(["analytics-hourly"])
    #expect(rig.diff(t, try await rig.observe(t)).isEmpty)

    let missing = Rig(resources: resources)
    let outcome = try await missing.driver.observe(missing.targets(["analytics-hourly"]), context: missing.context)
    guard case .failed(let why)? = outcome[ResourceID(.schedule, "analytics-hourly")] else {
      Issue.record("expected a failure")
      return
    }
    #expect(why.contains("workflowFileMissing") && why.contains("workflows/ping.json"))
    #expect(missing.fake.seen.isEmpty)
    #expect(missing.driver.observationCalls(missing.targets(["analytics-hourly"]), pricing: missing.pricing).isEmpty)

    let broken = Rig(resources: resources, files: .memory(["workflows/ping.json": Array("{\"nodes\": [".utf8)]))
    #expect(broken.desired("analytics-hourly")["error"]?.string?.contains("workflowFileInvalid") == true)
  }
}

@Suite("N8nDriver: converge over a fake n8n")
struct ConvergeTests {
  @Test("create from empty: one create each, tag created once, activated; the calls are the planned ones")
  func createFromEmpty() async throws {
    let rig = Rig()
    let targets = rig.targets()
    let planned = rig.driver.observationCalls(targets, pricing: rig.pricing).map(\.operation)
    let observed = try await rig.observe(targets)
    #expect(rig.fake.calls() == planned)
    #expect(planned == ["tags.list", "workflows.list", "workflows.list", "workflows.list", "workflows.list"])
    #expect(rig.fake.seen.filter { $0.path == "/workflows" }.allSatisfy { $0.query["name"]?.hasPrefix("ytempire/") == true })

    let actions = rig.diff(targets, observed)
    #expect(
      actions.keys() == [
        "analytics-collection:create:workflow", "analytics-daily:create:workflow",
        "analytics-hourly:create:workflow", "content-generation:create:workflow",
      ])
    #expect(actions[0].calls.map(\.operation) == ["workflows.create", "tags.create", "workflows.tags", "workflows.activate"])
    rig.fake.clearSeen()
    _ = try await rig.apply(actions, observed)
    // The tag is made once (the later actions reuse it), so the calls are at most the planned ones.
    #expect(rig.fake.requests().filter { $0 == "POST /tags" }.count == 1)
    #expect(rig.fake.calls().count == actions.flatMap(\.calls).count - 3)
    for s in ["analytics-collection", "analytics-daily", "analytics-hourly", "content-generation"] {
      let wf = rig.fake.workflows(named: "ytempire/\(s)")
      #expect(wf.count == 1)
      #expect(wf.first?["tags"]?.array?.compactMap { $0["name"]?.string } == ["ytempire"])
      #expect(wf.first?["active"] == .bool(rig.desired(s)["active"]?.bool ?? true))
      #expect(rig.external(s) == wf.first?["id"]?.string)
    }
    // Only writable fields were sent.
    for s in rig.fake.seen where s.method == "POST" && s.path == "/workflows" {
      let keys = Set((s.body?.object ?? [:]).keys)
      #expect(keys.isSubset(of: FakeN8n.writable) && keys.contains("nodes"))
    }
    // The key went in the header only, never into a plan payload.
    #expect(rig.fake.seen.allSatisfy { $0.apiKey == FakeN8n.key })
    #expect(!actions.contains { $0.payload.canonicalString.contains(FakeN8n.key) })
  }

  @Test("apply, then plan twice: no changes (the state apply returns diffs clean too)")
  func noPerpetualDiff() async throws {
    let rig = Rig(postgres: true)
    let targets = rig.targets()
    let observed = try await rig.observe(targets)
    let after = try await rig.apply(rig.diff(targets, observed), observed)
    // Credentials go by name with a null id, which n8n resolves to its credential.
    let sentChannels = rig.fake.workflows(named: "ytempire/analytics-collection").first?["nodes"]?.array?.first { $0["name"] == "Channels" }
    #expect(sentChannels?["credentials"] == ["postgres": ["id": .null, "name": "ytempire-postgres"]])
    #expect(rig.diff(rig.targets(), after).isEmpty)
    for _ in 0..<2 {
      let t = rig.targets()
      let again = try await rig.observe(t)
      #expect(rig.diff(t, again).isEmpty)
      #expect(again == after)
    }
    // Server-side noise is not a change: node ids and positions moved, a setting n8n added,
    // a float typeVersion written as 1.0, key order.
    let id = rig.external("content-generation")!
    rig.fake.mutate(id) { o in
      o["nodes"] = .array(
        (o["nodes"]?.array ?? []).map { n in
          var m = n.object!
          m["id"] = "editor-id"
          m["position"] = [9, 9]
          if m["typeVersion"] == 2 { m["typeVersion"] = .double(2.0) }
          return .object(m)
        })
      var s = o["settings"]!.object!
      s["callerPolicy"] = "workflowsFromSameOwner"
      o["settings"] = .object(s)
    }
    let t = rig.targets()
    #expect(rig.diff(t, try await rig.observe(t)).isEmpty)
  }

  @Test("one field changed: exactly one PUT, sending only the writable fields")
  func oneFieldChange() async throws {
    let rig = Rig()
    try await rig.converge()
    let changed = Rig(resources: modified("content-generation") { $0.timeout = .seconds(90) })
    changed.loop.externals.withLock { $0 = rig.loop.externals.withLock { $0 } }
    let fake = rig.fake
    let t = changed.targets()
    let states = try await observeWith(changed, fake: fake, t)
    let actions = changed.diff(t, states)
    #expect(actions.keys() == ["content-generation:update:workflow"])
    #expect(actions[0].calls.map(\.operation) == ["workflows.update"])
    #expect(actions[0].changes.map(\.path).contains("settings.executionTimeout"))
    fake.clearSeen()
    let after = try await applyWith(changed, fake: fake, actions, states)
    #expect(fake.requests() == ["PUT /workflows/\(rig.external("content-generation")!)"])
    let sent = Set((fake.seen[0].body?.object ?? [:]).keys)
    #expect(sent.isSubset(of: FakeN8n.writable) && sent.contains("nodes"))
    #expect(changed.diff(t, after).isEmpty)

    // active: false → one deactivate, nothing else.
    let off = Rig(
      resources: modified("content-generation") {
        $0.timeout = .seconds(90)
        $0.active = false
      })
    let t2 = off.targets(["content-generation"])
    off.loop.externals.withLock { $0 = rig.loop.externals.withLock { $0 } }
    let s2 = try await observeWith(off, fake: fake, off.targets(["content-generation"]))
    let a2 = off.diff(off.targets(["content-generation"]), s2)
    #expect(a2.keys() == ["content-generation:update:activation"])
    #expect(a2[0].calls.map(\.operation) == ["workflows.deactivate"])
    fake.clearSeen()
    _ = try await applyWith(off, fake: fake, a2, s2)
    #expect(fake.requests() == ["POST /workflows/\(rig.external("content-generation")!)/deactivate"])
    #expect(t2.count == 1)
  }

  @Test("foreign workflows survive; one with ytempire's name but no tag is a conflict, never overwritten")
  func foreignWorkflows() async throws {
    let rig = Rig()
    let manual = rig.fake.addWorkflow("Manual backup")
    let squatter = rig.fake.addWorkflow("ytempire/content-generation", tags: ["team-b"])
    let outcome = try await rig.driver.observe(rig.targets(), context: rig.context)
    guard case .failed(let why)? = outcome[ResourceID(.schedule, "content-generation")] else {
      Issue.record("expected a conflict")
      return
    }
    #expect(why.contains("notOwned") && why.contains(squatter) && why.contains("not tagged ytempire"))
    // The others converge; the foreign ones are untouched.
    let before = rig.fake.workflow(squatter)
    try await rig.converge(["analytics-collection", "analytics-daily", "analytics-hourly"])
    #expect(rig.fake.workflow(squatter) == before)
    #expect(rig.fake.workflow(manual)?["name"] == "Manual backup")
    #expect(!rig.fake.seen.contains { $0.path.contains(squatter) || $0.path.contains(manual) })
  }

  @Test("prune deletes only the recorded, tagged workflow of a Schedule that left the repository")
  func prune() async throws {
    let rig = Rig()
    try await rig.converge()
    let manual = rig.fake.addWorkflow("Manual backup")
    let gone = Rig(resources: withoutSchedule("analytics-hourly"))
    gone.loop.externals.withLock { $0 = rig.loop.externals.withLock { $0 } }
    let orphan = ObserveTarget(
      id: ResourceID(.schedule, "analytics-hourly"), desired: nil,
      external: [N8nDriver.ExternalKey.workflowId: rig.external("analytics-hourly")!])
    let targets = gone.targets() + [orphan]
    #expect(gone.driver.observationCalls([orphan], pricing: gone.pricing).map(\.operation) == ["workflows.get"])
    let states = try await observeWith(gone, fake: rig.fake, targets)
    let actions = gone.diff(targets, states)
    #expect(actions.keys() == ["analytics-hourly:delete:workflow"])
    _ = try await applyWith(gone, fake: rig.fake, actions, states)
    #expect(rig.fake.workflows(named: "ytempire/analytics-hourly").isEmpty)
    #expect(rig.fake.workflow(manual) != nil)
    #expect(rig.fake.all.count == 4)

    // Untagged by hand: no longer ytempire's, so it is not deleted.
    let id = rig.external("analytics-daily")!
    rig.fake.mutate(id) { $0["tags"] = [] }
    let orphan2 = ObserveTarget(
      id: ResourceID(.schedule, "analytics-daily"), desired: nil, external: [N8nDriver.ExternalKey.workflowId: id])
    let s2 = try await observeWith(gone, fake: rig.fake, [orphan2])
    #expect(gone.diff([orphan2], s2).isEmpty)
    // Nothing recorded: nothing is looked at or deleted.
    let unknown = ObserveTarget(id: ResourceID(.schedule, "analytics-daily"), desired: nil, external: [:])
    #expect(gone.driver.observationCalls([unknown], pricing: gone.pricing).isEmpty)
  }

  @Test("drift is corrected: a node edited by hand, the tag removed (other tags kept), activation flipped")
  func drift() async throws {
    let rig = Rig()
    try await rig.converge()
    let id = rig.external("content-generation")!
    rig.fake.mutate(id) { o in
      o["nodes"] = .array(
        (o["nodes"]?.array ?? []).map { n in
          guard n["name"] == "Generate Script" else { return n }
          var m = n.object!
          var p = m["parameters"]!.object!
          p["url"] = "http://evil.example/script"
          m["parameters"] = .object(p)
          return .object(m)
        })
      o["tags"] = [["id": "tagX", "name": "team-b"]]
      o["active"] = false
    }
    rig.fake.state.withLock { $0.tags["tagX"] = "team-b" }
    let t = rig.targets()
    let states = try await rig.observe(t)
    let actions = rig.diff(t, states)
    #expect(
      actions.keys() == ["content-generation:update:workflow", "content-generation:update:tags", "content-generation:update:activation"])
    #expect(actions[0].changes.map(\.path) == ["nodes.Generate Script.parameters.url"])
    #expect(actions[1].calls.map(\.operation) == ["workflows.tags"])
    _ = try await rig.apply(actions, states)
    let wf = rig.fake.workflow(id)!
    #expect(Set(wf["tags"]?.array?.compactMap { $0["name"]?.string } ?? []) == ["team-b", "ytempire"])
    #expect(wf["active"] == true)
    let t2 = rig.targets()
    #expect(rig.diff(t2, try await rig.observe(t2)).isEmpty)
  }

  @Test("after a crash between create and tagging, the workflow is adopted by its name and node ids, then tagged")
  func adoptionAfterCrash() async throws {
    let rig = Rig()
    rig.fake.script("PUT /workflows/wf1/tags", FakeN8n.message(500, "Internal Server Error"))
    let t = rig.targets(["content-generation"])
    let states = try await rig.observe(t)
    let actions = rig.diff(t, states)
    await #expect(throws: N8nError.self) { _ = try await rig.apply(actions, states) }
    // The id was never recorded (the apply failed); the engine plans again from scratch.
    rig.loop.externals.withLock { $0 = [:] }
    let t2 = rig.targets(["content-generation"])
    let s2 = try await rig.observe(t2)
    #expect(rig.external("content-generation") == "wf1")
    let a2 = rig.diff(t2, s2)
    #expect(a2.keys() == ["content-generation:update:tags", "content-generation:update:activation"])
    #expect(a2[0].calls.map(\.operation) == ["workflows.tags"])
    _ = try await rig.apply(a2, s2)
    #expect(rig.fake.workflows(named: "ytempire/content-generation").count == 1)
    let t3 = rig.targets(["content-generation"])
    #expect(rig.diff(t3, try await rig.observe(t3)).isEmpty)
    // Adoption of a tagged one needs no tagging at all.
    let again = Rig()
    let id = again.fake.addWorkflow("ytempire/analytics-daily", tags: ["ytempire"])
    let t4 = again.targets(["analytics-daily"])
    let s4 = try await again.observe(t4)
    #expect(again.external("analytics-daily") == id)
    #expect(again.diff(t4, s4).keys() == ["analytics-daily:update:workflow", "analytics-daily:update:activation"])
  }
}

@Suite("N8nDriver: observation")
struct ObservationTests {
  @Test("observationCalls prices exactly the calls observe makes: recorded, unrecorded, left the repository, unusable")
  func pricedExactly() async throws {
    let rig = Rig()
    try await rig.converge(["analytics-daily", "content-generation"])
    let dailyId = rig.external("analytics-daily")!
    let resources = modified("analytics-hourly") { $0.workflow = .file("missing.json") }.filter {
      !($0.kind == .schedule && $0.name == "analytics-daily")
    }
    let other = Rig(resources: resources)
    other.loop.externals.withLock { $0 = rig.loop.externals.withLock { $0 } }
    let targets =
      other.targets() + [
        ObserveTarget(
          id: ResourceID(.schedule, "analytics-daily"), desired: nil,
          external: [N8nDriver.ExternalKey.workflowId: dailyId])
      ]
    let planned = other.driver.observationCalls(targets, pricing: other.pricing)
    rig.fake.clearSeen()
    let ctx = DriverContext(desired: other.index, pricing: other.pricing, cache: MemoryCache(), client: { _ in rig.fake })
    let out = try await other.driver.observe(targets, context: ctx)
    #expect(rig.fake.seen.map(\.call) == planned)
    #expect(planned.map(\.operation) == ["tags.list", "workflows.list", "workflows.get", "workflows.get"])
    #expect(planned.allSatisfy { $0.quota == nil && $0.units == 0 })  // the n8n RateLimit has no unit quota
    if case .failed(let why)? = out[ResourceID(.schedule, "analytics-hourly")] {
      #expect(why.contains("workflowFileMissing"))
    } else {
      Issue.record("the unusable workflowFile should fail its observation")
    }
  }

  @Test("listing by name follows nextCursor; only exact names count")
  func paging() async throws {
    let rig = Rig()
    for i in 0..<2 { rig.fake.addWorkflow("ytempire/content-generation copy \(i)") }
    let mine = rig.fake.addWorkflow("ytempire/content-generation", tags: ["ytempire"])
    rig.fake.addWorkflow("ytempire/content-generation-old")
    rig.fake.state.withLock {
      $0.pageSize = 1
      $0.nameContains = true
    }
    // A server whose name filter is looser than equality: only the exact name counts.
    let all = try await rig.driver.listByName("ytempire/content-generation", schedule: "content-generation", context: rig.context)
    #expect(all.compactMap { $0["id"]?.string } == [mine])
    #expect(rig.fake.seen.count == 4)
    #expect(rig.fake.seen.allSatisfy { $0.query["limit"] == "250" })
    #expect(rig.fake.seen.dropFirst().map { $0.query["cursor"] } == ["1", "2", "3"])
  }
}

@Suite("N8nDriver: errors")
struct ErrorTests {
  func failure(_ rig: Rig) async throws -> String {
    let out = try await rig.driver.observe(rig.targets(["content-generation"]), context: rig.context)
    guard case .failed(let why)? = out[ResourceID(.schedule, "content-generation")] else { return "" }
    return why
  }

  @Test("a wrong API key: unauthorized, with what to check, and never the key")
  func unauthorized() async throws {
    let rig = Rig(key: "wrong-key-value-42")
    let why = try await failure(rig)
    #expect(why.contains("HTTP 401 unauthorized"))
    #expect(why.contains("integrations.n8n.apiKey"))
    #expect(!why.contains("wrong-key-value-42"))
  }

  @Test("a server echoing the key has it scrubbed; 400 read-only, 404, 409, 500 map to reasons")
  func shapes() async throws {
    let rig = Rig()
    rig.fake.script("GET /tags", FakeN8n.message(500, "database locked for key \(FakeN8n.key)"))
    let why = try await failure(rig)
    #expect(why.contains("n8n tags.list: HTTP 500 serverError: database locked for key [redacted]"))
    #expect(!why.contains(FakeN8n.key))

    let rig2 = Rig()
    let t = rig2.targets(["content-generation"])
    let s = try await rig2.observe(t)
    var a = rig2.diff(t, s)[0]
    a.payload = ["body": ["name": "x", "nodes": [], "connections": [:], "settings": [:], "active": true], "active": true]
    do {
      _ = try await rig2.driver.apply(a, observed: s[t[0].id]!, external: [:], context: rig2.context)
      Issue.record("expected a 400")
    } catch let e as N8nError {
      #expect(e.status == 400 && e.reason == "badRequest" && e.operation == "workflows.create")
      #expect(
        e.description == "n8n workflows.create for Schedule/content-generation: HTTP 400 badRequest: request/body/active is read-only")
      #expect(e.reasonCode == "badRequest" && e.category == .rejected)
    }

    // A recorded id that no longer exists: nothing exists (the plan creates it again).
    let rig3 = Rig()
    rig3.loop.externals.withLock { $0[ResourceID(.schedule, "content-generation")] = [N8nDriver.ExternalKey.workflowId: "gone"] }
    let t3 = rig3.targets(["content-generation"])
    let s3 = try await rig3.observe(t3)
    #expect(s3[t3[0].id]?["workflow"] == .null)
    #expect(rig3.diff(t3, s3).keys() == ["content-generation:create:workflow"])

    // A tag made by another writer in between (409): looked up, not a failure.
    let rig4 = Rig()
    let t4 = rig4.targets(["content-generation"])
    let s4 = try await rig4.observe(t4)
    rig4.fake.state.withLock { $0.tags["tagOther"] = "ytempire" }
    _ = try await rig4.apply(rig4.diff(t4, s4), s4)
    #expect(rig4.fake.workflows(named: "ytempire/content-generation").first?["tags"] == [["id": "tagOther", "name": "ytempire"]])
  }

  @Test("list items of the wrong JSON type are a malformed answer, not \"no such workflow\" (no create is planned from them)")
  func wrongTypedItems() async throws {
    let cases: [(String, JSONValue, String)] = [
      (
        "GET /workflows", ["data": ["ytempire/content-generation"], "nextCursor": .null],
        "item 0 of the workflow list is a string, not a workflow object"
      ),
      (
        "GET /workflows", ["data": [["id": 7, "name": "ytempire/content-generation"]], "nextCursor": .null],
        "item 0 of the workflow list has no string id"
      ),
      ("GET /workflows", ["data": [], "nextCursor": 3], "nextCursor is a number, not a string"),
      ("GET /tags", ["data": [42], "nextCursor": .null], "item 0 of the tag list is a number, not a tag object"),
    ]
    for (route, body, message) in cases {
      let rig = Rig()
      rig.fake.script(route, FakeN8n.json(200, body))
      let why = try await failure(rig)
      #expect(why.contains("malformedResponse") && why.contains(message), "\(route) \(body.canonicalString): \(why)")
    }
  }

  @Test("an unresolvable API key names the secret, not a value")
  func secret() async throws {
    let rig = Rig()
    let driver = N8nDriver(
      config: N8nDriverConfig(
        endpoint: "https://n8n.test",
        apiKey: LazySecret(name: "integrations.n8n.apiKey") {
          throw SecretUnavailable(name: "integrations.n8n.apiKey", reason: "environment variable N8N_API_KEY is not set")
        }))
    let out = try await driver.observe(rig.targets(["content-generation"]), context: rig.context)
    guard case .failed(let why)? = out[ResourceID(.schedule, "content-generation")] else {
      Issue.record("expected a failure")
      return
    }
    #expect(why.contains("secretUnavailable") && why.contains("N8N_API_KEY is not set"))
    #expect(rig.fake.seen.isEmpty)
  }
}

/// Observes with `rig`'s driver and desired state against another rig's fake.
func observeWith(_ rig: Rig, fake: FakeN8n, _ targets: [ObserveTarget]) async throws -> [ResourceID: JSONValue] {
  try await rig.loop.observe(
    targets, context: DriverContext(desired: rig.index, pricing: rig.pricing, cache: MemoryCache(), client: { _ in fake }))
}

func applyWith(_ rig: Rig, fake: FakeN8n, _ actions: [Action], _ states: [ResourceID: JSONValue]) async throws -> [ResourceID: JSONValue] {
  try await rig.loop.apply(
    actions, states, context: DriverContext(desired: rig.index, pricing: rig.pricing, cache: MemoryCache(), client: { _ in fake }))
}
