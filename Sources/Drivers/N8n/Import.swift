import Basics
import DriverKit
import EmpireModel
import Foundation

/// `ytempire import` of Schedules (DESIGN A10 "Import"): n8n workflows tagged `ytempire` (every
/// workflow when `--kind Schedule` is given) become Schedules with a `workflowFile`, the
/// workflow's JSON written beside them without the fields n8n adds (id, versionId, timestamps,
/// tags, run-time data).
extension N8nDriver: Importer {
  public var importKinds: Set<Kind> { [.schedule] }

  public func importCalls(_ request: ImportRequest, pricing: Pricing) -> [PlannedCall] {
    guard request.wants(.schedule) else { return [] }
    return [pricing.call("n8n", Operation.listTags), pricing.call("n8n", Operation.list)]
  }

  /// Top-level workflow fields a workflow file keeps; the rest are n8n's own.
  static let workflowFileFields: Set<String> = ["name", "nodes", "connections", "settings"]

  public func discover(_ request: ImportRequest, budget: ImportBudget, context: DriverContext) async throws -> ImportResult {
    guard request.wants(.schedule) else { return ImportResult() }
    let all = request.explicitKinds.contains(.schedule)
    var result = ImportResult()
    let tagId: String?
    let workflows: [JSONValue]
    do {
      tagId = try await findTag(schedule: nil, call: context.pricing.call("n8n", Operation.listTags), context: context)
      workflows = try await listAll(tagged: all ? nil : Canonical.tag, context: context)
    } catch is CancellationError {
      throw CancellationError()
    } catch {
      result.errors.append("n8n: \(error)")
      return result
    }
    var names = Set<String>()
    for wf in workflows.sorted(by: {
      ($0["name"]?.string ?? "", $0["id"]?.string ?? "") < ($1["name"]?.string ?? "", $1["id"]?.string ?? "")
    }) {
      guard let id = wf["id"]?.string, let wfName = wf["name"]?.string else { continue }
      let observed = Canonical.workflow(wf)
      guard let nodes = wf["nodes"]?.array, !nodes.isEmpty, Canonical.nodes(nodes) != nil else {
        result.notImported.append(
          NotImported(
            object: "n8n workflow \"\(wfName)\" (\(id))", reason: "it has no nodes, or a node without a name, or two nodes with one name"))
        continue
      }
      let base =
        wfName.hasPrefix(Canonical.namePrefix)
        ? ImportNames.slug(String(wfName.dropFirst(Canonical.namePrefix.count)), fallback: "workflow")
        : ImportNames.slug(wfName, fallback: "workflow")
      let name = ImportNames.unique(base, in: &names)
      var file: [String: JSONValue] = [:]
      for (k, v) in wf.object ?? [:] where Self.workflowFileFields.contains(k) { file[k] = v }
      let fileName = "schedules/workflows/\(name).json"
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
      var bytes = Array((try? encoder.encode(JSONValue.object(file))) ?? Data())
      bytes.append(UInt8(ascii: "\n"))
      let settings = wf["settings"]
      var trigger: [String: JSONValue] = ["every": "1h"]
      if let cron = Self.cronOf(nodes) { trigger = ["cron": .string(cron)] }
      if let tz = settings?["timezone"]?.string, !tz.isEmpty { trigger["timezone"] = .string(tz) }
      var notes = ["Imported from n8n workflow \"\(wfName)\" (\(id)); its nodes are in \(fileName)."]
      if trigger["cron"] == nil {
        notes.append(
          "The workflow's own trigger nodes decide when it runs; `trigger` is required by the model and not used for a workflowFile.")
      }
      notes.append("`channels` is empty: the workflow file names its channels itself.")
      if wfName != Canonical.workflowName(name) {
        notes.append(
          "ytempire names its workflows ytempire/<schedule>: the first apply renames \"\(wfName)\" to \"\(Canonical.workflowName(name))\".")
      }
      if observed["tagged"]?.bool != true { notes.append("The workflow is not tagged \(Canonical.tag): the first apply tags it.") }
      if settings?["timezone"] == nil {
        notes.append("The workflow sets no timezone: the first apply pins UTC (the trigger's default).")
      }
      result.resources.append(
        ImportedResource(
          kind: .schedule, name: name,
          spec: [
            "workflowFile": .string(fileName), "trigger": .object(trigger), "channels": [],
            "active": .bool(wf["active"]?.bool ?? false),
          ],
          notes: notes, files: [fileName: bytes], external: [ExternalKey.workflowId: id],
          observed: ["workflow": observed, "tagId": tagId.map(JSONValue.string) ?? .null]))
    }
    return result
  }

  /// The cron expression of a workflow's Schedule Trigger node, when it has exactly one with one cron rule.
  static func cronOf(_ nodes: [JSONValue]) -> String? {
    let triggers = nodes.filter { $0["type"]?.string == "n8n-nodes-base.scheduleTrigger" }
    guard triggers.count == 1, let rules = triggers[0]["parameters"]?["rule"]?["interval"]?.array, rules.count == 1,
      rules[0]["field"]?.string == "cronExpression", let e = rules[0]["expression"]?.string,
      (try? CronExpression(parsing: e)) != nil
    else { return nil }
    return e
  }

  /// Every workflow, or those with the tag `tagged` (a tag filter the server ignored is applied here too).
  func listAll(tagged: String?, context: DriverContext) async throws -> [JSONValue] {
    let all = try await listWorkflows(query: tagged.map { "tags=" + PercentEncoding.encode($0) } ?? "", schedule: nil, context: context)
    guard let tagged else { return all }
    return all.filter { wf in (wf["tags"]?.array ?? []).contains { $0["name"]?.string == tagged } }
  }
}
