import DriverKit
import EmpireModel

/// Renamed resources (DESIGN A10 "Identity and renames"): a resource with
/// `ytempire.io/renamed-from: <old name>` takes over the old name's records — external ids,
/// observations, journal, status — so its external objects are found and updated in place
/// (an n8n workflow renamed by PUT, a config-store row by UPDATE), never deleted and made again.
///
/// A plan only reads the old records as the new name's (it changes nothing but observations);
/// apply moves them in the state store before its first action, so a plan that is never applied
/// (a pull request's) leaves the records where they are.
enum Renames {
  /// new → old, for each desired resource whose annotation names a name of its kind that is not desired.
  static func map(_ desired: [Resource]) -> [ResourceID: ResourceID] {
    let names = Set(desired.map(ResourceID.init))
    var out: [ResourceID: ResourceID] = [:]
    var taken = Set<ResourceID>()
    for r in desired {
      guard let old = r.metadata.annotations[Annotations.renamedFrom], old != r.name else { continue }
      let from = ResourceID(r.kind, old)
      guard !names.contains(from), taken.insert(from).inserted else { continue }
      out[ResourceID(r)] = from
    }
    return out
  }

  /// A record the new name may be given: none, or one that holds nothing but an observation
  /// (a plan observed the new name before the rename was applied).
  static func isVacant(_ r: ResourceRecord?) -> Bool { r.map { $0.appliedDigest == nil && $0.external.isEmpty } ?? true }

  /// One driver's records as a plan reads them: a renamed resource's old record under its new
  /// name (the old name is then no orphan). Returns new → old for the records carried over.
  static func carry(_ records: inout [ResourceID: ResourceRecord], _ renames: [ResourceID: ResourceID]) -> [ResourceID: ResourceID] {
    var carried: [ResourceID: ResourceID] = [:]
    for (new, old) in renames.sorted(by: { $0.key < $1.key }) {
      guard isVacant(records[new]), var r = records[old] else { continue }
      records[old] = nil
      r.id = new
      records[new] = r
      carried[new] = old
    }
    return carried
  }

  /// The record a driver has for `id` as a plan reads it (the old name's, for a rename not yet applied).
  static func record(_ store: any StateStore, driver: String, id: ResourceID, _ renames: [ResourceID: ResourceID]) throws -> (
    ResourceRecord?, renamedFrom: String?
  ) {
    let own = try store.record(driver: driver, id: id)
    if let old = renames[id], isVacant(own), var r = try store.record(driver: driver, id: old) {
      r.id = id
      return (r, old.name)
    }
    return (own, nil)
  }

  /// Apply: moves the records of every renamed resource to its new name (each in one transaction).
  static func move(_ renames: [ResourceID: ResourceID], in store: any StateStore) throws {
    for (new, old) in renames.sorted(by: { $0.key < $1.key }) { try store.rename(from: old, to: new) }
  }
}
