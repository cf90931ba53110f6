import Crypto
import DriverKit
import Foundation

/// The canonical forms the driver diffs (docs/drivers/n8n.md).
///
/// Desired (`N8nDriver.desired`):
/// ```json
/// {"name": "ytempire/<schedule>", "active": true, "source": "template/content-generation",
///  "definition": {"nodes": {"<node name>": {canonical node}}, "connections": {…}, "settings": {…}},
///  "layout": {"<node name>": [x, y]}, "webhookIds"?: {"<node name>": "<a workflow file's own webhookId>"}}
/// ```
/// or `{"name", "source", "error": "…"}` when a `workflowFile` cannot be used.
///
/// Observed (`{"workflow": null}` when nothing exists):
/// ```json
/// {"workflow": {"id", "name", "active", "tagged": bool, "tags": [{"id", "name"}],
///               "definition": {"nodes": {…}, "connections": {…}, "settings": {…}}},
///  "tagId": "<id of the ytempire tag>" | null}
/// ```
/// A canonical node has no `id`, `position` or `webhookId` (the server's or the editor's, never
/// compared), its credentials reduced to `{type: {"name"}}`, `disabled: false` dropped, and every
/// integral number written as an integer.
enum Canonical {
  /// The tag that marks ytempire's workflows.
  static let tag = "ytempire"
  static let namePrefix = "ytempire/"
  static func workflowName(_ schedule: String) -> String { namePrefix + schedule }

  /// Node fields never compared: identity and layout, which the server or the editor may change.
  static let uncompared: Set<String> = ["id", "position", "webhookId"]

  /// Numbers as JSON numbers compare: `1.0` and `1` are the same value (n8n is JavaScript).
  static func numbers(_ v: JSONValue, depth: Int = 0) -> JSONValue {
    guard depth < 64 else { return v }
    switch v {
    case .double(let d) where d.isFinite && d.rounded() == d && abs(d) < 9e15: return .int(Int64(d))
    case .array(let a): return .array(a.map { numbers($0, depth: depth + 1) })
    case .object(let o): return .object(o.mapValues { numbers($0, depth: depth + 1) })
    default: return v
    }
  }

  /// One node as it is compared.
  static func node(_ n: [String: JSONValue]) -> JSONValue {
    var o = n
    for k in uncompared { o[k] = nil }
    if o["disabled"] == .bool(false) { o["disabled"] = nil }
    if o["parameters"] == nil || o["parameters"] == .null { o["parameters"] = .object([:]) }
    if let creds = o["credentials"]?.object {
      var c: [String: JSONValue] = [:]
      for (type, value) in creds {
        if let name = value["name"]?.string ?? value.string { c[type] = ["name": .string(name)] }
      }
      o["credentials"] = c.isEmpty ? nil : .object(c)
    } else {
      o["credentials"] = nil
    }
    return numbers(.object(o))
  }

  /// `nodes` (an array) keyed by node name, canonical; nil when a node has no name or two share one.
  static func nodes(_ list: [JSONValue]) -> [String: JSONValue]? {
    var out: [String: JSONValue] = [:]
    for n in list {
      guard let o = n.object, let name = o["name"]?.string, !name.isEmpty, out[name] == nil else { return nil }
      out[name] = node(o)
    }
    return out
  }

  /// The canonical definition of a workflow object as n8n returns it.
  static func definition(_ wf: JSONValue) -> JSONValue {
    let nodes = nodes(wf["nodes"]?.array ?? []) ?? [:]
    return [
      "nodes": .object(nodes), "connections": numbers(wf["connections"] ?? .object([:])),
      "settings": numbers(wf["settings"] ?? .object([:])),
    ]
  }

