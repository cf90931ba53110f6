import Foundation

/// Cloudflare API v4: zones and zone entrypoint rulesets (phase http_request_cache_settings and others).
enum CloudflareEmulator {
  static func envelope(_ status: Int, result: JSON, info: JSON? = nil, headers: [(String, String)] = []) -> SandboxResponse {
    var o: [String: JSON] = ["success": true, "errors": [], "messages": [], "result": result]
    if let info { o["result_info"] = info }
    return .json(status, .object(o), headers: headers)
  }

  static func failure(
    _ status: Int, _ code: Int, _ message: String, chain: [(Int, String)] = [],
    headers: [(String, String)] = []
  ) -> SandboxResponse {
    var e: [String: JSON] = ["code": .int(code), "message": .string(message)]
    if !chain.isEmpty {
      e["error_chain"] = .array(chain.map { ["code": .int($0.0), "message": .string($0.1)] })
    }
    return .json(status, ["success": false, "errors": [.object(e)], "messages": [], "result": .null], headers: headers)
  }

  static func rateLimited(retryAfter: Int) -> SandboxResponse {
    failure(
      429, 971, "Please wait and consider throttling your request speed",
      headers: [("Retry-After", String(max(1, retryAfter)))])
  }

  static let phases: Set<String> = [
    "http_request_cache_settings", "http_request_transform", "http_request_late_transform",
    "http_request_firewall_custom", "http_request_dynamic_redirect", "http_request_origin",
    "http_config_settings", "http_response_headers_transform", "http_ratelimit",
  ]

