import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Resilience
import Testing
import YAMLKit

@Suite struct EngineTests {
  @Test func createThenNothingToDoWithoutObservingAgain() async throws {
    let rig = try Rig()
    let desired = try resources(memoryLimit() + monitor("a") + monitor("b"))
    let e = rig.engine()
    let p1 = try await e.plan(desired, revision: "r1")
    #expect(p1.count(.create) == 2)
    #expect(p1.actions.map(\.action.operation) == [.create, .create])
    #expect(p1.observation.observedNow == 2 && p1.observation.fromStore == 0)
    #expect(p1.quotas.first?.actionUnits == 20)
    let r = try await e.apply(p1, desired: desired)
    #expect(r.succeeded == 2 && r.failed == 0)
    #expect(rig.driver.objects.count == 2)
    #expect(try rig.store.meta("lastAppliedRevision") == "r1")

    let observedBefore = rig.driver.observedLog.count
    let p2 = try await e.plan(desired, revision: "r1")
    #expect(!p2.hasChanges)
    #expect(p2.count(.none) == 2)
    // Fresh observations from the apply are used: nothing is observed, nothing is spent.
    #expect(p2.observation.observedNow == 0 && p2.observation.fromStore == 2)
    #expect(rig.driver.observedLog.count == observedBefore)
    #expect(p2.quotas.first?.observationUnits == 0)
  }

  @Test func onlyTheChangedResourceIsObservedAndUpdated() async throws {
    let rig = try Rig()
    let e = rig.engine()
    let v1 = try resources(memoryLimit() + monitor("a") + monitor("b") + monitor("c"))
    _ = try await e.apply(try await e.plan(v1, revision: "r1"), desired: v1)
    let v2 = try resources(memoryLimit() + monitor("a") + monitor("b", summary: "changed") + monitor("c"))
    let before = rig.driver.observedLog.count
    let p = try await e.plan(v2, revision: "r2")
    #expect(p.observation.observedNow == 1 && p.observation.fromStore == 2)
    #expect(Array(rig.driver.observedLog.dropFirst(before)) == [ResourceID(.monitor, "b")])
    #expect(p.actions.count == 1)
    let a = try #require(p.actions.first?.action)
    #expect(a.operation == .update && a.resource == ResourceID(.monitor, "b"))
    #expect(a.changes == [FieldChange(path: "summary", old: "s", new: "changed")])
    #expect(p.count(.update) == 1 && p.count(.none) == 2)
  }

  @Test func refreshAllFindsDriftAndReportOnlyLeavesIt() async throws {
    let rig = try Rig()
    let e = rig.engine()
    let desired = try resources(memoryLimit() + monitor("a") + monitor("b", annotations: "ytempire.io/drift: report"))
    _ = try await e.apply(try await e.plan(desired, revision: "r1"), desired: desired)
    rig.driver.setObject(ResourceID(.monitor, "a"), ["summary": "hand edit", "severity": "warning"])
    rig.driver.setObject(ResourceID(.monitor, "b"), ["summary": "hand edit", "severity": "warning"])
    // Within observeMaxAge, the default refresh uses the store and sees no drift.
    #expect(!(try await e.plan(desired, revision: "r1")).hasChanges)
    let all = rig.engine { $0.refresh = .all }
    let p = try await all.plan(desired, revision: "r1")
    let a = try #require(p.resources.first { $0.id.name == "a" })
    let b = try #require(p.resources.first { $0.id.name == "b" })
    #expect(a.driftedFields == ["summary"] && !a.driftReportOnly && a.change == .update)
    #expect(b.driftedFields == ["summary"] && b.driftReportOnly && b.change == .none)
    #expect(p.actions.map(\.action.resource.name) == ["a"])
    #expect(p.actions.first?.fromGit == false)
    _ = try await all.apply(p, desired: desired)
    #expect(rig.driver.objects[ResourceID(.monitor, "a")]?["summary"] == "s")
    #expect(rig.driver.objects[ResourceID(.monitor, "b")]?["summary"] == "hand edit")
  }