  /// The observed form of one workflow.
  static func workflow(_ wf: JSONValue) -> JSONValue {
    let tags = (wf["tags"]?.array ?? []).compactMap { t -> JSONValue? in
      guard let id = t["id"]?.string, let name = t["name"]?.string else { return nil }
      return ["id": .string(id), "name": .string(name)]
    }.sorted { ($0["name"]?.string ?? "", $0["id"]?.string ?? "") < ($1["name"]?.string ?? "", $1["id"]?.string ?? "") }
    var o: [String: JSONValue] = [
      "id": wf["id"] ?? .null, "name": wf["name"] ?? .null, "active": .bool(wf["active"]?.bool ?? false),
      "tags": .array(tags), "tagged": .bool(tags.contains { $0["name"]?.string == tag }),
      "definition": definition(wf),
    ]
    return .object(o)
  }

  /// What the diff compares: name, nodes, connections, and the settings the desired form sets
  /// (a setting it leaves out — one the editor or server added — is not managed).
  static func compared(name: JSONValue?, definition d: JSONValue?, settingsOf desired: JSONValue?) -> JSONValue {
    var settings = d?["settings"]?.object ?? [:]
    if let keys = desired?["settings"]?.object?.keys { settings = settings.filter { keys.contains($0.key) } }
    return [
      "name": name ?? .null, "nodes": d?["nodes"] ?? .object([:]), "connections": d?["connections"] ?? .object([:]),
      "settings": .object(settings),
    ]
  }

  // MARK: identity

  /// A UUID-shaped id derived from the workflow and node names: ytempire's nodes carry the ids
  /// it derives, which is how an untagged workflow left by a crash between create and tagging
  /// is recognised as its own.
  static func derivedId(_ workflow: String, _ part: String) -> String {
    let digest = SHA256.hash(data: Data((workflow + "\u{0}" + part).utf8))
    let hex = digest.prefix(16).map { String(format: "%02x", $0) }.joined()
    let c = Array(hex)
    return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20]) + "-" + String(c[20..<32])
  }

  /// True when the raw workflow's nodes all carry the ids ytempire derives for `name`.
  static func hasDerivedIds(_ wf: JSONValue, name: String) -> Bool {
    let nodes = wf["nodes"]?.array ?? []
    guard !nodes.isEmpty else { return false }
    return nodes.allSatisfy { n in
      guard let nn = n["name"]?.string, let id = n["id"]?.string else { return false }
      return id == derivedId(name, nn)
    }
  }

  /// Node types that answer on a webhook path and so carry a `webhookId`.
  static func needsWebhookId(_ type: String) -> Bool {
    type == "n8n-nodes-base.wait" || type == "n8n-nodes-base.webhook" || type == "n8n-nodes-base.formTrigger"
  }

  // MARK: bodies

  /// The `POST`/`PUT /workflows` body: only the writable fields (n8n's schema is closed).
  /// `staticData` (the triggers' run-time state) and `pinData` are never sent: n8n keeps what
  /// a `PUT` leaves out.
  static func body(desired d: JSONValue) -> JSONValue {
    let name = d["name"]?.string ?? ""
    let nodes = d["definition"]?["nodes"]?.object ?? [:]
    let layout = d["layout"]?.object ?? [:]
    var list: [JSONValue] = []
    for (i, key) in nodes.keys.sorted().enumerated() {
      var n = nodes[key]!.object ?? [:]
      n["name"] = .string(key)
      n["id"] = .string(derivedId(name, key))
      n["position"] = layout[key] ?? [.int(Int64(250 + 200 * i)), 300]
      // n8n resolves a credential by name when its id is null (`replaceInvalidCredentials`;
      // an absent id is not looked up).
      if let creds = n["credentials"]?.object {
        n["credentials"] = .object(creds.mapValues { c in ["id": .null, "name": c["name"] ?? .null] })
      }
      if let w = d["webhookIds"]?[key] {
        n["webhookId"] = w
      } else if needsWebhookId(n["type"]?.string ?? "") {
        n["webhookId"] = .string(derivedId(name, key + "\u{0}webhook"))
      }
      list.append(.object(n))
    }
    return [
      "name": .string(name), "nodes": .array(list),
      "connections": d["definition"]?["connections"] ?? .object([:]),
      "settings": d["definition"]?["settings"] ?? .object([:]),
    ]
  }
}