  static func handle(_ r: SandboxRequest, _ w: inout CloudflareState, _ env: EmulatorEnv, now: Date) -> SandboxResponse {
    guard let auth = r.headers["authorization"] else {
      return failure(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
    }
    let parts = auth.split(separator: " ", maxSplits: 1)
    guard parts.count == 2, parts[0] == "Bearer" else {
      return failure(400, 6003, "Invalid request headers", chain: [(6111, "Invalid format for Authorization header")])
    }
    guard String(parts[1]) == env.credentials.cloudflareToken else {
      return failure(403, 9109, "Invalid access token")
    }
    // Per-token limit: N requests per window; going over blocks every call for `block` seconds.
    let t = now.timeIntervalSince1970
    if w.blockedUntil > t {
      return rateLimited(retryAfter: Int((w.blockedUntil - t).rounded(.up)))
    }
    let limits = w.limits
    w.recent = w.recent.filter { $0 > t - limits.window }
    if w.recent.count >= limits.requests {
      w.blockedUntil = t + limits.block
      w.recent = []
      return rateLimited(retryAfter: Int(limits.block.rounded(.up)))
    }
    w.recent.append(t)

    let s = Array(r.path.split(separator: "/").map(String.init).dropFirst(2))  // drop "client", "v4"
    switch (r.method, s.count) {
    case ("GET", 1) where s[0] == "zones": return zones(r, w)
    case ("GET", 2) where s[0] == "zones":
      guard let z = w.zones[s[1]] else { return noRoute(r) }
      return envelope(200, result: z)
    case (_, 6) where s[0] == "zones" && s[2] == "rulesets" && s[3] == "phases" && s[5] == "entrypoint":
      guard w.zones[s[1]] != nil else { return noRoute(r) }
      guard phases.contains(s[4]) else {
        return failure(400, 20003, "'\(s[4])' is not a valid value for phase")
      }
      switch r.method {
      case "GET":
        guard let rs = w.rulesets[s[1]]?[s[4]] else {
          return failure(404, 10003, "could not find entrypoint ruleset in the \(s[4]) phase")
        }
        return envelope(200, result: rs)
      case "PUT": return putEntrypoint(zone: s[1], phase: s[4], r, &w, env, now: now)
      default: return failure(405, 10000, "Method not allowed")
      }
    case (_, 3...5) where s[0] == "zones" && (s[2] == "settings" || (s.count >= 4 && s[2] == "workers" && s[3] == "routes")):
      guard w.zones[s[1]] != nil else { return noRoute(r) }
      if s[2] == "settings" { return settings(zone: s[1], Array(s.dropFirst(3)), r, &w, now: now) }
      return routes(zone: s[1], Array(s.dropFirst(4)), r, &w, env)
    case (_, 4...7) where s[0] == "accounts":
      guard s[1] == w.accountId else { return failure(403, 10000, "Authentication error") }
      if s[2] == "workers" && s[3] == "scripts" { return scripts(Array(s.dropFirst(4)), r, &w, now: now) }
      if s[2] == "r2" && s[3] == "buckets" { return buckets(Array(s.dropFirst(4)), r, &w, now: now) }
      return failure(400, 7000, "No route for that URI")
    default:
      return failure(400, 7000, "No route for that URI")
    }
  }

  static func noRoute(_ r: SandboxRequest) -> SandboxResponse {
    failure(400, 7003, "Could not route to \(r.path), perhaps your object identifier is invalid?")
  }

  static func zones(_ r: SandboxRequest, _ w: CloudflareState) -> SandboxResponse {
    var page = 1
    var perPage = 20
    if let p = r.q("page") {
      // Bounded so that (page - 1) × per_page cannot overflow (docs/sandbox.md).
      guard let n = Int(p), (1...InputLimits.maxPage).contains(n) else {
        return failure(400, 1001, "Invalid page number: \(p.prefix(40)); pages are 1 to \(InputLimits.maxPage)")
      }
      page = n
    }
    if let p = r.q("per_page") {
      guard let n = Int(p), (5...50).contains(n) else {
        return failure(400, 1001, "per_page must be a number between 5 and 50")
      }
      perPage = n
    }
    var all = w.zoneOrder.compactMap { w.zones[$0] }
    if let name = r.q("name") { all = all.filter { $0["name"]?.string == name } }
    if let status = r.q("status") { all = all.filter { $0["status"]?.string == status } }
    let start = min(all.count, (page - 1) * perPage)
    let end = min(all.count, start + perPage)
    let result = Array(all[start..<end])
    let info: JSON = [
      "page": .int(page), "per_page": .int(perPage), "count": .int(result.count),
      "total_count": .int(all.count), "total_pages": .int((all.count + perPage - 1) / perPage),
    ]
    return envelope(200, result: .array(result), info: info)
  }

  static let ruleKeys: Set<String> = [
    "id", "ref", "description", "expression", "action", "action_parameters", "enabled",
    "logging", "version", "last_updated",
  ]

  static func putEntrypoint(zone: String, phase: String, _ r: SandboxRequest, _ w: inout CloudflareState, _ env: EmulatorEnv, now: Date)
    -> SandboxResponse
  {
    guard case .object(let body)? = r.json else {
      return failure(400, 10026, "failed to parse request body: the body is not a JSON object")
    }
    for k in body.keys.sorted() where k != "rules" && k != "description" {
      return failure(400, 20021, "'\(k)' cannot be set on the entrypoint ruleset of a phase; send only 'rules' (and 'description')")
    }
    guard let rulesJSON = body["rules"]?.array else {
      return failure(400, 20021, "'rules' is required and must be a list")
    }
    let old = w.rulesets[zone]?[phase]
    let oldRules = Dictionary(
      (old?["rules"]?.array ?? []).compactMap { r in r["id"]?.string.map { ($0, r) } }, uniquingKeysWith: { a, _ in a })
    let version = (Int(old?["version"]?.string ?? "0") ?? 0) + 1
    let stamp = JSON.string(Timestamp.rfc3339(now, digits: 6))
    var rules: [JSON] = []
    var refs = Set<String>()
    for (i, rj) in rulesJSON.enumerated() {
      guard case .object(var rule) = rj else { return failure(400, 20021, "rules[\(i)]: must be an object") }
      if let k = rule.keys.sorted().first(where: { !ruleKeys.contains($0) }) {
        return failure(400, 20021, "rules[\(i)]: unknown field '\(k)'")
      }
      guard let expr = rule["expression"]?.string, !expr.trimmingCharacters(in: .whitespaces).isEmpty else {
        return failure(400, 20021, "rules[\(i)]: 'expression' is required")
      }
      if let problem = checkExpression(expr) {
        return failure(400, 20021, "rules[\(i)]: filter parsing error: \(problem)")
      }
      guard let action = rule["action"]?.string else { return failure(400, 20021, "rules[\(i)]: 'action' is required") }
      if phase == "http_request_cache_settings" {
        guard action == "set_cache_settings" else {
          return failure(400, 20021, "rules[\(i)]: '\(action)' is not a valid action for phase \(phase); expected 'set_cache_settings'")
        }
        if let p = rule["action_parameters"] {
          if let problem = checkCacheParameters(p) { return failure(400, 20021, "rules[\(i)]: \(problem)") }
        }
      }
      if phase == "http_config_settings" {
        guard action == "set_config" else {
          return failure(400, 20021, "rules[\(i)]: '\(action)' is not a valid action for phase \(phase); expected 'set_config'")
        }
        if let problem = checkConfigParameters(rule["action_parameters"]) { return failure(400, 20021, "rules[\(i)]: \(problem)") }
      }
      if let e = rule["enabled"], e.bool == nil { return failure(400, 20021, "rules[\(i)]: 'enabled' must be a boolean") }
      let serial = env.nextSerial()
      var id = Ident.make("rule-\(zone)-\(serial)", length: 32, alphabet: Ident.hex)
      var ruleVersion = 1
      var unchanged: JSON?
      if let given = rule["id"]?.string, let prev = oldRules[given] {
        id = given
        // A rule sent back as it was (server stamps aside) keeps its version and last_updated.
        let same = ruleContent(prev, id: given) == ruleContent(rj, id: given)
        ruleVersion = (Int(prev["version"]?.string ?? "0") ?? 0) + (same ? 0 : 1)
        if same { unchanged = prev["last_updated"] }
      }
      rule["id"] = .string(id)
      rule["ref"] = rule["ref"] ?? .string(id)
      if let ref = rule["ref"]?.string, !refs.insert(ref).inserted {
        return failure(400, 20021, "rules[\(i)]: duplicate ref '\(ref)'")
      }
      rule["enabled"] = rule["enabled"] ?? true
      rule["version"] = .string(String(ruleVersion))
      rule["last_updated"] = unchanged ?? stamp
      rules.append(.object(rule))
    }
    let serial = env.nextSerial()
    let ruleset: JSON = [
      "id": old?["id"] ?? .string(Ident.make("ruleset-\(zone)-\(phase)-\(serial)", length: 32, alphabet: Ident.hex)),
      "name": old?["name"] ?? "default",
      "description": body["description"] ?? old?["description"] ?? "",
      "kind": "zone", "phase": .string(phase), "version": .string(String(version)),
      "last_updated": stamp, "rules": .array(rules),
    ]
    w.rulesets[zone, default: [:]][phase] = ruleset
    return envelope(200, result: ruleset)
  }

  /// A rule without what the server stamps, with its defaults filled in.
  static func ruleContent(_ r: JSON, id: String) -> JSON {
    guard case .object(var o) = r else { return r }
    o["version"] = nil
    o["last_updated"] = nil
    o["id"] = nil
    o["ref"] = o["ref"] ?? .string(id)
    o["enabled"] = o["enabled"] ?? true
    return .object(o)
  }

  /// A light syntax check of a rules-language expression: balanced quotes, parentheses and braces.
  static func checkExpression(_ e: String) -> String? {
    var depth = 0
    var braces = 0
    var inString = false
    var escaped = false
    for c in e {
      if inString {
        if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
        continue
      }
      switch c {
      case "\"": inString = true
      case "(": depth += 1
      case ")":
        depth -= 1
        if depth < 0 { return "unexpected ')'" }
      case "{": braces += 1
      case "}":
        braces -= 1
        if braces < 0 { return "unexpected '}'" }
      default: break
      }
    }
    if inString { return "unterminated string" }
    if depth != 0 { return "unbalanced parentheses" }
    if braces != 0 { return "unbalanced braces" }
    return nil
  }

  static func checkCacheParameters(_ p: JSON) -> String? {
    guard case .object(let o) = p else { return "'action_parameters' must be an object" }
    if let c = o["cache"], c.bool == nil { return "'action_parameters.cache' must be a boolean" }
    for ttlKey in ["edge_ttl", "browser_ttl"] {
      guard let ttl = o[ttlKey] else { continue }
      guard case .object(let t) = ttl, let mode = t["mode"]?.string else { return "'action_parameters.\(ttlKey).mode' is required" }
      let modes =
        ttlKey == "edge_ttl"
        ? ["override_origin", "respect_origin", "bypass_by_default"]
        : ["override_origin", "respect_origin", "bypass"]
      guard modes.contains(mode) else { return "'\(mode)' is not a valid value for action_parameters.\(ttlKey).mode" }
      if mode == "override_origin" {
        guard let d = t["default"]?.int, d >= 0 else {
          return "'action_parameters.\(ttlKey).default' is required with mode override_origin"
        }
        if d > 31_536_000 { return "'action_parameters.\(ttlKey).default' must be at most 31536000 (one year)" }
      }
    }
    for flag in ["origin_cache_control", "respect_strong_etags", "origin_error_page_passthru"] {
      if let v = o[flag], v.bool == nil { return "'action_parameters.\(flag)' must be a boolean" }
    }
    return nil
  }

  static let polishValues: Set<String> = ["off", "lossless", "lossy"]

  /// `set_config` parameters: a non-empty object; the settings the sandbox knows are type-checked.
  static func checkConfigParameters(_ p: JSON?) -> String? {
    guard case .object(let o)? = p, !o.isEmpty else { return "'action_parameters' with at least one setting is required for set_config" }
    if let v = o["polish"], !(v.string.map(polishValues.contains) ?? false) {
      return "'action_parameters.polish' must be one of off, lossless, lossy"
    }
    for flag in ["automatic_https_rewrites", "mirage", "rocket_loader", "email_obfuscation", "opportunistic_encryption"] {
      if let v = o[flag], v.bool == nil { return "'action_parameters.\(flag)' must be a boolean" }
    }
    return nil
  }
}

/// The sandbox's Cloudflare account (docs/sandbox.md): every seeded zone's `account.id`.
public enum SandboxCloudflare {
  public static let accountId = Ident.make("account", length: 32, alphabet: Ident.hex)
}

// MARK: zone settings, Workers scripts and routes, R2 buckets

extension CloudflareEmulator {
  /// Zone settings the sandbox knows, with their default and allowed values.
  static let settingDefaults: [String: (value: String, allowed: Set<String>)] = [
    "webp": ("off", ["on", "off"]),
    "polish": ("off", polishValues),
    "brotli": ("on", ["on", "off"]),
    "always_use_https": ("off", ["on", "off"]),
    "cache_level": ("aggressive", ["aggressive", "basic", "simplified"]),
  ]