  @Test func removedResourcesArePrunedUnlessPruningIsOff() async throws {
    let rig = try Rig()
    let e = rig.engine()
    let v1 = try resources(memoryLimit() + monitor("a") + monitor("b") + monitor("keep", annotations: "ytempire.io/prune: \"false\""))
    _ = try await e.apply(try await e.plan(v1, revision: "r1"), desired: v1)
    let v2 = try resources(memoryLimit() + monitor("a"))
    let p = try await e.plan(v2, revision: "r2")
    #expect(p.count(.delete) == 1)
    #expect(p.actions.map { "\($0.action.operation) \($0.action.resource.name)" } == ["delete b"])
    // The annotation outlives the manifest: kept, and the plan says so.
    #expect(p.resources.first { $0.id.name == "keep" }?.pruneHeld == ["object"])
    _ = try await e.apply(p, desired: v2)
    #expect(Set(rig.driver.objects.keys.map(\.name)) == ["a", "keep"])
    #expect(try rig.store.record(driver: "memory", id: ResourceID(.monitor, "b")) == nil)

    let noPrune = rig.engine { $0.prune = false }
    let v3 = try resources(memoryLimit())
    let p3 = try await noPrune.plan(v3, revision: "r3")
    #expect(p3.actions.isEmpty)
    #expect(p3.resources.first { $0.id.name == "a" }?.pruneHeld == ["object"])
  }

  @Test func safetyThresholdRefusesUnlessForced() async throws {
    let rig = try Rig()
    let e = rig.engine {
      $0.maxDeletePercent = 30
      $0.minExisting = 3
    }
    let names = ["a", "b", "c", "d"]
    let v1 = try resources(memoryLimit() + names.map { monitor($0) }.joined())
    _ = try await e.apply(try await e.plan(v1, revision: "r1"), desired: v1)
    let v2 = try resources(memoryLimit() + monitor("a"))
    let p = try await e.plan(v2, revision: "r2")
    #expect(p.safety.map(\.rule) == ["maxDeletePercent"])
    #expect(p.safety.first?.message.contains("3 of 4") == true)
    await #expect(throws: EngineError.self) { try await e.apply(p, desired: v2) }
    #expect(rig.driver.objects.count == 4)  // nothing was deleted
    let r = try await e.apply(p, desired: v2, force: true)
    #expect(r.succeeded == 3)
    #expect(rig.driver.objects.count == 1)
  }

  @Test func actionsThatDoNotFitTheQuotaAreDeferredWithTheResetAndNeverAttempted() async throws {
    let rig = try Rig()
    // 35 units: observing 4 resources costs 1, three puts of 10 fit, the fourth does not.
    let desired = try resources(memoryLimit(units: 35, put: 10) + ["a", "b", "c", "d"].map { monitor($0) }.joined())
    let e = rig.engine()
    let p = try await e.plan(desired, revision: "r1")
    let deferred = p.actions.filter { $0.deferred != nil }
    #expect(deferred.count == 1)
    #expect(deferred.first?.action.resource.name == "d")
    #expect(deferred.first?.deferred?.reason == .quota)
    // The quota resets at 00:00 UTC after the manual clock's time.
    let eta = try #require(deferred.first?.deferred?.eta)
    #expect(eta > rig.clock.wallNow && eta.timeIntervalSince(rig.clock.wallNow) <= 86400)
    #expect(p.quotas.first?.observationUnits == 1 && p.quotas.first?.actionUnits == 30 && p.quotas.first?.deferredUnits == 10)
    let sleepsBefore = rig.clock.sleeps.count
    let r = try await e.apply(p, desired: desired)
    #expect(r.succeeded == 3 && r.deferred == 1)
    #expect(!rig.driver.applied.contains { $0.contains("Monitor/d") })
    #expect(rig.clock.sleeps.count == sleepsBefore)  // nothing slept until the reset
    #expect(try rig.store.meta("lastAppliedRevision") == nil)
    #expect(try rig.store.meta("lastAttemptedRevision") == "r1")
  }

  @Test func oneFailureDoesNotStopIndependentResources() async throws {
    let rig = try Rig()
    let desired = try resources(memoryLimit() + monitor("a") + monitor("b") + monitor("c"))
    rig.driver.failApply(ResourceID(.monitor, "b"), "boom")
    let e = rig.engine()
    let r = try await e.apply(try await e.plan(desired, revision: "r1"), desired: desired)
    #expect(r.succeeded == 2 && r.failed == 1)
    #expect(r.outcomes.first { $0.result == .failed }?.message == "boom")
    // b is not recorded as applied: the next plan creates it again.
    rig.driver.failApply(ResourceID(.monitor, "b"), nil)
    let p2 = try await e.plan(desired, revision: "r1")
    #expect(p2.actions.map(\.action.resource.name) == ["b"])
  }

