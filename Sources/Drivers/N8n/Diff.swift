import DriverKit
import EmpireModel

/// Desired vs observed → actions. Pure: no I/O, no clock.
///
/// - nothing exists → `create workflow` (create, tag — creating the tag when n8n has none —, activate when `active`);
/// - the definition (name, nodes, connections, the settings ytempire sets) differs → `update workflow` (one `PUT`);
/// - an owned workflow lost the `ytempire` tag → `update tags` (other tags are kept);
/// - `active` differs → `update activation` (activate or deactivate);
/// - the Schedule left the repository → `delete workflow`, only for the recorded id and only while it is tagged `ytempire`.
enum N8nDiff {
  static let workflowKey = "workflow"
  static let tagsKey = "tags"
  static let activationKey = "activation"

  static func actions(_ input: DiffInput, driver: String) -> [Action] {
    let desired: JSONValue? = (input.desired?.isNull ?? true) ? nil : input.desired
    let wf: JSONValue? = (input.observed["workflow"]?.isNull ?? true) ? nil : input.observed["workflow"]
    let tagId = input.observed["tagId"]?.string
    func price(_ op: String) -> PlannedCall { input.pricing.call("n8n", op) }
    let recorded = input.external[N8nDriver.ExternalKey.workflowId]
    typealias Op = N8nDriver.Operation

    guard let desired else {
      // Prune: only the workflow ytempire recorded, and only while it still carries the tag.
      guard let wf, let id = wf["id"]?.string, id == recorded, wf["tagged"]?.bool == true else { return [] }
      let changes = [FieldChange(path: "name", old: wf["name"], new: nil), FieldChange(path: "active", old: wf["active"], new: nil)]
      return [
        Action(
          driver: driver, resource: input.id, operation: .delete, key: workflowKey,
          summary: "workflow \"\(wf["name"]?.string ?? id)\" (\(id))", changes: changes,
          calls: [price(Op.delete)], payload: ["id": .string(id)])
      ]
    }
    guard desired["error"] == nil, let name = desired["name"]?.string else { return [] }
    let want = Canonical.compared(name: desired["name"], definition: desired["definition"], settingsOf: desired["definition"])
    let active = desired["active"]?.bool ?? true

    guard let wf, let id = wf["id"]?.string else {
      var changes = JSONDiff.changes(nil, want)
      changes.append(FieldChange(path: "active", old: nil, new: .bool(active)))
      var calls = [price(Op.create)]
      if tagId == nil { calls.append(price(Op.createTag)) }
      calls.append(price(Op.setTags))
      if active { calls.append(price(Op.activate)) }
      var payload: [String: JSONValue] = ["body": Canonical.body(desired: desired), "active": .bool(active)]
      if let tagId { payload["tagId"] = .string(tagId) }
      return [
        Action(
          driver: driver, resource: input.id, operation: .create, key: workflowKey,
          summary: "workflow \"\(name)\"", changes: changes, calls: calls, payload: .object(payload))
      ]
    }

    var actions: [Action] = []
    let adopting = recorded != id ? " (adopting \(id) by its name)" : ""
    let have = Canonical.compared(name: wf["name"], definition: wf["definition"], settingsOf: desired["definition"])
    let changes = JSONDiff.changes(have, want)
    if !changes.isEmpty {
      actions.append(
        Action(
          driver: driver, resource: input.id, operation: .update, key: workflowKey,
          summary: "workflow \"\(name)\"\(adopting)", changes: changes, calls: [price(Op.update)],
          payload: ["id": .string(id), "body": Canonical.body(desired: desired)]))
    }
    if wf["tagged"]?.bool != true {
      var calls: [PlannedCall] = []
      if tagId == nil { calls.append(price(Op.createTag)) }
      calls.append(price(Op.setTags))
      let keep = (wf["tags"]?.array ?? []).compactMap { $0["id"] }
      var payload: [String: JSONValue] = ["id": .string(id), "keep": .array(keep)]
      if let tagId { payload["tagId"] = .string(tagId) }
      let names = (wf["tags"]?.array ?? []).compactMap { $0["name"]?.string }
      actions.append(
        Action(
          driver: driver, resource: input.id, operation: .update, key: tagsKey,
          summary: "tag \(Canonical.tag) on workflow \"\(name)\"\(adopting)",
          changes: [FieldChange(path: "tags", old: JSONValue(names), new: JSONValue((names + [Canonical.tag]).sorted()))],
          calls: calls, payload: .object(payload)))
    }
    if (wf["active"]?.bool ?? false) != active {
      actions.append(
        Action(
          driver: driver, resource: input.id, operation: .update, key: activationKey,
          summary: "\(active ? "activate" : "deactivate") workflow \"\(name)\"",
          changes: [FieldChange(path: "active", old: wf["active"], new: .bool(active))],
          calls: [price(active ? Op.activate : Op.deactivate)],
          payload: ["id": .string(id), "active": .bool(active)]))
    }
    return actions
  }
}
