import DriverKit
import EmpireModel
import Foundation
import PlanFile
import Resilience

// `Engine.plan` in four stages: observe (which resources are observed now, which come from the
// store), diff (one resource's observation → its change and actions), price (actions against
// what the quota allows now) and safety (the thresholds over managed resources). Each stage
// but the observation's calls is pure and tested on its own (PlanStageTests).

/// One resource as one driver sees it during a plan.
struct PlanItem: Sendable {
  var id: ResourceID
  /// The driver's desired form; nil when the resource left the repository (an orphan record).
  var desired: JSONValue?
  var record: ResourceRecord?
  var resource: Resource?
  /// sha256 of `desired`'s canonical form.
  var digest: String?
}

/// Stage 1: which resources are observed now and which are taken from the state store.
enum ObservationStage {
  struct Selection: Sendable {
    var observe: [PlanItem] = []
    var stored: [ResourceID: JSONValue] = [:]
    /// Age in seconds of the oldest stored observation used.
    var oldestStoredAge: Double?
  }

  /// - Parameters:
  ///   - free: observing this driver's resources costs no quota unit: with `refresh: changed`
  ///     they are observed every time.
  ///   - touched: an interrupted apply touched it, or it was renamed: it is observed whatever the mode.
  static func select(
    _ items: [PlanItem], refresh: RefreshMode, free: Bool, maxAge: Duration, now: Date,
    touched: (ResourceID) -> Bool
  ) -> Selection {
    var s = Selection()
    for it in items {
      let rec = it.record
      let age = rec?.observedAt.map { now.timeIntervalSince($0) }
      let hasStored = rec?.observed != nil && age != nil
      var must: Bool
      switch refresh {
      case .all: must = true
      case .none: must = !hasStored
      case .stored: must = false
      case .changed:
        must = free || !hasStored || rec?.appliedDigest != it.digest || (age ?? .infinity) > maxAge.timeInterval
      }
      if touched(it.id) && refresh != .stored { must = true }
      if must {
        s.observe.append(it)
      } else if let o = rec?.observed {
        s.stored[it.id] = o
        if let age { s.oldestStoredAge = max(s.oldestStoredAge ?? 0, age) }
      }
    }
    return s
  }
}

/// Stage 2: one resource's observation (or the reason it has none) → its change and actions.
enum DiffStage {
  struct Result {
    var change: Plan.ResourceChange
    var actions: [Plan.PlannedAction] = []
    /// The observation the plan's actions rest on (for the plan's observation digest).
    var basis: JSONValue?
  }

  /// - Parameters:
  ///   - change: what earlier drivers of the same resource planned for it.
  ///   - adopted: ids found while observing, added to the recorded ones.
  static func resolve(
    _ driver: any Driver, _ item: PlanItem, observed: JSONValue?, failure: String?, adopted: [String: String],
    change: Plan.ResourceChange, pricing: Pricing, options: EngineOptions, now: Date
  ) -> Result {
    var c = change
    if let why = failure {
      c.observationError = c.observationError.map { $0 + "; " + why } ?? why
      return Result(change: c)
    }
    guard let obs = observed else { return Result(change: c) }
    var ext = item.record?.external ?? [:]
    for (k, v) in adopted where ext[k] == nil { ext[k] = v }
    let input = DiffInput(id: item.id, desired: item.desired, observed: obs, external: ext, pricing: pricing)
    var acts = driver.diff(input)
    if item.desired != nil { c.findings += driver.findings(input, now: now) }
    // Not a change in git since it was last applied: what differs is drift.
    let fromGit = item.desired == nil || item.record?.appliedDigest != item.digest
    let annotations = item.resource?.metadata.annotations ?? item.record?.annotations ?? [:]
    if !acts.isEmpty && !fromGit {
      c.driftedFields += acts.flatMap { a in a.changes.map(\.path).isEmpty ? [a.key] : a.changes.map(\.path) }
      if annotations[Annotations.drift] == "report" {
        c.driftReportOnly = true
        acts = []
      }
    }
    if !options.prune || annotations[Annotations.prune] == "false" {
      c.pruneHeld += acts.filter { $0.operation == .delete }.map(\.summary)
      acts.removeAll { $0.operation == .delete }
    }
    guard !acts.isEmpty else { return Result(change: c) }
    c.drivers.append(driver.name)
    let kind: Plan.ResourceChange.Change =
      item.desired == nil ? .delete : (item.record?.appliedDigest == nil && acts.allSatisfy { $0.operation == .create } ? .create : .update)
    c.change = merge(c.change, kind)
    let planned = acts.map {
      Plan.PlannedAction(action: $0, deferred: NonEmptyDeletes.block($0, annotations: annotations, options: options), fromGit: fromGit)
    }
    return Result(change: c, actions: planned, basis: obs)
  }

  /// Two drivers' changes of one resource: a delete wins, then an update.
  static func merge(_ a: Plan.ResourceChange.Change, _ b: Plan.ResourceChange.Change) -> Plan.ResourceChange.Change {
    if a == .none { return b }
    if b == .none || a == b { return a }
    if a == .delete || b == .delete { return .delete }
    return .update
  }
}

