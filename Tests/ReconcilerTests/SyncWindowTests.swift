import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Testing

@Suite("Sync windows")
struct SyncWindowTests {
  static func utc(_ s: String) -> Date {
    let f = ISO8601DateFormatter()
    return f.date(from: s)!
  }

  let nightlyDeny = SyncWindows.Window(
    kind: .deny, schedule: try! CronExpression(parsing: "0 22 * * *"), duration: 8 * 3600,
    timeZone: TimeZone(identifier: "America/Los_Angeles")!, kinds: [.channel])
  let officeAllow = SyncWindows.Window(
    kind: .allow, schedule: try! CronExpression(parsing: "0 9 * * mon-fri"), duration: 9 * 3600,
    timeZone: TimeZone(identifier: "Europe/Oslo")!, kinds: [.cdnZone], names: ["main-cdn"])

  @Test("a deny window holds its kinds while open, with its end as the ETA, in its own time zone")
  func deny() {
    let w = SyncWindows(windows: [nightlyDeny])
    let channel = ResourceID(.channel, "tech-daily")
    // 22:00 PST on 1 December is 06:00 UTC on 2 December; the window ends 8 h later.
    #expect(w.hold(channel, at: Self.utc("2026-12-02T05:59:00Z")) == nil)
    let held = w.hold(channel, at: Self.utc("2026-12-02T06:00:00Z"))
    #expect(held?.eta == Self.utc("2026-12-02T14:00:00Z"))
    #expect(held?.message.contains("deny window \"0 22 * * *\"") == true)
    #expect(w.hold(channel, at: Self.utc("2026-12-02T13:59:59Z")) != nil)
    #expect(w.hold(channel, at: Self.utc("2026-12-02T14:00:00Z")) == nil)
    // Other kinds are not held.
    #expect(w.hold(ResourceID(.monitor, "x"), at: Self.utc("2026-12-02T07:00:00Z")) == nil)
  }

  @Test("outside every allow window a resource is held until the next opening; other names are free")
  func allow() {
    let w = SyncWindows(windows: [officeAllow])
    let cdn = ResourceID(.cdnZone, "main-cdn")
    // Saturday 5 December 2026: the next opening is Monday 7 December 09:00 in Oslo (08:00 UTC).
    let sat = w.hold(cdn, at: Self.utc("2026-12-05T12:00:00Z"))
    #expect(sat?.eta == Self.utc("2026-12-07T08:00:00Z"))
    // Wednesday 2 December 10:00 Oslo (09:00 UTC) is inside.
    #expect(w.hold(cdn, at: Self.utc("2026-12-02T09:00:00Z")) == nil)
    // 18:00 Oslo is the end (09:00 + 9 h).
    #expect(w.hold(cdn, at: Self.utc("2026-12-02T17:00:00Z"))?.eta == Self.utc("2026-12-03T08:00:00Z"))
    #expect(w.hold(ResourceID(.cdnZone, "other-cdn"), at: Self.utc("2026-12-05T12:00:00Z")) == nil)
  }

  @Test("deny wins over an allow window that is open at the same time")
  func denyWins() {
    let allowAlways = SyncWindows.Window(kind: .allow, schedule: try! CronExpression(parsing: "* * * * *"), duration: 3600, timeZone: .gmt)
    let w = SyncWindows(windows: [allowAlways, nightlyDeny])
    #expect(w.hold(ResourceID(.channel, "a"), at: Self.utc("2026-12-02T07:00:00Z")) != nil)
    #expect(w.hold(ResourceID(.channel, "a"), at: Self.utc("2026-12-02T15:00:00Z")) == nil)
  }

  @Test("the plan defers what a window holds (not priced, not attempted); apply judges the window again; ignoring windows applies")
  func engine() async throws {
    let rig = try Rig()
    let desired = try resources(memoryLimit() + monitor("a") + monitor("b"))
    let always = SyncWindows(windows: [
      SyncWindows.Window(
        kind: .deny, schedule: try CronExpression(parsing: "* * * * *"), duration: 3600,
        timeZone: .gmt, kinds: [.monitor], names: ["a"])
    ])
    let held = rig.engine { $0.syncWindows = always }
    let p = try await held.plan(desired, revision: "r1")
    let a = try #require(p.actions.first { $0.action.resource.name == "a" })
    #expect(a.deferred?.reason == .syncWindow)
    #expect(a.deferred?.eta != nil)
    #expect(p.actions.first { $0.action.resource.name == "b" }?.deferred == nil)
    #expect(p.quotas.first?.actionUnits == 10)  // only b is priced
    let r = try await held.apply(p, desired: desired)
    #expect(r.succeeded == 1 && r.deferred == 1)
    #expect(rig.driver.objects.keys.map(\.name).sorted() == ["b"])
    try StatusBook.record(plan: p, report: r, desired: desired, store: rig.store, now: Date())
    #expect(try rig.store.status(ResourceID(.monitor, "a"))?.conditions.first { $0.type == .deferred }?.reason == .syncWindow)

    // A plan made without the window, applied while it holds: deferred at apply time.
    let free = try await rig.engine().plan(desired, revision: "r1")
    #expect(free.runnable.count == 1)
    let r2 = try await held.apply(free, desired: desired)
    #expect(r2.deferred == 1 && r2.succeeded == 0)
    // --force: windows ignored.
    let forced = rig.engine {
      $0.syncWindows = always
      $0.ignoreSyncWindows = true
    }
    let r3 = try await forced.apply(try await forced.plan(desired, revision: "r1"), desired: desired)
    #expect(r3.succeeded == 1)
    #expect(rig.driver.objects.keys.map(\.name).sorted() == ["a", "b"])
  }
}