  static func setting(zone: String, _ id: String, _ w: CloudflareState) -> JSON? {
    if let s = w.settings[zone]?[id] { return s }
    guard let d = settingDefaults[id] else { return nil }
    return ["id": .string(id), "value": .string(d.value), "editable": true, "modified_on": .null]
  }

  /// `GET /zones/{id}/settings`, `GET|PATCH /zones/{id}/settings/{setting}`.
  static func settings(zone: String, _ rest: [String], _ r: SandboxRequest, _ w: inout CloudflareState, now: Date) -> SandboxResponse {
    switch (r.method, rest.count) {
    case ("GET", 0):
      return envelope(200, result: .array(settingDefaults.keys.sorted().compactMap { setting(zone: zone, $0, w) }))
    case ("GET", 1), ("PATCH", 1):
      guard var current = setting(zone: zone, rest[0], w), let d = settingDefaults[rest[0]] else {
        return failure(400, 1006, "Unrecognized zone setting name")
      }
      if r.method == "GET" { return envelope(200, result: current) }
      guard case .object(let body)? = r.json, let value = body["value"] else {
        return failure(400, 1007, "Invalid request: 'value' is required")
      }
      guard let v = value.string, d.allowed.contains(v) else {
        return failure(400, 1007, "Invalid value for zone setting \(rest[0])")
      }
      if current["value"] != value {
        current["value"] = value
        current["modified_on"] = .string(Timestamp.rfc3339(now, digits: 6))
      }
      w.settings[zone, default: [:]][rest[0]] = current
      return envelope(200, result: current)
    default:
      return failure(405, 10000, "Method not allowed")
    }
  }