  @Test func anInterruptedActionIsObservedAgainAndClosed() async throws {
    let rig = try Rig()
    let e = rig.engine()
    let desired = try resources(memoryLimit() + monitor("a") + monitor("b"))
    _ = try await e.apply(try await e.plan(desired, revision: "r1"), desired: desired)
    // A crash after the journal entry, before its completion.
    let p = try await e.plan(try resources(memoryLimit() + monitor("a", summary: "x") + monitor("b")), revision: "r2")
    _ = try rig.store.beginAction(run: "crashed", action: try #require(p.actions.first?.action), at: rig.clock.wallNow)
    #expect(try rig.store.openJournalEntries().count == 1)
    let before = rig.driver.observedLog.count
    let again = try await e.plan(desired, revision: "r1")
    #expect(rig.driver.observedLog.dropFirst(before).contains(ResourceID(.monitor, "a")))
    let r = try await e.apply(again, desired: desired)
    #expect(r.interruptedRecovered == 1)
    #expect(try rig.store.openJournalEntries().isEmpty)
    #expect(try rig.store.journal(limit: 10).contains { $0.result == "interrupted" })
  }

  @Test func planFilesRoundTripAndRefuseTamperingAndStaleness() async throws {
    let rig = try Rig()
    let e = rig.engine()
    let key = try rig.store.planKey()
    #expect(try rig.store.planKey() == key, "one key per state store")
    let desired = try resources(memoryLimit() + monitor("a"))
    let p = try await e.plan(desired, revision: "r1")
    #expect(p.digest.hasPrefix("hmac-sha256:"))
    let bytes = Array(p.json().utf8)
    let back = try Plan.read(bytes, file: "plan.json", key: key)
    #expect(back == p)
    // Null values in changes (a driver's "none") and nested nulls read back to the same digest.
    var withNulls = p
    withNulls.actions[0].action.changes.append(FieldChange(path: "x.sha256", old: .null, new: ["a": .null, "b": [.null, .double(1.5)]]))
    withNulls.seal(key: key)
    #expect(try Plan.read(Array(withNulls.json().utf8), file: "plan.json", key: key).digest == withNulls.digest)
    let tampered = p.json().replacingOccurrences(of: "\"r1\"", with: "\"r9\"")
    #expect(throws: PlanError.self) { try Plan.read(Array(tampered.utf8), file: "plan.json", key: key) }
    #expect(throws: PlanError.self) { try Plan.read(Array("{\"version\": 7}".utf8), file: "plan.json", key: key) }
    #expect(throws: PlanError.self) { try Plan.read(Array("nonsense".utf8), file: "plan.json", key: key) }
    // Edited and sealed again by someone without this state's key (or made against another state).
    var resealed = p
    resealed.actions[0].action.summary = "edited"
    resealed.seal(key: Array(repeating: 7, count: 32))
    let refused = #expect(throws: PlanError.self) { try Plan.read(Array(resealed.json().utf8), file: "plan.json", key: key) }
    #expect(refused?.message.contains("plan was not made here or was edited") == true)
    try await e.checkPlan(back, desired: desired)
    rig.driver.setObject(ResourceID(.monitor, "a"), ["summary": "made by hand"])
    await #expect(throws: EngineError.self) { try await e.checkPlan(back, desired: desired) }
  }

  @Test func applyRechecksAPlanFileAgainstTheDesiredStateAndTheStore() async throws {
    // A plan sealed with the right key (a leaked key, a bug) still asks nothing the desired
    // state and the store do not call for.
    let rig = try Rig()
    let e = rig.engine()
    let key = try rig.store.planKey()
    let desired = try resources(memoryLimit() + monitor("a") + monitor("b"))
    _ = try await e.apply(try await e.plan(desired, revision: "r1"), desired: desired)
    let v2 = try resources(memoryLimit() + monitor("a", summary: "new") + monitor("b"))
    let p = try await e.plan(v2, revision: "r2")
    try await e.checkPlan(p, desired: v2)
    #expect(p.actions.count == 1)

    func forged(_ edit: (inout Plan) -> Void) -> Plan {
      var f = p
      edit(&f)
      f.seal(key: key)
      return f
    }
    // Another payload for the planned action.
    let payload = forged { $0.actions[0].action.payload = ["summary": "attacker's text"] }
    let why = await #expect(throws: EngineError.self) { try await e.checkPlan(payload, desired: v2) }
    #expect(why?.message.contains("not one the desired state and the state store call for") == true, "\(String(describing: why))")
    // A delete of something the store does not record as owned.
    var delete = p.actions[0]
    delete.action.operation = .delete
    delete.action.resource = ResourceID(.monitor, "not-ours")
    let extra = forged { $0.actions.append(delete) }
    await #expect(throws: EngineError.self) { try await e.checkPlan(extra, desired: v2) }
    // A delete of an owned, still desired resource.
    var deleteB = p.actions[0]
    deleteB.action.operation = .delete
    deleteB.action.resource = ResourceID(.monitor, "b")
    await #expect(throws: EngineError.self) { try await e.checkPlan(forged { $0.actions.append(deleteB) }, desired: v2) }
    // Marking a resource applied at a digest it does not have.
    let digests = forged { $0.desiredDigests = $0.desiredDigests.mapValues { _ in String(repeating: "0", count: 64) } }
    await #expect(throws: EngineError.self) { try await e.checkPlan(digests, desired: v2) }
    // Adopting an id observation does not find.
    let adopt = forged { $0.adopted[DriverResourceKey("memory", ResourceID(.monitor, "b"))] = ["object": "someone-elses"] }
    await #expect(throws: EngineError.self) { try await e.checkPlan(adopt, desired: v2) }
    #expect(rig.driver.objects[ResourceID(.monitor, "b")] != nil)
  }

  @Test func targetsLimitThePlan() async throws {
    let rig = try Rig()
    let e = rig.engine { $0.targets = [ResourceID(.monitor, "b")] }
    let desired = try resources(memoryLimit() + monitor("a") + monitor("b"))
    let p = try await e.plan(desired, revision: "r1")
    #expect(p.actions.map(\.action.resource.name) == ["b"])
    #expect(p.targets == [ResourceID(.monitor, "b")])
  }

  @Test func unconfiguredIntegrationsAreListedPerResource() async throws {
    let rig = try Rig()
    var o = EngineOptions()
    o.minExisting = 3
    let e = Engine(
      drivers: [rig.driver], store: rig.store, transport: NullTransport(),
      unconfigured: [UnconfiguredIntegration(name: "prometheus", kinds: [.monitor], reason: "no prometheus entry in the configuration")],
      options: o, clock: rig.clock)
    let p = try await e.plan(try resources(memoryLimit() + monitor("a")), revision: "r1")
    #expect(p.unreconciled.map { "\($0.id) \($0.integration)" } == ["Monitor/a prometheus"])
    #expect(PlanRenderer.text(p).contains("Monitor/a: prometheus — no prometheus entry"))
  }

  @Test func oneWriterPerStateDirectory() throws {
    let dir = tempDir()
    let lock = try StateDirectoryLock(stateDir: dir)
    do {
      _ = try StateDirectoryLock(stateDir: dir)
      Issue.record("a second lock was granted")
    } catch let e as StateStoreError {
      #expect(e.message.contains("pid \(getpid())"))
    }
    _ = lock
  }

  @Test func textOutputShowsFieldChangesAndTheSummaryLine() async throws {
    let rig = try Rig()
    let e = rig.engine()
    let desired = try resources(memoryLimit() + monitor("a"))
    let p = try await e.plan(desired, revision: "main@sha1:abc")
    let t = PlanRenderer.text(p)
    #expect(t.contains("+ Monitor/a"))
    #expect(t.contains("summary: (none) → \"s\""))
    #expect(t.contains("Plan: 1 to create, 0 to update, 0 to delete, 0 unchanged. memory quota: 10 units (1% of daily), observing cost 1."))
    #expect(!t.contains("\u{1B}["))
    #expect(PlanRenderer.text(p, style: .init(color: true)).contains("\u{1B}[32m"))
    let md = PlanRenderer.markdown(p)
    #expect(md.contains("| ➕ | `Monitor/a` | `memory` |"))
  }
}

@Suite struct StatusAndStoreTests {
  @Test func statusFilesAreEmittedByLibyamlAndReadBack() async throws {
    let rig = try Rig()
    let e = rig.engine()
    let desired = try resources(memoryLimit(units: 25) + monitor("a") + monitor("b") + monitor("c", summary: "\"needs: quoting #1\""))
    let plan = try await e.plan(desired, revision: "main@sha1:1234")
    let report = try await e.apply(plan, desired: desired)
    #expect(report.deferred == 1)  // 25 units: one observation call, two puts; the third waits for the reset
    try StatusBook.record(plan: plan, report: report, desired: desired, store: rig.store, now: rig.clock.wallNow)
    let files = try StatusBook.files(store: rig.store, quotas: try StatusBook.quotas(desired: desired, store: rig.store, clock: rig.clock))
    #expect(Set(files.keys) == ["monitor/a.yaml", "monitor/b.yaml", "monitor/c.yaml", "ratelimit/memory-api.yaml", "summary.yaml"])
    for (path, bytes) in files {
      let loaded = YAMLLoader.load(bytes, file: path)
      #expect(loaded.errors.isEmpty, "\(path)")
      #expect(loaded.documents.count == 1)
    }
    func root(_ path: String) throws -> YAMLNode {
      let bytes = try #require(files[path])
      return try #require(YAMLLoader.load(bytes, file: path).documents.first?.root)
    }
    let a = try root("monitor/a.yaml")
    #expect(a["kind"]?.scalarText == "MonitorStatus")
    let status = try #require(a["status"])
    #expect(status["lastAppliedRevision"]?.scalarText == "main@sha1:1234")
    let conditions = try #require(status["conditions"]?.sequenceItems)
    #expect(conditions.first?["type"]?.scalarText == "Ready" && conditions.first?["status"]?.scalarText == "True")
    #expect(status["lastActions"]?.sequenceItems?.first?["quotaUnits"]?.scalarText == "10")
    // The deferred one says so, with the reset as its ETA, and was never applied.
    let deferredName = try #require(report.outcomes.first { $0.result == .deferred }?.action.resource.name)
    let d = try #require(try root("monitor/\(deferredName).yaml")["status"])
    let dc = try #require(d["conditions"]?.sequenceItems)
    #expect(
      dc.contains {
        $0["type"]?.scalarText == "Deferred" && $0["status"]?.scalarText == "True" && ($0["message"]?.scalarText ?? "").contains("eta ")
      })
    #expect(d["lastAppliedRevision"]?.isPlainNull == true)
    let summary = try #require(try root("summary.yaml")["status"])
    #expect(summary["resources"]?["deferred"]?.scalarText == "1")
    #expect(summary["quota"]?.sequenceItems?.first?["used"]?.scalarText == "21")