/// Stage 3: actions priced against what the quota allows now; what it cannot pay for before
/// its reset, and what a sync window holds, is deferred (not priced as spent, not attempted).
enum PriceStage {
  struct Result: Equatable {
    /// Units of the runnable actions, by RateLimit.
    var actionUnits: [String: Int] = [:]
    /// Units of the actions deferred for quota, by RateLimit.
    var deferredUnits: [String: Int] = [:]
  }

  /// - Parameters:
  ///   - budgets: each quota's budget after the observation.
  ///   - shares: channel name → its `quotaShare` of a quota.
  ///   - syncWindows: nil when `--force` ignores them.
  static func price(
    _ actions: inout [Plan.PlannedAction], budgets: [String: QuotaLedger.Budget], shares: [String: Double],
    syncWindows: SyncWindows?, now: Date
  ) -> Result {
    var budgets = budgets
    var r = Result()
    // A blocked delete or an unsettled create: already deferred, not priced.
    for i in actions.indices where actions[i].deferred == nil {
      if let (why, eta) = syncWindows?.hold(actions[i].action.resource, at: now) {
        actions[i].deferred = Plan.Deferral(reason: .syncWindow, message: why, eta: eta)
        continue
      }
      let calls = actions[i].action.calls
      var trial = budgets
      var blocking: (quota: String, need: Int, available: Int)?
      for c in calls where c.units > 0 {
        guard let q = c.quota, var b = trial[q] else { continue }
        let shareLeft = c.channel.flatMap { ch in shares[ch].map { Int((Double(b.units) * $0).rounded(.down)) &- (b.perChannel[ch] ?? 0) } }
        let avail = min(b.available(channel: c.channel), shareLeft ?? .max)
        if c.units > avail || !b.spend(c.units, channel: c.channel) {
          blocking = (q, c.units, max(0, avail))
          break
        }
        trial[q] = b
      }
      var byQuota: [String: Int] = [:]
      for c in calls { if let q = c.quota { byQuota[q, default: 0] &+= c.units } }
      if let (q, need, avail) = blocking {
        actions[i].deferred = Plan.Deferral(
          reason: .quota, message: "needs \(need) units of the \(q) quota, \(avail) available until it resets",
          eta: budgets[q]?.resetsAt)
        for (q, u) in byQuota { r.deferredUnits[q, default: 0] &+= u }
      } else {
        budgets = trial
        for (q, u) in byQuota { r.actionUnits[q, default: 0] &+= u }
      }
    }
    return r
  }
}

/// Stage 4: the safety thresholds, over the resources ytempire manages.
enum SafetyStage {
  /// - Parameter managed: resources some driver has applied (the thresholds' denominator).
  static func check(_ changes: [Plan.ResourceChange], managed: Int, options: EngineOptions) -> [Plan.SafetyViolation] {
    guard managed >= options.minExisting && managed > 0 else { return [] }
    var out: [Plan.SafetyViolation] = []
    let deletes = changes.count { $0.change == .delete }
    let updates = changes.count { $0.change == .update }
    let dp = Double(deletes) * 100 / Double(managed)
    let up = Double(updates) * 100 / Double(managed)
    if dp > options.maxDeletePercent {
      out.append(
        .init(
          rule: "maxDeletePercent",
          message:
            "\(deletes) of \(managed) managed resources would be deleted (\(pct(dp, over: options.maxDeletePercent))), more than maxDeletePercent \(pct(options.maxDeletePercent)); use --force to apply anyway"
        ))
    }
    if up > options.maxUpdatePercent {
      out.append(
        .init(
          rule: "maxUpdatePercent",
          message:
            "\(updates) of \(managed) managed resources would be updated (\(pct(up, over: options.maxUpdatePercent))), more than maxUpdatePercent \(pct(options.maxUpdatePercent)); use --force to apply anyway"
        ))
    }
    return out
  }

  /// A configured percentage as written (`50%`, `33.33%`): never rounded.
  static func pct(_ x: Double) -> String {
    x.rounded() == x && abs(x) < 1e15 ? "\(Int(x))%" : "\(x)%"
  }

  /// A measured percentage that exceeds `limit`, with one decimal, or as many more (up to 6)
  /// as it takes not to print the same as the limit: 1001 of 2000 is 50.05%, not "50.0%, more than 50%".
  static func pct(_ x: Double, over limit: Double) -> String {
    if x.rounded() == x && abs(x) < 1e15 { return "\(Int(x))%" }
    let shownLimit = pct(limit)
    for digits in 1...6 {
      var s = String(format: "%.\(digits)f", x)
      while s.contains("."), s.hasSuffix("0") { s.removeLast() }
      if s.hasSuffix(".") { s.removeLast() }
      if s + "%" != shownLimit { return s + "%" }
    }
    return "\(x)%"
  }
}