  /// Where a route pattern's host must lie and `*` may stand (API-NOTES: start of host, end of path).
  static func routeProblem(_ pattern: String, zoneName: String) -> String? {
    guard let slash = pattern.firstIndex(of: "/"), slash != pattern.startIndex else {
      return "Route pattern must include a host and a path"
    }
    var host = Substring(pattern[..<slash])
    if host.hasPrefix("*") {
      host = host.dropFirst()
      if host.hasPrefix(".") { host = host.dropFirst() }
    }
    if host.contains("*") || pattern[slash...].dropLast().contains("*") {
      return "Route pattern may only contain wildcards at the beginning of the hostname and the end of the path"
    }
    guard host == zoneName || host.hasSuffix("." + zoneName) else { return "Route pattern must be on the zone \(zoneName)" }
    return nil
  }

  /// `GET|POST /zones/{id}/workers/routes`, `GET|PUT|DELETE /zones/{id}/workers/routes/{route}`.
  static func routes(zone: String, _ rest: [String], _ r: SandboxRequest, _ w: inout CloudflareState, _ env: EmulatorEnv) -> SandboxResponse
  {
    var list = w.routes[zone] ?? []
    let zoneName = w.zones[zone]?["name"]?.string ?? ""
    enum Checked {
      case success((String, JSON))
      case failure(SandboxResponse)
    }
    func validated(except id: String?) -> Checked {
      guard case .object(let body)? = r.json else {
        return .failure(failure(400, 10026, "failed to parse request body: the body is not a JSON object"))
      }
      guard let pattern = body["pattern"]?.string, !pattern.isEmpty else {
        return .failure(failure(400, 10022, "Route pattern is required"))
      }
      if let problem = routeProblem(pattern, zoneName: zoneName) { return .failure(failure(400, 10022, problem)) }
      if list.contains(where: { $0["pattern"]?.string == pattern && $0["id"]?.string != id }) {
        return .failure(failure(409, 10020, "A route with the same pattern already exists."))
      }
      let script = body["script"] ?? .null
      if let name = script.string, w.scripts[name] == nil {
        return .failure(
          failure(400, 10019, "Cannot configure a route for a Worker which does not exist. Please ensure this Worker exists and try again.")
        )
      } else if script != .null && script.string == nil {
        return .failure(failure(400, 10021, "'script' must be a string"))
      }
      return .success((pattern, script))
    }
    switch (r.method, rest.count) {
    case ("GET", 0):
      return envelope(200, result: .array(list))
    case ("POST", 0):
      switch validated(except: nil) {
      case .failure(let f): return f
      case .success(let (pattern, script)):
        let route: JSON = [
          "id": .string(Ident.make("route-\(zone)-\(env.nextSerial())", length: 32, alphabet: Ident.hex)),
          "pattern": .string(pattern), "script": script,
        ]
        list.append(route)
        w.routes[zone] = list
        return envelope(200, result: route)
      }
    case (_, 1):
      guard let i = list.firstIndex(where: { $0["id"]?.string == rest[0] }) else {
        return failure(404, 10005, "Route not found")
      }
      switch r.method {
      case "GET": return envelope(200, result: list[i])
      case "DELETE":
        let id = list[i]["id"] ?? .null
        list.remove(at: i)
        w.routes[zone] = list
        return envelope(200, result: ["id": id])
      case "PUT":
        switch validated(except: rest[0]) {
        case .failure(let f): return f
        case .success(let (pattern, script)):
          list[i]["pattern"] = .string(pattern)
          list[i]["script"] = script
          w.routes[zone] = list
          return envelope(200, result: list[i])
        }
      default: return failure(405, 10000, "Method not allowed")
      }
    default:
      return failure(405, 10000, "Method not allowed")
    }
  }

