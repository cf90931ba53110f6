import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Testing

/// DESIGN A10 "Identity and renames" in the engine: `ytempire.io/renamed-from` moves a resource's
/// records to its new name, and a delete of an object that still holds something is blocked.
@Suite struct RenameTests {
  static let old = ResourceID(.monitor, "old-name")
  static let new = ResourceID(.monitor, "new-name")

  /// Applies `yaml` at `revision` and records the status, as the CLI does.
  static func converge(_ rig: Rig, _ e: Engine, _ desired: [Resource], _ revision: String) async throws -> (Plan, ApplyReport) {
    let plan = try await e.plan(desired, revision: revision)
    let report = try await e.apply(plan, desired: desired)
    try StatusBook.record(plan: plan, report: report, desired: desired, store: rig.store, now: rig.clock.wallNow)
    return (plan, report)
  }

  @Test func aRenamedResourceTakesItsRecordsJournalAndStatusAndNothingIsDeleted() async throws {
    let rig = try Rig()
    let e = rig.engine()
    _ = try await Self.converge(rig, e, try resources(memoryLimit() + monitor("old-name")), "r1")
    let before = try #require(try rig.store.record(driver: "memory", id: Self.old))
    #expect(before.external == ["object": "mem-old-name"])
    #expect(try rig.store.status(Self.old) != nil)

    let renamed = try resources(memoryLimit() + monitor("new-name", annotations: "ytempire.io/renamed-from: old-name"))
    let plan = try await e.plan(renamed, revision: "r2")
    // The old name is no orphan: no delete; the object found where the old name put it matches: nothing to do.
    #expect(plan.actions.isEmpty)
    #expect(plan.count(.delete) == 0)
    #expect(!plan.resources.contains { $0.id == Self.old })
    // A plan moves nothing (a pull request's plan may never be applied).
    #expect(try rig.store.record(driver: "memory", id: Self.old)?.external == ["object": "mem-old-name"])
    #expect(try rig.store.record(driver: "memory", id: Self.new)?.external ?? [:] == [:])

    let report = try await e.apply(plan, desired: renamed)
    try StatusBook.record(plan: plan, report: report, desired: renamed, store: rig.store, now: rig.clock.wallNow)
    #expect(try rig.store.record(driver: "memory", id: Self.old) == nil)
    let moved = try #require(try rig.store.record(driver: "memory", id: Self.new))
    #expect(moved.external == ["object": "mem-old-name"])
    #expect(moved.appliedRevision == "r2")
    #expect(try rig.store.journal(limit: 100).allSatisfy { $0.resource == Self.new })
    #expect(try rig.store.status(Self.old) == nil)
    #expect(try rig.store.status(Self.new)?.id == Self.new)
    #expect(rig.driver.applied.allSatisfy { !$0.contains(":delete:") })
    #expect(!(try await e.plan(renamed, revision: "r2")).hasChanges)

    // A field changed with the rename is an update of the same object, which then bears the new name.
    let edited = try resources(memoryLimit() + monitor("newer", summary: "edited", annotations: "ytempire.io/renamed-from: new-name"))
    let p3 = try await e.plan(edited, revision: "r3")
    #expect(p3.actions.map { "\($0.action.resource) \($0.action.operation.rawValue)" } == ["Monitor/newer update"])
    // A saved plan is checked against what its resources look like now: found through the old name's records too.
    try await e.checkPlan(p3, desired: edited)
    _ = try await e.apply(p3, desired: edited)
    #expect(rig.driver.objects.keys.filter { $0.kind == .monitor } == [ResourceID(.monitor, "newer")])
    #expect(try rig.store.record(driver: "memory", id: ResourceID(.monitor, "newer"))?.external == ["object": "mem-newer"])
  }

  @Test func aPlanThatObservedTheNewNameFirstDoesNotStopTheMove() async throws {
    let rig = try Rig()
    let e = rig.engine()
    _ = try await Self.converge(rig, e, try resources(memoryLimit() + monitor("old-name")), "r1")
    // The new name was planned (observed) before, without the annotation: that record holds only an observation.
    let plain = try resources(memoryLimit() + monitor("new-name"))
    _ = try await rig.engine { $0.prune = false }.plan(plain, revision: "r2")
    #expect(try rig.store.record(driver: "memory", id: Self.new)?.observed != nil)
    let renamed = try resources(memoryLimit() + monitor("new-name", annotations: "ytempire.io/renamed-from: old-name"))
    _ = try await Self.converge(rig, e, renamed, "r3")
    #expect(try rig.store.record(driver: "memory", id: Self.new)?.external == ["object": "mem-old-name"])
    #expect(try rig.store.record(driver: "memory", id: Self.old) == nil)
  }

  @Test func aDeleteOfAnObjectThatHoldsSomethingIsBlockedUnlessForcedOrAllowed() async throws {
    let rig = try Rig()
    let e = rig.engine()
    _ = try await Self.converge(rig, e, try resources(memoryLimit() + monitor("a") + monitor("b")), "r1")
    rig.driver.holds(ResourceID(.monitor, "b"), "2 videos")
    let without = try resources(memoryLimit() + monitor("a"))
    let p = try await e.plan(without, revision: "r2")
    let d = try #require(p.actions.first { $0.action.operation == .delete })
    #expect(d.deferred?.reason == .nonEmpty)
    #expect(d.deferred?.message.hasPrefix("holds 2 videos — blocked") == true)
    #expect(p.quotas.first?.actionUnits == 0)  // not priced: it will not run
    #expect(PlanRenderer.text(p).contains("- memory: delete object  [memory.objects.delete, 5 units]  holds 2 videos — blocked"))
    #expect(PlanRenderer.summaryLine(p).hasSuffix(" 1 delete blocked."))
    #expect(PlanRenderer.markdown(p).contains("delete `object` — **blocked**: `holds 2 videos — blocked"))
    // The JSON plan carries both: what the delete holds, and why it waits.
    let read = try Plan.read(Array(p.json().utf8), file: "plan.json", key: try rig.store.planKey()).actions.first {
      $0.action.operation == .delete
    }
    #expect(read?.action.holds == "2 videos" && read?.deferred?.reason == .nonEmpty)
    let r = try await e.apply(p, desired: without)
    #expect(r.deferred == 1 && r.succeeded == 0)
    #expect(rig.driver.objects[ResourceID(.monitor, "b")] != nil)
    #expect(!rig.driver.applied.contains { $0.contains(":delete:") })

    // --force deletes it.
    let forced = rig.engine { $0.deleteNonEmpty = true }
    let pf = try await forced.plan(without, revision: "r2")
    #expect(pf.actions.allSatisfy { $0.deferred == nil })
    _ = try await forced.apply(pf, desired: without)
    #expect(rig.driver.objects[ResourceID(.monitor, "b")] == nil)
  }

  @Test func theResourcesAnnotationAllowsTheDelete() async throws {
    let rig = try Rig()
    let e = rig.engine()
    // Annotations outlive the manifest: the one recorded at the last apply is the one that counts.
    _ = try await Self.converge(
      rig, e, try resources(memoryLimit() + monitor("b", annotations: "ytempire.io/delete-nonempty: \"true\"")), "r1")
    rig.driver.holds(ResourceID(.monitor, "b"), "2 videos")
    let p = try await e.plan(try resources(memoryLimit()), revision: "r2")
    #expect(p.actions.map { $0.action.operation } == [.delete])
    #expect(p.actions.first?.deferred == nil)
  }
}
