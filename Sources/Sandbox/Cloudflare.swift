import Foundation

/// Cloudflare API v4: zones and zone entrypoint rulesets (phase http_request_cache_settings and others).
enum CloudflareEmulator {
    static func envelope(_ status: Int, result: JSON, info: JSON? = nil, headers: [(String, String)] = []) -> SandboxResponse {
        var o: [String: JSON] = ["success": true, "errors": [], "messages": [], "result": result]
        if let info { o["result_info"] = info }
        return .json(status, .object(o), headers: headers)
    }

    static func failure(_ status: Int, _ code: Int, _ message: String, chain: [(Int, String)] = [],
                        headers: [(String, String)] = []) -> SandboxResponse {
        var e: [String: JSON] = ["code": .int(code), "message": .string(message)]
        if !chain.isEmpty {
            e["error_chain"] = .array(chain.map { ["code": .int($0.0), "message": .string($0.1)] })
        }
        return .json(status, ["success": false, "errors": [.object(e)], "messages": [], "result": .null], headers: headers)
    }

    static func rateLimited(retryAfter: Int) -> SandboxResponse {
        failure(429, 971, "Please wait and consider throttling your request speed",
                headers: [("Retry-After", String(max(1, retryAfter)))])
    }

    static let phases: Set<String> = ["http_request_cache_settings", "http_request_transform", "http_request_late_transform",
                                      "http_request_firewall_custom", "http_request_dynamic_redirect", "http_request_origin",
                                      "http_config_settings", "http_response_headers_transform", "http_ratelimit"]

    static func handle(_ r: SandboxRequest, _ w: inout World, now: Date) -> SandboxResponse {
        guard let auth = r.headers["authorization"] else {
            return failure(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
        }
        let parts = auth.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0] == "Bearer" else {
            return failure(400, 6003, "Invalid request headers", chain: [(6111, "Invalid format for Authorization header")])
        }
        guard String(parts[1]) == w.credentials.cloudflareToken else {
            return failure(403, 9109, "Invalid access token")
        }
        // Per-token limit: N requests per window; going over blocks every call for `block` seconds.
        let t = now.timeIntervalSince1970
        if w.cloudflare.blockedUntil > t {
            return rateLimited(retryAfter: Int((w.cloudflare.blockedUntil - t).rounded(.up)))
        }
        let limits = w.cloudflare.limits
        w.cloudflare.recent = w.cloudflare.recent.filter { $0 > t - limits.window }
        if w.cloudflare.recent.count >= limits.requests {
            w.cloudflare.blockedUntil = t + limits.block
            w.cloudflare.recent = []
            return rateLimited(retryAfter: Int(limits.block.rounded(.up)))
        }
        w.cloudflare.recent.append(t)

        let s = Array(r.path.split(separator: "/").map(String.init).dropFirst(2))  // drop "client", "v4"
        switch (r.method, s.count) {
        case ("GET", 1) where s[0] == "zones": return zones(r, w)
        case ("GET", 2) where s[0] == "zones":
            guard let z = w.cloudflare.zones[s[1]] else { return noRoute(r) }
            return envelope(200, result: z)
        case (_, 6) where s[0] == "zones" && s[2] == "rulesets" && s[3] == "phases" && s[5] == "entrypoint":
            guard w.cloudflare.zones[s[1]] != nil else { return noRoute(r) }
            guard phases.contains(s[4]) else {
                return failure(400, 20003, "'\(s[4])' is not a valid value for phase")
            }
            switch r.method {
            case "GET":
                guard let rs = w.cloudflare.rulesets[s[1]]?[s[4]] else {
                    return failure(404, 10003, "could not find entrypoint ruleset in the \(s[4]) phase")
                }
                return envelope(200, result: rs)
            case "PUT": return putEntrypoint(zone: s[1], phase: s[4], r, &w, now: now)
            default: return failure(405, 10000, "Method not allowed")
            }
        default:
            return failure(400, 7000, "No route for that URI")
        }
    }

    static func noRoute(_ r: SandboxRequest) -> SandboxResponse {
        failure(400, 7003, "Could not route to \(r.path), perhaps your object identifier is invalid?")
    }