  static func validScriptName(_ n: String) -> Bool {
    !n.isEmpty && n.count <= 63 && n.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == "_") }
      && n.first != "-" && n.last != "-"
  }

  /// `GET /accounts/{a}/workers/scripts`, `PUT|GET|DELETE …/scripts/{name}`, `GET …/scripts/{name}/content/v2`.
  static func scripts(_ rest: [String], _ r: SandboxRequest, _ w: inout CloudflareState, now: Date) -> SandboxResponse {
    switch (r.method, rest.count) {
    case ("GET", 0):
      return envelope(200, result: .array(w.scripts.keys.sorted().compactMap { w.scripts[$0] }))
    case ("PUT", 1):
      return upload(rest[0], r, &w, now: now)
    case ("GET", 1), ("GET", 3):
      if rest.count == 3, rest[1] != "content" || rest[2] != "v2" { return failure(400, 7000, "No route for that URI") }
      guard let content = w.scriptContent[rest[0]] else { return scriptNotFound() }
      return SandboxResponse(status: 200, headers: [("Content-Type", "application/javascript")], body: Array(content.utf8))
    case ("DELETE", 1):
      guard w.scripts.removeValue(forKey: rest[0]) != nil else { return scriptNotFound() }
      w.scriptContent[rest[0]] = nil
      return envelope(200, result: .null)
    default:
      return failure(405, 10000, "Method not allowed")
    }
  }

  static func scriptNotFound() -> SandboxResponse { failure(404, 10007, "workers.api.error.script_not_found") }

  /// A Workers upload: multipart/form-data with a `metadata` part naming the script part
  /// (`body_part`, service-worker syntax; `main_module`, ES modules) by part name or filename,
  /// or the raw script with `Content-Type: application/javascript` (service-worker syntax).
  static func upload(_ name: String, _ r: SandboxRequest, _ w: inout CloudflareState, now: Date) -> SandboxResponse {
    guard validScriptName(name) else {
      return failure(400, 10016, "Invalid Worker name: lowercase letters, digits, - and _, at most 63 characters")
    }
    let type = r.headers["content-type"] ?? ""
    var script: [UInt8]
    var modules = false
    if type.lowercased().hasPrefix("application/javascript") {
      script = r.body
    } else if type.lowercased().hasPrefix("multipart/form-data") {
      guard let boundary = Multipart.boundary(type), let parts = Multipart.parse(r.body, boundary: boundary) else {
        return failure(400, 10021, "the multipart body could not be parsed")
      }
      guard let meta = parts.first(where: { $0.name == "metadata" }), case .object(let m)? = JSON.parse(meta.body) else {
        return failure(400, 10021, "a 'metadata' part with a JSON object is required")
      }
      guard let partName = m["body_part"]?.string ?? m["main_module"]?.string else {
        return failure(400, 10021, "metadata must name the script part in 'body_part' (service worker) or 'main_module' (ES module)")
      }
      modules = m["main_module"] != nil
      guard let part = parts.first(where: { $0.name == partName || $0.filename == partName }) else {
        return failure(400, 10021, "No such module \"\(partName)\" in the upload")
      }
      script = part.body
    } else {
      return failure(415, 10001, "Content-Type must be multipart/form-data or application/javascript")
    }
    guard let text = String(validating: script, as: UTF8.self), !text.isEmpty else {
      return failure(400, 10021, "the script is empty or not UTF-8")
    }
    if !modules && text.contains("export default") {
      return failure(
        400, 10021, "Uncaught SyntaxError: Unexpected token 'export' (a service-worker script cannot export; upload it with main_module)")
    }
    if !modules && !text.contains("addEventListener") {
      return failure(400, 10021, "No event handlers were registered. This script does nothing.")
    }
    let stamp = JSON.string(Timestamp.rfc3339(now, digits: 6))
    let created = w.scripts[name]?["created_on"] ?? stamp
    let meta: JSON = [
      "id": .string(name), "etag": .string(Ident.make(text, length: 64, alphabet: Ident.hex)),
      "handlers": ["fetch"], "created_on": created, "modified_on": stamp, "usage_model": "standard",
      "has_modules": .bool(modules), "compatibility_date": "", "logpush": false,
    ]
    w.scripts[name] = meta
    w.scriptContent[name] = text
    return envelope(200, result: meta)
  }

  static let locationHints: Set<String> = ["wnam", "enam", "weur", "eeur", "apac", "oc"]

  static func validBucketName(_ n: String) -> Bool {
    (3...63).contains(n.count) && n.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") } && n.first != "-"
      && n.last != "-"
  }

  /// `GET|POST /accounts/{a}/r2/buckets`, `GET|DELETE …/r2/buckets/{name}`.
  static func buckets(_ rest: [String], _ r: SandboxRequest, _ w: inout CloudflareState, now: Date) -> SandboxResponse {
    switch (r.method, rest.count) {
    case ("GET", 0):
      var names = w.buckets.keys.sorted()
      if let c = r.q("name_contains") { names = names.filter { $0.contains(c) } }
      return envelope(200, result: ["buckets": .array(names.compactMap { w.buckets[$0] })])
    case ("POST", 0):
      guard case .object(let body)? = r.json, let name = body["name"]?.string else {
        return failure(400, 10005, "The specified bucket name is not valid.")
      }
      guard validBucketName(name) else { return failure(400, 10005, "The specified bucket name is not valid.") }
      var location = "ENAM"
      if let hint = body["locationHint"] {
        guard let h = hint.string?.lowercased(), locationHints.contains(h) else {
          return failure(400, 10085, "The specified location hint is not valid: use wnam, enam, weur, eeur, apac or oc")
        }
        location = h.uppercased()
      }
      guard w.buckets[name] == nil else {
        return failure(409, 10004, "The bucket you tried to create already exists, and you own it.")
      }
      let bucket: JSON = [
        "name": .string(name), "creation_date": .string(Timestamp.rfc3339(now, digits: 3)),
        "location": .string(location), "storage_class": "Standard",
      ]
      w.buckets[name] = bucket
      return envelope(200, result: bucket)
    case ("GET", 1):
      guard let b = w.buckets[rest[0]] else { return failure(404, 10006, "The specified bucket does not exist.") }
      return envelope(200, result: b)
    case ("DELETE", 1):
      guard w.buckets.removeValue(forKey: rest[0]) != nil else {
        return failure(404, 10006, "The specified bucket does not exist.")
      }
      return envelope(200, result: .object([:]))
    default:
      return failure(405, 10000, "Method not allowed")
    }
  }
}

