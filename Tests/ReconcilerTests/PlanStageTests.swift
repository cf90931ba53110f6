import DriverKit
import EmpireModel
import Foundation
import PlanFile
import Resilience
import Testing

@testable import Reconciler

/// Each stage of `Engine.plan` on its own (PlanStages.swift): no state store, no engine.
@Suite("Plan stages")
struct PlanStageTests {
  static let now = Date(timeIntervalSince1970: 1_780_000_000)
  static func id(_ n: String) -> ResourceID { ResourceID(.monitor, n) }

  /// A resource whose desired digest is `digest`, with a record applied at `applied` and
  /// observed `age` seconds ago (nil: never observed).
  static func item(_ n: String, digest: String = "d1", applied: String? = "d1", age: Double? = 60) -> PlanItem {
    let rec = ResourceRecord(
      driver: "memory", id: id(n), appliedDigest: applied, observed: age == nil ? nil : .object(["n": .string(n)]),
      observedAt: age.map { now.addingTimeInterval(-$0) })
    return PlanItem(id: id(n), desired: .object(["n": .string(n)]), record: rec, resource: nil, digest: digest)
  }

  // MARK: observe

  @Test("refresh changed: unchanged and fresh comes from the store; changed, never observed and too old are observed")
  func selectChanged() {
    let items = [
      Self.item("fresh"), Self.item("changed", digest: "d2"), Self.item("never", age: nil), Self.item("old", age: 7200),
      Self.item("new", applied: nil),
    ]
    let s = ObservationStage.select(items, refresh: .changed, free: false, maxAge: .seconds(3600), now: Self.now) { _ in false }
    #expect(s.observe.map(\.id.name) == ["changed", "never", "old", "new"])
    #expect(Array(s.stored.keys) == [Self.id("fresh")])
    #expect(s.oldestStoredAge == 60)
  }

  @Test("a free observation is made every time; all observes everything; none only what was never observed")
  func selectModes() {
    let items = [Self.item("a"), Self.item("b", age: 30), Self.item("never", age: nil)]
    let free = ObservationStage.select(items, refresh: .changed, free: true, maxAge: .seconds(3600), now: Self.now) { _ in false }
    #expect(free.observe.count == 3 && free.stored.isEmpty && free.oldestStoredAge == nil)
    let all = ObservationStage.select(items, refresh: .all, free: false, maxAge: .seconds(3600), now: Self.now) { _ in false }
    #expect(all.observe.count == 3)
    let none = ObservationStage.select(
      [Self.item("a", digest: "changed"), Self.item("never", age: nil)], refresh: .none, free: false,
      maxAge: .seconds(1), now: Self.now
    ) { _ in false }
    #expect(none.observe.map(\.id.name) == ["never"])
    #expect(none.stored.keys.map(\.name) == ["a"])
  }

  @Test("what an interrupted apply touched, or a rename moved, is observed whatever the mode")
  func selectTouched() {
    let items = [Self.item("a"), Self.item("b")]
    let s = ObservationStage.select(items, refresh: .none, free: false, maxAge: .seconds(3600), now: Self.now) { $0.name == "b" }
    #expect(s.observe.map(\.id.name) == ["b"])
    #expect(s.stored.keys.map(\.name) == ["a"])
  }

  // MARK: diff

  static func resource(_ n: String, annotations: String = "") throws -> Resource {
    try #require(try resources(monitor(n, annotations: annotations)).first)
  }

  static let driver = InMemoryDriver(kinds: [.monitor])
  static func blank(_ n: String) -> Plan.ResourceChange {
    Plan.ResourceChange(
      id: id(n), change: .none, driftedFields: [], driftReportOnly: false, pruneHeld: [], drivers: [], observationError: nil, findings: [])
  }
  static func pricing() throws -> Pricing { Pricing(DesiredIndex(try resources(memoryLimit()))) }

  static func diffItem(_ r: Resource?, id n: String, applied: String?, digest: String?) -> PlanItem {
    let desired = r.map { driver.desired($0, in: DesiredIndex([])) }
    let rec = applied.map { ResourceRecord(driver: "memory", id: id(n), appliedDigest: $0, external: ["object": n]) }
    return PlanItem(id: id(n), desired: desired, record: rec, resource: r, digest: digest)
  }

