import DriverKit
import EmpireModel
import PlanFile

/// A delete that would destroy what the object holds (a playlist's videos: DESIGN A10) is
/// blocked: planned, shown, never attempted — unless `apply --force`
/// (`EngineOptions.deleteNonEmpty`) or the resource's `ytempire.io/delete-nonempty: "true"`.
enum NonEmptyDeletes {
  static func block(_ a: Action, annotations: [String: String], options: EngineOptions) -> Plan.Deferral? {
    guard a.operation == .delete, let holds = a.holds, !holds.isEmpty, !options.deleteNonEmpty,
      annotations[Annotations.deleteNonEmpty] != "true"
    else { return nil }
    return Plan.Deferral(
      reason: .nonEmpty,
      message: "holds \(holds) — blocked (apply --force, or \(Annotations.deleteNonEmpty): \"true\" on \(a.resource), deletes it)",
      eta: nil)
  }
}
