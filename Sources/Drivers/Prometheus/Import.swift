import DriverKit
import EmpireModel
import Foundation

/// `ytempire import` of Monitors (DESIGN A10 "Import"): the alerting rules of the group
/// `ytempire` in the rule file, read as the observation reads them (no call, no quota). A rule
/// the model cannot express is listed with why, never dropped silently.
extension PrometheusDriver: Importer {
  public var importKinds: Set<Kind> { [.monitor] }

  public func importCalls(_ request: ImportRequest, pricing: Pricing) -> [PlannedCall] { [] }

  public func discover(_ request: ImportRequest, budget: ImportBudget, context: DriverContext) async throws -> ImportResult {
    guard request.wants(.monitor) else { return ImportResult() }
    var result = ImportResult()
    let file: RuleFile
    do { file = try readRuleFile().file } catch {
      result.errors.append("prometheus: \(error)")
      return result
    }
    for rule in file.ownedRules {
      let canonical = RuleFile.canonical(rule)
      let alert = canonical["alert"]?.string ?? canonical["record"]?.string ?? "?"
      let what = "Prometheus rule \(alert) in group \(RuleFile.groupName) of \(config.rulesFile)"
      switch Self.monitorSpec(canonical) {
      case .failure(let why): result.notImported.append(NotImported(object: what, reason: why.description))
      case .success(let spec):
        result.resources.append(
          ImportedResource(
            kind: .monitor, name: alert, spec: spec, notes: ["Imported from the alerting rule \(alert) of \(config.rulesFile)."],
            observed: canonical))
      }
    }
    return result
  }

  struct Unexpressible: Error, CustomStringConvertible { var description: String }

  /// A canonical rule as a Monitor's spec, or why the model cannot say it.
  static func monitorSpec(_ rule: JSONValue) -> Result<JSONValue, Unexpressible> {
    func no(_ s: String) -> Result<JSONValue, Unexpressible> { .failure(Unexpressible(description: s)) }
    guard let alert = rule["alert"]?.string else { return no("a recording rule; Monitors are alerting rules") }
    let valid =
      !alert.isEmpty && alert.utf8.count <= 63
      && alert.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D }
      && !alert.hasPrefix("-") && !alert.hasSuffix("-")
    guard valid else {
      return no("the alert name is not a resource name (lower-case letters, digits and '-'): a Monitor's alert is named after it")
    }
    let extra = Set(rule.object?.keys.map { $0 } ?? []).subtracting(["alert", "expr", "for", "labels", "annotations"])
    guard extra.isEmpty else { return no("it sets \(extra.sorted().joined(separator: ", ")), which a Monitor has no field for") }
    guard let expr = rule["expr"]?.string, !expr.isEmpty else { return no("it has no expr") }
    var labels = rule["labels"]?.object ?? [:]
    guard let severity = labels.removeValue(forKey: "severity")?.string, ["info", "warning", "critical"].contains(severity) else {
      return no("its severity label is not info, warning or critical")
    }
    var annotations = rule["annotations"]?.object ?? [:]
    guard let summary = annotations.removeValue(forKey: "summary")?.string, !summary.isEmpty else {
      return no("it has no summary annotation")
    }
    var spec: [String: JSONValue] = ["expr": .string(expr), "severity": .string(severity), "summary": .string(summary)]
    if let d = annotations.removeValue(forKey: "description") { spec["description"] = d }
    if let r = annotations.removeValue(forKey: "runbook_url") { spec["runbook"] = r }
    guard annotations.isEmpty else {
      return no("it has the annotations \(annotations.keys.sorted().joined(separator: ", ")), which a Monitor has no field for")
    }
    if let f = rule["for"] { spec["for"] = f }
    if !labels.isEmpty { spec["labels"] = .object(labels) }
    return .success(.object(spec))
  }
}
