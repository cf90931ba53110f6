import DriverKit
import EmpireModel
import Foundation
import Resilience
import YAMLKit

/// Status files (A7): `status/<kind>/<name>.yaml` per resource and `status/summary.yaml`,
/// kept in the state store, written to `<stateDir>/status/` and committed on the status branch.
public enum StatusBook {
  public static let historyLimit = 5

  /// The file name of a resource's status below `status/`.
  public static func path(_ id: ResourceID) -> String { "\(id.kind.rawValue.lowercased())/\(id.name).yaml" }

  /// Folds an apply's outcome into every resource's status record (conditions keep their
  /// transition time while they do not change, so an idle run changes nothing).
  public static func record(plan: Plan, report: ApplyReport, desired: [Resource], store: any StateStore, now: Date) throws {
    let outcomes = Dictionary(grouping: report.outcomes, by: { $0.action.resource })
    let planned = Dictionary(plan.resources.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    let unreconciled = Dictionary(grouping: plan.unreconciled, by: \.id)
    let records = try store.records(driver: nil)
    let desiredIDs = Set(desired.map(ResourceID.init))

    // Resources that left the repository and are gone: their status goes too.
    for r in plan.resources where r.change == .delete && !desiredIDs.contains(r.id) {
      let failed = (outcomes[r.id] ?? []).contains { $0.result != .ok }
      if !failed && r.pruneHeld.isEmpty { try store.deleteStatus(r.id) }
    }

    // Every status in one read, unless the plan was targeted at a few resources.
    let stored = plan.targets.isEmpty ? Dictionary(try store.allStatus().map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }) : nil
    for id in desiredIDs.sorted() where plan.targets.isEmpty || plan.targets.contains(id) {
      let old: ResourceStatusRecord? = if let stored { stored[id] } else { try store.status(id) }
      let mine = outcomes[id] ?? []
      let rc = planned[id]
      var conditions = old?.conditions ?? []
      func set(_ type: ConditionType, _ status: ConditionStatus, _ reason: ConditionReason, _ message: String) {
        if let i = conditions.firstIndex(where: { $0.type == type }) {
          let changed = conditions[i].status != status || conditions[i].reason != reason
          conditions[i].status = status
          conditions[i].reason = reason
          conditions[i].message = message
          if changed { conditions[i].lastTransitionTime = now }
        } else {
          conditions.append(.init(type: type, status: status, reason: reason, message: message, lastTransitionTime: now))
        }
      }
      func drop(_ type: ConditionType) { conditions.removeAll { $0.type == type } }

      let failures = mine.filter { $0.result == .failed }
      let deferrals = mine.filter { $0.result == .deferred }
      let skipped = mine.filter { $0.result == .skipped }
      let ur = unreconciled[id] ?? []
      if let e = rc?.observationError {
        set(.ready, .unknown, .observationFailed, e)
      } else if let f = failures.first {
        set(.ready, .false, .applyFailed, "\(f.action.summary): \(f.message ?? "failed")")
      } else if let d = deferrals.first {
        set(.ready, .false, .deferred, d.message ?? "deferred")
      } else if rc?.driftReportOnly == true {
        set(
          .ready, .false, .driftReported,
          "differs from the repository in \(rc!.driftedFields.joined(separator: ", ")); ytempire.io/drift: report leaves it")
      } else if !skipped.isEmpty {
        set(.ready, .false, .applyFailed, skipped[0].message ?? "not attempted")
      } else if rc == nil && !ur.isEmpty {
        set(.ready, .unknown, .notReconciled, ur.map { "\($0.integration): \($0.reason)" }.joined(separator: "; "))
      } else {
        let partial = ur.isEmpty ? "" : " (not reconciled: \(ur.map(\.integration).joined(separator: ", ")))"
        set(.ready, .true, .converged, "matches \(plan.revision)\(partial)")
      }
      set(.reconciling, .false, .idle, "no reconcile in progress")
      let drifted = rc?.driftedFields ?? []
      if !drifted.isEmpty && (rc?.driftReportOnly == true || !failures.isEmpty) {
        set(.drifted, .true, rc?.driftReportOnly == true ? .reported : .notCorrected, "fields: \(drifted.joined(separator: ", "))")
      } else if !drifted.isEmpty {
        set(.drifted, .false, .corrected, "corrected fields: \(drifted.joined(separator: ", "))")
      } else if rc?.observationError == nil && rc != nil {
        if conditions.first(where: { $0.type == .drifted })?.status != .false { set(.drifted, .false, .noDrift, "matches the repository") }
      }
      if let d = deferrals.first {
        let deferral = d.deferral ?? plan.actions.first { $0.action.id == d.action.id }?.deferred
        set(
          .deferred, .true, (deferral?.reason ?? .quota).condition,
          (d.message ?? "deferred") + (deferral?.eta.map { "; eta \(iso($0))" } ?? ""))
      } else {
        drop(.deferred)
      }
      // A rejection repeats until the repository changes: Stalled. An error of unknown kind
      // goes by the last call's HTTP status.
      let terminal = failures.first { f in
        (f.category ?? f.calls.last?.status.map { DriverErrorCategory.http(status: $0, reason: nil) })?.waitsForChange == true
      }
      if let t = terminal {
        set(.stalled, .true, .rejectedByService, "\(t.message ?? "rejected"); waits for a new commit")
      } else {
        drop(.stalled)
      }
      // Findings (RotationDue, …) from this plan's look at the resource; one that went away is cleared.
      if let rc, rc.observationError == nil {
        for type in plan.findingTypes {
          let mine = rc.findings.filter { $0.condition == type }
          if let f = mine.first {
            set(type, .true, f.reason, mine.map(\.message).joined(separator: "; "))
            // A resource held back by a finding is not ready, whatever else held.
            if type == .stalled { set(.ready, .false, f.reason, f.message) }
          } else if !(type == .stalled && terminal != nil) {
            drop(type)
          }
        }
      }
      conditions.sort { (order($0.type), $0.type) < (order($1.type), $1.type) }

      var external: [String: String] = [:]
      for rec in records where rec.id == id { for (k, v) in rec.external { external[k] = v } }

      var lastActions = old?.lastActions ?? []
      if !mine.isEmpty {
        lastActions = mine.map { o in
          ResourceStatusRecord.ActionRecord(
            operation: o.action.operation.rawValue,
            call: o.action.calls.map(\.name).first ?? o.action.driver,
            fields: o.action.changes.map(\.path), result: o.result.rawValue,
            quotaUnits: o.result == .ok || o.result == .failed ? o.units : 0, message: o.message)
        }
      }
      var history = old?.history ?? []
      if !mine.isEmpty || history.last?.revision != plan.revision {
        let result = failures.isEmpty && deferrals.isEmpty && skipped.isEmpty ? "ok" : (!failures.isEmpty ? "failed" : "deferred")
        history.append(.init(revision: plan.revision, time: now, result: result, actions: mine.count))
        if history.count > historyLimit { history.removeFirst(history.count - historyLimit) }
      }
      let ready = conditions.first { $0.type == .ready }?.status == .true
      let rec = ResourceStatusRecord(
        id: id, lastAppliedRevision: ready ? plan.revision : old?.lastAppliedRevision,
        lastAttemptedRevision: plan.revision, conditions: conditions, external: external,
        lastActions: lastActions, history: history)
      if rec != old { try store.saveStatus(rec) }
    }
  }