/// multipart/form-data (RFC 7578), enough for Workers uploads.
enum Multipart {
  struct Part {
    var name: String?
    var filename: String?
    var contentType: String?
    var body: [UInt8]
  }

  static func boundary(_ contentType: String) -> String? {
    for p in contentType.split(separator: ";").dropFirst() {
      let kv = p.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1).map(String.init)
      if kv.count == 2, kv[0].lowercased() == "boundary" {
        let b = kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        return b.isEmpty || b.count > 200 ? nil : b
      }
    }
    return nil
  }

  static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
    guard !needle.isEmpty, hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
    var i = from
    while i <= hay.count - needle.count {
      if hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
      i += 1
    }
    return nil
  }

  /// The parts, or nil when the body is not multipart with this boundary (at most 100 parts).
  static func parse(_ body: [UInt8], boundary: String) -> [Part]? {
    let delimiter = Array("--\(boundary)".utf8)
    guard var at = find(delimiter, in: body, from: 0) else { return nil }
    var parts: [Part] = []
    while parts.count < 100 {
      at += delimiter.count
      if body.count >= at + 2, body[at] == UInt8(ascii: "-"), body[at + 1] == UInt8(ascii: "-") { return parts }
      guard let headersStart = find([13, 10], in: body, from: at).map({ $0 + 2 }),
        let headersEnd = find([13, 10, 13, 10], in: body, from: headersStart),
        let next = find([13, 10] + delimiter, in: body, from: headersEnd + 4)
      else { return nil }
      var part = Part(body: Array(body[(headersEnd + 4)..<next]))
      let headers = String(decoding: body[headersStart..<headersEnd], as: UTF8.self)
      for line in headers.components(separatedBy: "\r\n") {
        let kv = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard kv.count == 2 else { continue }
        switch kv[0].lowercased() {
        case "content-disposition":
          for p in kv[1].split(separator: ";").dropFirst() {
            let a = p.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1).map(String.init)
            guard a.count == 2 else { continue }
            let v = a[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            if a[0] == "name" { part.name = v } else if a[0] == "filename" { part.filename = v }
          }
        case "content-type": part.contentType = kv[1]
        default: break
        }
      }
      parts.append(part)
      at = next + 2
    }
    return nil
  }
}