    static func zones(_ r: SandboxRequest, _ w: World) -> SandboxResponse {
        var page = 1, perPage = 20
        if let p = r.q("page") {
            // Bounded so that (page - 1) × per_page cannot overflow (docs/sandbox.md).
            guard let n = Int(p), (1...InputLimits.maxPage).contains(n) else { return failure(400, 1001, "Invalid page number: \(p.prefix(40)); pages are 1 to \(InputLimits.maxPage)") }
            page = n
        }
        if let p = r.q("per_page") {
            guard let n = Int(p), (5...50).contains(n) else {
                return failure(400, 1001, "per_page must be a number between 5 and 50")
            }
            perPage = n
        }
        var all = w.cloudflare.zoneOrder.compactMap { w.cloudflare.zones[$0] }
        if let name = r.q("name") { all = all.filter { $0["name"]?.string == name } }
        if let status = r.q("status") { all = all.filter { $0["status"]?.string == status } }
        let start = min(all.count, (page - 1) * perPage)
        let end = min(all.count, start + perPage)
        let result = Array(all[start..<end])
        let info: JSON = ["page": .int(page), "per_page": .int(perPage), "count": .int(result.count),
                          "total_count": .int(all.count), "total_pages": .int((all.count + perPage - 1) / perPage)]
        return envelope(200, result: .array(result), info: info)
    }

    static let ruleKeys: Set<String> = ["id", "ref", "description", "expression", "action", "action_parameters", "enabled",
                                        "logging", "version", "last_updated"]

    static func putEntrypoint(zone: String, phase: String, _ r: SandboxRequest, _ w: inout World, now: Date) -> SandboxResponse {
        guard case .object(let body)? = r.json else {
            return failure(400, 10026, "failed to parse request body: the body is not a JSON object")
        }
        for k in body.keys.sorted() where k != "rules" && k != "description" {
            return failure(400, 20021, "'\(k)' cannot be set on the entrypoint ruleset of a phase; send only 'rules' (and 'description')")
        }
        guard let rulesJSON = body["rules"]?.array else {
            return failure(400, 20021, "'rules' is required and must be a list")
        }
        let old = w.cloudflare.rulesets[zone]?[phase]
        let oldRules = Dictionary((old?["rules"]?.array ?? []).compactMap { r in r["id"]?.string.map { ($0, r) } }, uniquingKeysWith: { a, _ in a })
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
            if let e = rule["enabled"], e.bool == nil { return failure(400, 20021, "rules[\(i)]: 'enabled' must be a boolean") }
            let serial = w.nextSerial()
            var id = Ident.make("rule-\(zone)-\(serial)", length: 32, alphabet: Ident.hex)
            var ruleVersion = 1
            if let given = rule["id"]?.string, let prev = oldRules[given] {
                id = given
                ruleVersion = (Int(prev["version"]?.string ?? "0") ?? 0) + (prev == rj ? 0 : 1)
            }
            rule["id"] = .string(id)
            rule["ref"] = rule["ref"] ?? .string(id)
            if let ref = rule["ref"]?.string, !refs.insert(ref).inserted {
                return failure(400, 20021, "rules[\(i)]: duplicate ref '\(ref)'")
            }
            rule["enabled"] = rule["enabled"] ?? true
            rule["version"] = .string(String(ruleVersion))
            rule["last_updated"] = stamp
            rules.append(.object(rule))
        }
        let serial = w.nextSerial()
        let ruleset: JSON = [
            "id": old?["id"] ?? .string(Ident.make("ruleset-\(zone)-\(phase)-\(serial)", length: 32, alphabet: Ident.hex)),
            "name": old?["name"] ?? "default",
            "description": body["description"] ?? old?["description"] ?? "",
            "kind": "zone", "phase": .string(phase), "version": .string(String(version)),
            "last_updated": stamp, "rules": .array(rules),
        ]
        w.cloudflare.rulesets[zone, default: [:]][phase] = ruleset
        return envelope(200, result: ruleset)
    }

    /// A light syntax check of a rules-language expression: balanced quotes, parentheses and braces.
    static func checkExpression(_ e: String) -> String? {
        var depth = 0, braces = 0, inString = false, escaped = false
        for c in e {
            if inString {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
                continue
            }
            switch c {
            case "\"": inString = true
            case "(": depth += 1
            case ")": depth -= 1; if depth < 0 { return "unexpected ')'" }
            case "{": braces += 1
            case "}": braces -= 1; if braces < 0 { return "unexpected '}'" }
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
            let modes = ttlKey == "edge_ttl" ? ["override_origin", "respect_origin", "bypass_by_default"]
                                             : ["override_origin", "respect_origin", "bypass"]
            guard modes.contains(mode) else { return "'\(mode)' is not a valid value for action_parameters.\(ttlKey).mode" }
            if mode == "override_origin" {
                guard let d = t["default"]?.int, d >= 0 else {
                    return "'action_parameters.\(ttlKey).default' is required with mode override_origin"
                }
            }
        }
        return nil
    }
}