  @Test("a new resource is a create from git; a failed observation plans nothing and says why")
  func diffCreateAndFailure() throws {
    let r = try Self.resource("a")
    let it = Self.diffItem(r, id: "a", applied: nil, digest: "d1")
    let created = DiffStage.resolve(
      Self.driver, it, observed: .null, failure: nil, adopted: [:], change: Self.blank("a"),
      pricing: try Self.pricing(), options: EngineOptions(), now: Self.now)
    #expect(created.change.change == .create && created.change.drivers == ["memory"])
    #expect(created.actions.count == 1 && created.actions[0].fromGit && created.actions[0].deferred == nil)
    #expect(created.basis == .null)

    var earlier = Self.blank("a")
    earlier.observationError = "first driver failed"
    let failed = DiffStage.resolve(
      Self.driver, it, observed: nil, failure: "timed out", adopted: [:], change: earlier,
      pricing: try Self.pricing(), options: EngineOptions(), now: Self.now)
    #expect(failed.actions.isEmpty && failed.basis == nil)
    #expect(failed.change.observationError == "first driver failed; timed out")
  }

  @Test("drift on an applied resource is recorded; with drift: report it is reported, not corrected")
  func diffDrift() throws {
    let observed: JSONValue = .object(["name": .string("a"), "labels": .object([:]), "extra": .string("hand-made")])
    for (annotations, corrected) in [("", true), ("ytempire.io/drift: report", false)] {
      let r = try Self.resource("a", annotations: annotations)
      let it = Self.diffItem(r, id: "a", applied: "same", digest: "same")
      let out = DiffStage.resolve(
        Self.driver, it, observed: observed, failure: nil, adopted: [:], change: Self.blank("a"),
        pricing: try Self.pricing(), options: EngineOptions(), now: Self.now)
      #expect(!out.change.driftedFields.isEmpty, "\(annotations)")
      #expect(out.change.driftReportOnly == !corrected)
      #expect(out.actions.isEmpty == !corrected)
      if corrected { #expect(out.change.change == .update && out.actions.allSatisfy { !$0.fromGit }) }
    }
  }

  @Test("an orphan is deleted unless pruning is off, and a delete of what holds content is blocked")
  func diffOrphan() throws {
    let it = Self.diffItem(nil, id: "gone", applied: "d", digest: nil)
    let observed: JSONValue = .object(["name": .string("gone"), "labels": .object([:])])
    let deleted = DiffStage.resolve(
      Self.driver, it, observed: observed, failure: nil, adopted: [:], change: Self.blank("gone"),
      pricing: try Self.pricing(), options: EngineOptions(), now: Self.now)
    #expect(deleted.change.change == .delete && deleted.actions.map(\.action.operation) == [.delete])

    var noPrune = EngineOptions()
    noPrune.prune = false
    let held = DiffStage.resolve(
      Self.driver, it, observed: observed, failure: nil, adopted: [:], change: Self.blank("gone"),
      pricing: try Self.pricing(), options: noPrune, now: Self.now)
    #expect(held.actions.isEmpty && held.change.change == .none && held.change.pruneHeld.count == 1)

    Self.driver.holds(Self.id("gone"), "3 videos")
    defer { Self.driver.holds(Self.id("gone"), nil) }
    let blocked = DiffStage.resolve(
      Self.driver, it, observed: observed, failure: nil, adopted: [:], change: Self.blank("gone"),
      pricing: try Self.pricing(), options: EngineOptions(), now: Self.now)
    #expect(blocked.actions.first?.deferred?.reason == .nonEmpty)
  }

  @Test("two drivers' changes of one resource merge: delete wins, then update")
  func merge() {
    #expect(DiffStage.merge(.none, .create) == .create)
    #expect(DiffStage.merge(.create, .none) == .create)
    #expect(DiffStage.merge(.create, .update) == .update)
    #expect(DiffStage.merge(.update, .delete) == .delete)
    #expect(DiffStage.merge(.create, .create) == .create)
  }

  // MARK: price

  static func budget(units: Int, spent: Int = 0) throws -> QuotaLedger.Budget {
    let limit = try #require(try resources(memoryLimit(units: units)).first)
    guard case .rateLimit(let spec) = limit.spec, let quota = spec.quota else { throw CancellationError() }
    let ledger = try QuotaLedger(service: "memory", quota: quota, clock: ManualClock(wall: now))
    for _ in 0..<spent { _ = try ledger.charge("objects.list") }  // 1 unit each
    return ledger.budget
  }

  static func put(_ n: String, units: Int, channel: String? = nil) -> Plan.PlannedAction {
    let call = PlannedCall(service: "memory", operation: "objects.put", units: units, quota: "memory-api", channel: channel)
    return Plan.PlannedAction(
      action: Action(
        driver: "memory", resource: id(n), operation: .update, key: "object", summary: "put \(n)",
        changes: [], calls: [call]), deferred: nil, fromGit: true)
  }

  @Test("actions are priced in order until the quota cannot pay; the rest wait for the reset")
  func priceQuota() throws {
    var actions = [Self.put("a", units: 40), Self.put("b", units: 70), Self.put("c", units: 10)]
    let b = try Self.budget(units: 100)
    let r = PriceStage.price(&actions, budgets: ["memory-api": b], shares: [:], syncWindows: nil, now: Self.now)
    #expect(actions.map { $0.deferred?.reason } == [nil, .quota, nil])
    #expect(actions[1].deferred?.message == "needs 70 units of the memory-api quota, 60 available until it resets")
    #expect(actions[1].deferred?.eta == b.resetsAt)
    #expect(r == PriceStage.Result(actionUnits: ["memory-api": 50], deferredUnits: ["memory-api": 70]))
  }

  @Test("a channel's quotaShare caps what its actions may spend")
  func priceShare() throws {
    var actions = [Self.put("a", units: 30, channel: "x"), Self.put("b", units: 30, channel: "x"), Self.put("c", units: 30, channel: "y")]
    let r = PriceStage.price(
      &actions, budgets: ["memory-api": try Self.budget(units: 100)], shares: ["x": 0.5], syncWindows: nil, now: Self.now)
    #expect(actions.map { $0.deferred?.reason } == [nil, .quota, nil])
    #expect(r.actionUnits == ["memory-api": 60])
  }

  @Test("a sync window holds an action unpriced; what was already deferred is not priced")
  func priceWindowAndDeferred() throws {
    let deny = SyncWindows(windows: [
      SyncWindows.Window(
        kind: .deny, schedule: try CronExpression(parsing: "* * * * *"), duration: 3600,
        timeZone: .gmt, kinds: [.monitor], names: ["a"])
    ])
    var blocked = Self.put("c", units: 10)
    blocked.deferred = Plan.Deferral(reason: .nonEmpty, message: "holds 2 videos", eta: nil)
    var actions = [Self.put("a", units: 10), Self.put("b", units: 10), blocked]
    let r = PriceStage.price(&actions, budgets: ["memory-api": try Self.budget(units: 100)], shares: [:], syncWindows: deny, now: Self.now)
    #expect(actions.map { $0.deferred?.reason } == [.syncWindow, nil, .nonEmpty])
    #expect(r == PriceStage.Result(actionUnits: ["memory-api": 10], deferredUnits: [:]))
    // --force: no windows.
    var forced = [Self.put("a", units: 10)]
    _ = PriceStage.price(&forced, budgets: ["memory-api": try Self.budget(units: 100)], shares: [:], syncWindows: nil, now: Self.now)
    #expect(forced[0].deferred == nil)
  }

  @Test("spent units and the emergency reserve count against what is available")
  func priceSpent() throws {
    var actions = [Self.put("a", units: 30)]
    _ = PriceStage.price(
      &actions, budgets: ["memory-api": try Self.budget(units: 100, spent: 80)], shares: [:], syncWindows: nil, now: Self.now)
    #expect(actions[0].deferred?.message == "needs 30 units of the memory-api quota, 20 available until it resets")
  }

  // MARK: safety

  static func changes(deletes: Int, updates: Int, creates: Int = 0) -> [Plan.ResourceChange] {
    var out: [Plan.ResourceChange] = []
    for (kind, n) in [(Plan.ResourceChange.Change.delete, deletes), (.update, updates), (.create, creates)] {
      for i in 0..<n {
        var c = blank("\(kind)-\(i)")
        c.change = kind
        out.append(c)
      }
    }
    return out
  }

  @Test("more deletes or updates than the thresholds allow over managed resources is a violation")
  func safety() {
    let o = EngineOptions()  // 30% deletes, 50% updates, from 10 managed
    #expect(SafetyStage.check(Self.changes(deletes: 3, updates: 5), managed: 10, options: o).isEmpty)
    let v = SafetyStage.check(Self.changes(deletes: 4, updates: 6), managed: 10, options: o)
    #expect(v.map(\.rule) == ["maxDeletePercent", "maxUpdatePercent"])
    #expect(v[0].message == "4 of 10 managed resources would be deleted (40%), more than maxDeletePercent 30%; use --force to apply anyway")
    // Fewer managed resources than minExisting: no thresholds (a fresh empire).
    #expect(SafetyStage.check(Self.changes(deletes: 9, updates: 0), managed: 9, options: o).isEmpty)
    // Creates never count.
    #expect(SafetyStage.check(Self.changes(deletes: 0, updates: 0, creates: 100), managed: 10, options: o).isEmpty)
  }
}