  static func order(_ t: ConditionType) -> Int { ConditionType.engineOrder.firstIndex(of: t) ?? ConditionType.engineOrder.count }

  static func iso(_ d: Date) -> String { PlanRenderer.iso(d) }

  public struct QuotaState: Sendable, Equatable {
    public var rateLimit: String
    public var service: String
    public var units: Int
    public var spent: Int
    /// Units left in the window (reservations and the emergency reserve included).
    public var available: Int
    public var resetsAt: Date
  }

  /// The quota windows as the state store has them.
  public static func quotas(desired: [Resource], store: any StateStore, clock: any ResilienceClock = SystemClock()) throws -> [QuotaState] {
    let index = DesiredIndex(desired)
    let registry = try ServiceRegistry(desired: index, transport: NullTransport(), windows: store, clock: clock)
    return registry.ledgers.sorted { $0.key < $1.key }.map { name, l in
      let b = l.budget
      return QuotaState(
        rateLimit: name, service: index.resource(.rateLimit, name)?.rateLimit?.service ?? name,
        units: b.units, spent: b.spent, available: max(0, b.units &- b.spent), resetsAt: b.resetsAt)
    }
  }

  // MARK: files

  static func yaml(_ s: ResourceStatusRecord) -> YAMLValue {
    var status: [(String, YAMLValue)] = []
    status.append(("lastAppliedRevision", s.lastAppliedRevision.map(YAMLValue.string) ?? .null))
    status.append(("lastAttemptedRevision", s.lastAttemptedRevision.map(YAMLValue.string) ?? .null))
    status.append(
      (
        "conditions",
        .sequence(
          s.conditions.map { c in
            .mapping([
              ("type", .string(c.type.rawValue)), ("status", .string(c.status.rawValue)), ("reason", .string(c.reason.rawValue)),
              ("message", .string(c.message)), ("lastTransitionTime", .string(iso(c.lastTransitionTime))),
            ])
          })
      ))
    // `playlist/ai-explained: PL…` → `playlist: {ai-explained: PL…}`.
    var flat: [(String, YAMLValue)] = []
    var nested: [String: [(String, YAMLValue)]] = [:]
    for (k, v) in s.external.sorted(by: { $0.key < $1.key }) {
      if let slash = k.firstIndex(of: "/") {
        nested[String(k[..<slash]), default: []].append((String(k[k.index(after: slash)...]), .string(v)))
      } else {
        flat.append((k, .string(v)))
      }
    }
    for (k, v) in nested.sorted(by: { $0.key < $1.key }) { flat.append((k, .mapping(v))) }
    status.append(("external", .mapping(flat)))
    status.append(
      (
        "lastActions",
        .sequence(
          s.lastActions.map { a in
            var m: [(String, YAMLValue)] = [
              ("operation", .string(a.operation)), ("call", .string(a.call)),
              ("fields", .sequence(a.fields.map(YAMLValue.string), flow: true)),
              ("result", .string(a.result)), ("quotaUnits", .int(a.quotaUnits)),
            ]
            if let msg = a.message { m.append(("message", .string(msg))) }
            return .mapping(m)
          })
      ))
    status.append(
      (
        "history",
        .sequence(
          s.history.map { h in
            .mapping([
              ("revision", .string(h.revision)), ("time", .string(iso(h.time))), ("result", .string(h.result)),
              ("actions", .int(h.actions)),
            ])
          })
      ))
    return .mapping([
      ("apiVersion", .string(apiVersionV1)), ("kind", .string("\(s.id.kind.rawValue)Status")),
      ("metadata", .mapping([("name", .string(s.id.name))])), ("status", .mapping(status)),
    ])
  }

