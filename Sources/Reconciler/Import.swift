import DriverKit
import EmpireModel
import Foundation
import PlanFile
import Resilience

/// `ytempire import` on the engine: the importing drivers read through the same resilient
/// clients (limits, breakers, retries, the quota ledger) as a plan, and `--adopt` records what
/// they read the way an apply records what it wrote.
extension Engine {
  /// The drivers that import at least one of `request`'s kinds.
  public func importers(_ request: ImportRequest) -> [any Importer] {
    drivers.compactMap { $0 as? any Importer }.filter { d in d.importKinds.contains { request.wants($0) } }
  }

  /// What importing will cost at least, per call, before anything is sent.
  public func importPrice(_ request: ImportRequest, pricing index: DesiredIndex) -> [PlannedCall] {
    let pricing = Pricing(index)
    return importers(request).flatMap { $0.importCalls(request, pricing: pricing) }
  }

  /// Reads what exists through each importing driver, in the engine's kind order. `index`
  /// holds the RateLimits that price and limit the calls.
  public func discover(_ request: ImportRequest, pricing index: DesiredIndex, budget: ImportBudget) async throws -> [(
    driver: String, result: ImportResult
  )] {
    let registry = try registry(for: "import", index)
    let ctx = context(index, Pricing(index), registry, nil)
    var out: [(String, ImportResult)] = []
    for d in importers(request) {
      let r = try await d.discover(request, budget: budget, context: ctx)
      out.append((d.name, r))
    }
    return out
  }

  /// `--adopt`: records each imported object as owned by its driver, observed as it was read,
  /// and applied as the imported manifest says. `imported`: per driver, the resource (as the
  /// written manifests load) and what the driver read of it.
  public func adopt(
    _ imported: [(driver: String, resource: Resource, item: ImportedResource)], index: DesiredIndex, revision: String
  ) throws {
    var records: [ImportRecord] = []
    var cache: [String: String] = [:]
    for (name, resource, item) in imported {
      guard let driver = drivers.first(where: { $0.name == name }) else { continue }
      let desired = driver.desired(resource, in: index)
      records.append(
        ImportRecord(
          driver: name, id: ResourceID(resource), external: item.external, observed: item.observed,
          digest: Digest.sha256Hex(desired.canonicalBytes)))
      cache.merge(item.cache) { a, _ in a }
    }
    try store.recordImport(records, cache: cache, revision: revision, at: clock.wallNow)
  }
}