    // An idle second run changes no file (no status commit per poll).
    let p2 = try await e.plan(desired, revision: "main@sha1:1234")
    let r2 = try await e.apply(p2, desired: desired)
    try StatusBook.record(plan: p2, report: r2, desired: desired, store: rig.store, now: rig.clock.wallNow.addingTimeInterval(60))
    let again = try StatusBook.files(store: rig.store, quotas: try StatusBook.quotas(desired: desired, store: rig.store, clock: rig.clock))
    #expect(again["monitor/a.yaml"] == files["monitor/a.yaml"])
  }

  @Test func quotaWindowsAndCachedValuesSurviveAReopen() async throws {
    let rig = try Rig()
    let desired = try resources(memoryLimit() + monitor("a"))
    _ = try await rig.engine().apply(try await rig.engine().plan(desired, revision: "r1"), desired: desired)
    let reopened = try SQLiteStateStore(stateDir: rig.dir)
    let q = try StatusBook.quotas(desired: desired, store: reopened, clock: rig.clock)
    #expect(q.map(\.spent) == [11])  // one observation call and one put
    try reopened.setValue("youtube.token.x", "ya29.cached", expires: Date(timeIntervalSince1970: 2_000_000_000))
    let third = try SQLiteStateStore(stateDir: rig.dir)
    #expect(try third.value("youtube.token.x")?.value == "ya29.cached")
    var st = stat()
    #expect(stat(rig.dir + "/state.sqlite", &st) == 0)
    #expect(st.st_mode & 0o077 == 0)  // owner only: it holds cached access tokens
  }
}
