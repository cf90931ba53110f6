import Foundation

/// n8n public REST API v1: workflows (CRUD, activate/deactivate, tags) and tags.
enum N8nEmulator {
  static func msg(_ status: Int, _ m: String) -> SandboxResponse { .json(status, ["message": .string(m)]) }

  static let writable: Set<String> = ["name", "nodes", "connections", "settings", "staticData", "pinData"]
  static let readOnly: Set<String> = [
    "id", "active", "tags", "createdAt", "updatedAt", "versionId", "isArchived",
    "triggerCount", "meta", "shared", "activeVersionId", "versionCounter", "description",
  ]
  static let settingsKeys: Set<String> = [
    "saveExecutionProgress", "saveManualExecutions", "saveDataErrorExecution",
    "saveDataSuccessExecution", "executionTimeout", "errorWorkflow", "timezone",
    "executionOrder", "callerPolicy", "callerIds", "timeSavedPerExecution",
    "availableInMCP",
  ]
  static let nodeKeys: Set<String> = [
    "id", "name", "type", "typeVersion", "position", "parameters", "credentials",
    "disabled", "retryOnFail", "maxTries", "waitBetweenTries", "notes", "notesInFlow",
    "webhookId", "alwaysOutputData", "executeOnce", "continueOnFail", "onError",
  ]

  static func handle(_ r: SandboxRequest, _ w: inout N8nState, _ env: EmulatorEnv, now: Date) -> SandboxResponse {
    guard let key = r.headers["x-n8n-api-key"] else { return msg(401, "'X-N8N-API-KEY' header required") }
    guard key == env.credentials.n8nAPIKey else { return msg(401, "unauthorized") }
    let segs = r.path.split(separator: "/").map(String.init).dropFirst(2)  // drop "api", "v1"
    let s = Array(segs)
    switch (r.method, s.count, s.first) {
    case ("GET", 1, "workflows"): return list(r, w)
    case ("POST", 1, "workflows"): return create(r, &w, env, now: now)
    case ("GET", 2, "workflows"): return w.workflows[s[1]].map { .json(200, $0) } ?? msg(404, "Not Found")
    case ("PUT", 2, "workflows"): return update(s[1], r, &w, env, now: now)
    case ("DELETE", 2, "workflows"):
      guard let wf = w.workflows[s[1]] else { return msg(404, "Not Found") }
      w.workflows[s[1]] = nil
      w.order.removeAll { $0 == s[1] }
      return .json(200, wf)
    case ("POST", 3, "workflows") where s[2] == "activate": return setActive(s[1], true, &w, now: now)
    case ("POST", 3, "workflows") where s[2] == "deactivate": return setActive(s[1], false, &w, now: now)
    case ("GET", 3, "workflows") where s[2] == "tags":
      guard let wf = w.workflows[s[1]] else { return msg(404, "Not Found") }
      return .json(200, wf["tags"] ?? [])
    case ("PUT", 3, "workflows") where s[2] == "tags": return putTags(s[1], r, &w, now: now)
    case ("GET", 1, "tags"):
      return .json(200, ["data": .array(w.tagOrder.compactMap { w.tags[$0] }), "nextCursor": .null])
    case ("POST", 1, "tags"): return createTag(r, &w, env, now: now)
    case ("GET", 2, "tags"): return w.tags[s[1]].map { .json(200, $0) } ?? msg(404, "Not Found")
    case ("DELETE", 2, "tags"):
      guard let t = w.tags[s[1]] else { return msg(404, "Not Found") }
      w.tags[s[1]] = nil
      w.tagOrder.removeAll { $0 == s[1] }
      for (id, var wf) in w.workflows {
        if let tags = wf["tags"]?.array {
          wf["tags"] = .array(tags.filter { $0["id"]?.string != s[1] })
          w.workflows[id] = wf
        }
      }
      return .json(200, t)
    default:
      return msg(404, "not found")
    }
  }

  // MARK: workflows