  /// Every status file (paths below `status/`), rendered through libyaml's emitter.
  public static func files(store: any StateStore, quotas: [QuotaState]) throws -> [String: [UInt8]] {
    var files: [String: [UInt8]] = [:]
    let all = try store.allStatus()
    for s in all { files[path(s.id)] = try YAMLEmitter.emit(yaml(s)) }
    func count(_ type: ConditionType, _ status: ConditionStatus) -> Int {
      all.count { $0.conditions.contains { $0.type == type && $0.status == status } }
    }
    // The audit log's head, witnessed by git (docs/audit.md): it moves only when an entry is appended.
    let audit = try store.auditHead()
    let summary: YAMLValue = .mapping([
      ("apiVersion", .string(apiVersionV1)), ("kind", .string("Summary")),
      (
        "status",
        .mapping([
          ("lastAppliedRevision", (try store.meta(.lastAppliedRevision)).map(YAMLValue.string) ?? .null),
          ("lastAttemptedRevision", (try store.meta(.lastAttemptedRevision)).map(YAMLValue.string) ?? .null),
          (
            "resources",
            .mapping([
              ("total", .int(all.count)), ("ready", .int(count(.ready, .true))),
              ("drifted", .int(count(.drifted, .true))), ("deferred", .int(count(.deferred, .true))),
              ("stalled", .int(count(.stalled, .true))),
              ("failed", .int(all.count { s in s.conditions.contains { $0.type == .ready && $0.reason == .applyFailed } })),
            ])
          ),
          (
            "quota",
            .sequence(
              quotas.map { q in
                .mapping([
                  ("rateLimit", .string(q.rateLimit)), ("service", .string(q.service)), ("units", .int(q.units)),
                  ("used", .int(q.spent)), ("remaining", .int(q.available)), ("resetsAt", .string(iso(q.resetsAt))),
                ])
              })
          ),
          ("audit", .mapping([("entries", .int(Int(audit.entries))), ("head", .string(audit.hash))])),
        ])
      ),
    ])
    files["summary.yaml"] = try YAMLEmitter.emit(summary, comment: "Written by ytempire; do not edit.")
    return files
  }

  /// Replaces `<stateDir>/status/` with `files` (written beside it, then renamed into place).
  public static func writeDirectory(_ files: [String: [UInt8]], stateDir: String) throws {
    let fm = FileManager.default
    let target = stateDir + "/status"
    let temp = stateDir + "/.status-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try fm.createDirectory(atPath: temp, withIntermediateDirectories: true)
    for (p, bytes) in files {
      let full = temp + "/" + p
      try fm.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      guard fm.createFile(atPath: full, contents: Data(bytes)) else { throw StateStoreError("cannot write \(full)") }
    }
    let old = target + ".old-\(getpid())"
    if fm.fileExists(atPath: target) { try fm.moveItem(atPath: target, toPath: old) }
    try fm.moveItem(atPath: temp, toPath: target)
    try? fm.removeItem(atPath: old)
  }
}