  static func list(_ r: SandboxRequest, _ w: N8nState) -> SandboxResponse {
    var limit = 100
    if let l = r.q("limit") {
      guard let n = Int(l) else { return msg(400, "request/query/limit must be number") }
      guard n >= 1 else { return msg(400, "request/query/limit must be >= 1") }
      guard n <= 250 else { return msg(400, "request/query/limit must be <= 250") }
      limit = n
    }
    var offset = 0
    if let raw = r.q("cursor"), !raw.isEmpty {
      // A cursor pasted into a URL unencoded has its '+' read as a space.
      let c = raw.replacingOccurrences(of: " ", with: "+")
      // A cursor is client input too: its offset and limit get the ranges the query has.
      guard let d = Data(base64Encoded: c), let j = JSON.parse(Array(d)), let o = j["offset"]?.int, (0...InputLimits.maxOffset).contains(o),
        let l = j["limit"]?.int, (1...250).contains(l)
      else {
        return msg(400, "An invalid cursor was provided")
      }
      offset = o
      limit = l
    }
    var all = w.order.compactMap { w.workflows[$0] }
    if let a = r.q("active") {
      guard a == "true" || a == "false" else { return msg(400, "request/query/active must be boolean") }
      all = all.filter { $0["active"]?.bool == (a == "true") }
    }
    if let tags = r.q("tags"), !tags.isEmpty {
      let wanted = Set(tags.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
      all = all.filter { wf in (wf["tags"]?.array ?? []).contains { wanted.contains($0["name"]?.string ?? "") } }
    }
    if let name = r.q("name") { all = all.filter { $0["name"]?.string == name } }
    let end = min(all.count, offset + limit)
    let page = offset < all.count ? Array(all[offset..<end]) : []
    var next: JSON = .null
    if end < all.count {
      let cursor: JSON = ["offset": .int(end), "limit": .int(limit)]
      next = .string(Data(cursor.bytes).base64EncodedString())
    }
    return .json(200, ["data": .array(page), "nextCursor": next])
  }

  /// Validates a workflow body as n8n's OpenAPI schema does (additionalProperties: false).
  static func validate(_ r: SandboxRequest) -> Result<[String: JSON], ResponseError> {
    guard let body = r.json else { return .failure(.init(msg(400, "request/body must be object"))) }
    guard case .object(let o) = body else { return .failure(.init(msg(400, "request/body must be object"))) }
    for k in o.keys.sorted() where readOnly.contains(k) {
      return .failure(.init(msg(400, "request/body/\(k) is read-only")))
    }
    if o.keys.contains(where: { !writable.contains($0) }) {
      return .failure(.init(msg(400, "request/body must NOT have additional properties")))
    }
    for req in ["name", "nodes", "connections", "settings"] where o[req] == nil {
      return .failure(.init(msg(400, "request/body must have required property '\(req)'")))
    }
    guard o["name"]?.string != nil else { return .failure(.init(msg(400, "request/body/name must be string"))) }
    guard let nodes = o["nodes"]?.array else { return .failure(.init(msg(400, "request/body/nodes must be array"))) }
    for (i, n) in nodes.enumerated() {
      guard case .object(let no) = n else { return .failure(.init(msg(400, "request/body/nodes/\(i) must be object"))) }
      if no.keys.contains(where: { !nodeKeys.contains($0) }) {
        return .failure(.init(msg(400, "request/body/nodes/\(i) must NOT have additional properties")))
      }
      for req in ["name", "type", "typeVersion", "position", "parameters"] where no[req] == nil {
        return .failure(.init(msg(400, "request/body/nodes/\(i) must have required property '\(req)'")))
      }
      guard no["name"]?.string != nil else { return .failure(.init(msg(400, "request/body/nodes/\(i)/name must be string"))) }
      guard no["type"]?.string != nil else { return .failure(.init(msg(400, "request/body/nodes/\(i)/type must be string"))) }
      switch no["typeVersion"] {
      case .int?, .double?: break
      default: return .failure(.init(msg(400, "request/body/nodes/\(i)/typeVersion must be number")))
      }
      guard let pos = no["position"]?.array, pos.count == 2,
        pos.allSatisfy({ if case .int = $0 { true } else if case .double = $0 { true } else { false } })
      else {
        return .failure(.init(msg(400, "request/body/nodes/\(i)/position must be array of 2 numbers")))
      }
      guard no["parameters"]?.object != nil else { return .failure(.init(msg(400, "request/body/nodes/\(i)/parameters must be object"))) }
    }
    guard o["connections"]?.object != nil else { return .failure(.init(msg(400, "request/body/connections must be object"))) }
    guard case .object(let settings) = o["settings"]! else { return .failure(.init(msg(400, "request/body/settings must be object"))) }
    if settings.keys.contains(where: { !settingsKeys.contains($0) }) {
      return .failure(.init(msg(400, "request/body/settings must NOT have additional properties")))
    }
    for k in ["saveDataErrorExecution", "saveDataSuccessExecution"] {
      if let v = settings[k], !["all", "none"].contains(v.string ?? "") {
        return .failure(.init(msg(400, "request/body/settings/\(k) must be equal to one of the allowed values")))
      }
    }
    if let v = settings["callerPolicy"], !["any", "none", "workflowsFromAList", "workflowsFromSameOwner"].contains(v.string ?? "") {
      return .failure(.init(msg(400, "request/body/settings/callerPolicy must be equal to one of the allowed values")))
    }
    if let v = settings["executionOrder"], v.string == nil {
      return .failure(.init(msg(400, "request/body/settings/executionOrder must be string")))
    }
    if let v = settings["timezone"], v.string == nil { return .failure(.init(msg(400, "request/body/settings/timezone must be string"))) }
    if let v = settings["executionTimeout"], v.int == nil {
      return .failure(.init(msg(400, "request/body/settings/executionTimeout must be number")))
    }
    for k in ["saveManualExecutions", "saveExecutionProgress"] {
      if let v = settings[k], v.bool == nil { return .failure(.init(msg(400, "request/body/settings/\(k) must be boolean"))) }
    }
    return .success(o)
  }

  static func stamp(_ now: Date) -> JSON { .string(Timestamp.rfc3339(now, digits: 3)) }

  static func create(_ r: SandboxRequest, _ w: inout N8nState, _ env: EmulatorEnv, now: Date) -> SandboxResponse {
    let o: [String: JSON]
    switch validate(r) {
    case .failure(let e): return e.response
    case .success(let v): o = v
    }
    let serial = env.nextSerial()
    let id = Ident.make("workflow-\(serial)", length: 16)
    let wf: JSON = [
      "id": .string(id), "name": o["name"]!, "active": false, "isArchived": false,
      "createdAt": stamp(now), "updatedAt": stamp(now),
      "nodes": o["nodes"]!, "connections": o["connections"]!, "settings": o["settings"]!,
      "staticData": o["staticData"] ?? .null, "pinData": o["pinData"] ?? .null, "meta": .null,
      "versionId": .string(Ident.uuid("version-\(serial)")), "triggerCount": 0, "tags": [],
    ]
    w.workflows[id] = wf
    w.order.append(id)
    return .json(200, wf)
  }

  static func update(_ id: String, _ r: SandboxRequest, _ w: inout N8nState, _ env: EmulatorEnv, now: Date) -> SandboxResponse {
    let o: [String: JSON]
    switch validate(r) {
    case .failure(let e): return e.response
    case .success(let v): o = v
    }
    guard var wf = w.workflows[id] else { return msg(404, "Not Found") }
    let serial = env.nextSerial()
    // PUT replaces the definition; identity, activation and tags stay. n8n assigns the body
    // onto the stored entity, so `staticData`/`pinData` left out of the body are kept.
    wf["name"] = o["name"]
    wf["nodes"] = o["nodes"]
    wf["connections"] = o["connections"]
    wf["settings"] = o["settings"]
    if let sd = o["staticData"] { wf["staticData"] = sd }
    if let pd = o["pinData"] { wf["pinData"] = pd }
    wf["updatedAt"] = stamp(now)
    wf["versionId"] = .string(Ident.uuid("version-\(serial)"))
    w.workflows[id] = wf
    return .json(200, wf)
  }

  static func isTrigger(_ node: JSON) -> Bool {
    let t = (node["type"]?.string ?? "").lowercased()
    return node["disabled"]?.bool != true && (t.hasSuffix("trigger") || t.hasSuffix(".webhook") || t.contains("trigger"))
  }

  static func setActive(_ id: String, _ active: Bool, _ w: inout N8nState, now: Date) -> SandboxResponse {
    guard var wf = w.workflows[id] else { return msg(404, "Not Found") }
    if active, !(wf["nodes"]?.array ?? []).contains(where: isTrigger) {
      return msg(400, "Workflow has no node to start the workflow - at least one trigger, poller or webhook node is required")
    }
    wf["active"] = .bool(active)
    wf["updatedAt"] = stamp(now)
    w.workflows[id] = wf
    return .json(200, wf)
  }

  static func putTags(_ id: String, _ r: SandboxRequest, _ w: inout N8nState, now: Date) -> SandboxResponse {
    guard var wf = w.workflows[id] else { return msg(404, "Not Found") }
    guard let arr = r.json?.array else { return msg(400, "request/body must be array") }
    var tags: [JSON] = []
    for (i, t) in arr.enumerated() {
      guard case .object(let to) = t, let tid = to["id"]?.string else {
        return msg(400, "request/body/\(i) must have required property 'id'")
      }
      if to.keys.contains(where: { $0 != "id" }) { return msg(400, "request/body/\(i) must NOT have additional properties") }
      guard let tag = w.tags[tid] else { return msg(404, "Some tags not found") }
      if !tags.contains(tag) { tags.append(tag) }
    }
    wf["tags"] = .array(tags)
    wf["updatedAt"] = stamp(now)
    w.workflows[id] = wf
    return .json(200, .array(tags))
  }

  static func createTag(_ r: SandboxRequest, _ w: inout N8nState, _ env: EmulatorEnv, now: Date) -> SandboxResponse {
    guard case .object(let o)? = r.json else { return msg(400, "request/body must be object") }
    if o.keys.contains(where: { $0 != "name" }) {
      if o.keys.contains(where: { ["id", "createdAt", "updatedAt"].contains($0) }) {
        let k = o.keys.sorted().first { ["id", "createdAt", "updatedAt"].contains($0) }!
        return msg(400, "request/body/\(k) is read-only")
      }
      return msg(400, "request/body must NOT have additional properties")
    }
    guard let name = o["name"]?.string, !name.isEmpty else { return msg(400, "request/body must have required property 'name'") }
    if w.tags.values.contains(where: { $0["name"]?.string == name }) { return msg(409, "Tag already exists") }
    let serial = env.nextSerial()
    let id = Ident.make("tag-\(serial)", length: 16)
    let tag: JSON = ["id": .string(id), "name": .string(name), "createdAt": stamp(now), "updatedAt": stamp(now)]
    w.tags[id] = tag
    w.tagOrder.append(id)
    return .json(201, tag)
  }
}
