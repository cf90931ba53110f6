import Foundation

/// HashiCorp Vault: sys/health, token lookup-self, ACL policies, audit devices, KV v2 at mount `secret`.
enum VaultEmulator {
  static func errors(_ status: Int, _ messages: [String]) -> SandboxResponse {
    .json(status, ["errors": .array(messages.map { .string($0) })])
  }

  static func ok(_ data: JSON, requestSeed: Int, extra: [String: JSON] = [:]) -> SandboxResponse {
    var o: [String: JSON] = [
      "request_id": .string(Ident.uuid("request-\(requestSeed)")), "lease_id": "",
      "renewable": false, "lease_duration": 0, "data": data, "wrap_info": .null,
      "warnings": .null, "auth": .null, "mount_type": "",
    ]
    for (k, v) in extra { o[k] = v }
    return .json(200, .object(o))
  }

  static func time(_ t: Double?) -> JSON {
    guard let t else { return "" }
    return .string(Timestamp.rfc3339(Date(timeIntervalSince1970: t), digits: 9))
  }

  static func handle(_ r: SandboxRequest, _ w: inout VaultState, _ env: EmulatorEnv, now: Date) -> SandboxResponse {
    let path = String(r.path.dropFirst("/v1/".count))
    if path == "sys/health" { return health(w, now: now) }
    if w.sealed { return errors(503, ["Vault is sealed"]) }
    let token =
      r.headers["x-vault-token"]
      ?? {
        guard let a = r.headers["authorization"], a.hasPrefix("Bearer ") else { return nil }
        return String(a.dropFirst(7))
      }()
    guard let token, !token.isEmpty else { return errors(403, ["permission denied"]) }
    guard token == env.credentials.vaultToken else {
      return errors(403, ["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"])
    }
    var method = r.method
    if method == "GET", r.q("list") == "true" { method = "LIST" }
    // Request ids vary per request without touching the state (reads stay reads).
    let serial = Int(truncatingIfNeeded: Ident.fnv("\(now.timeIntervalSince1970)|\(r.method)|\(r.path)"))

    if path == "auth/token/lookup-self" {
      guard method == "GET" || method == "POST" else { return errors(405, ["1 error occurred:\n\t* unsupported operation\n\n"]) }
      return lookupSelf(token, now: now, serial: serial)
    }
    if path == "sys/audit" || path == "sys/audit/" {
      guard method == "GET" else { return errors(405, ["1 error occurred:\n\t* unsupported operation\n\n"]) }
      // Vault answers the map at the top level and again under `data`.
      let devices = w.auditDevices ?? [:]
      return ok(.object(devices), requestSeed: serial, extra: devices)
    }
    if path.hasPrefix("sys/audit/") {
      return audit(String(path.dropFirst("sys/audit/".count)), method, r, &w)
    }
    if path == "sys/policies/acl" || path == "sys/policies/acl/" {
      guard method == "LIST" else { return errors(405, ["1 error occurred:\n\t* unsupported operation\n\n"]) }
      let keys = (Array(w.policies.keys) + ["root"]).sorted()
      return ok(["keys": .array(keys.map { .string($0) })], requestSeed: serial)
    }
    if path.hasPrefix("sys/policies/acl/") {
      let name = String(path.dropFirst("sys/policies/acl/".count)).lowercased()
      return policy(name, method, r, &w, serial: serial)
    }
    if path.hasPrefix("secret/data/") || path.hasPrefix("secret/metadata/") || path == "secret/metadata" {
      let isData = path.hasPrefix("secret/data/")
      let key = isData ? String(path.dropFirst("secret/data/".count)) : String(path.dropFirst(min(path.count, "secret/metadata/".count)))
      if key.isEmpty && !(method == "LIST" && !isData) {
        return errors(405, ["1 error occurred:\n\t* unsupported path\n\n"])
      }
      return isData ? data(key, method, r, &w, now: now, serial: serial) : metadata(key, method, &w, serial: serial)
    }
    return errors(404, ["no handler for route \"\(path)\". route entry not found."])
  }

  /// `auth/token/lookup-self` for the sandbox's root token (Vault's clients check a token with it).
  static func lookupSelf(_ token: String, now: Date, serial: Int) -> SandboxResponse {
    let issued = JSON.string(Timestamp.rfc3339(Date(timeIntervalSince1970: 1_705_320_000), digits: 9))
    let data: JSON = [
      "accessor": .string(Ident.make("accessor", length: 24, alphabet: Ident.hex)), "creation_time": 1_705_320_000,
      "creation_ttl": 0, "display_name": "root", "entity_id": "", "expire_time": .null, "explicit_max_ttl": 0,
      "id": .string(token), "issue_time": issued, "meta": .null, "num_uses": 0, "orphan": true, "path": "auth/token/root",
      "policies": ["root"], "renewable": false, "ttl": 0, "type": "service",
    ]
    return ok(data, requestSeed: serial)
  }

  /// Audit devices: enable (`PUT`/`POST`, path in use → 400), disable (`DELETE`, idempotent).
  static func audit(_ rawPath: String, _ method: String, _ r: SandboxRequest, _ w: inout VaultState) -> SandboxResponse {
    var path = rawPath
    while path.hasSuffix("/") { path.removeLast() }
    guard !path.isEmpty, path.count <= 128, !path.contains("//") else { return errors(400, ["missing path"]) }
    let key = path + "/"
    var devices = w.auditDevices ?? [:]
    switch method {
    case "PUT", "POST":
      guard case .object(let o)? = r.json else { return errors(400, ["failed to parse JSON input: invalid request body"]) }
      guard let type = o["type"]?.string, !type.isEmpty else { return errors(400, ["audit type not supplied"]) }
      guard ["file", "socket", "syslog"].contains(type) else { return errors(400, ["unknown backend type: \"\(type)\""]) }
      var options: [String: JSON] = [:]
      for (k, v) in o["options"]?.object ?? [:] {
        // Vault keeps options as strings.
        switch v {
        case .string: options[k] = v
        case .bool(let b): options[k] = .string(b ? "true" : "false")
        default: options[k] = .string(v.serialized)
        }
      }
      if type == "file" && (options["file_path"]?.string ?? "").isEmpty {
        return errors(400, ["file_path is required"])
      }
      if devices[key] != nil { return errors(400, ["path already in use at \(key)"]) }
      devices[key] = [
        "type": .string(type), "description": o["description"] ?? "", "options": .object(options),
        "local": o["local"]?.bool.map(JSON.bool) ?? false, "path": .string(key),
      ]
      w.auditDevices = devices
      return .empty(204)
    case "DELETE":
      devices[key] = nil
      w.auditDevices = devices
      return .empty(204)
    default:
      return errors(405, ["1 error occurred:\n\t* unsupported operation\n\n"])
    }
  }

  static func health(_ w: VaultState, now: Date) -> SandboxResponse {
    let body: JSON = [
      "initialized": true, "sealed": .bool(w.sealed), "standby": false, "performance_standby": false,
      "replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
      "server_time_utc": .int(Int(now.timeIntervalSince1970)), "version": "1.15.0-sandbox",
      "cluster_name": "vault-sandbox", "cluster_id": .string(Ident.uuid("cluster")),
    ]
    return .json(w.sealed ? 503 : 200, body)
  }

  static func policy(_ name: String, _ method: String, _ r: SandboxRequest, _ w: inout VaultState, serial: Int) -> SandboxResponse {
    switch method {
    case "GET":
      if name == "root" { return ok(["name": "root", "policy": ""], requestSeed: serial, extra: ["name": "root", "policy": ""]) }
      guard let p = w.policies[name] else { return errors(404, []) }
      // Vault duplicates the fields at the top level and under `data`.
      return ok(
        ["name": .string(name), "policy": .string(p)], requestSeed: serial,
        extra: ["name": .string(name), "policy": .string(p)])
    case "PUT", "POST":
      guard case .object(let o)? = r.json else { return errors(400, ["failed to parse JSON input: invalid request body"]) }
      guard let p = o["policy"]?.string, !p.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
        return errors(400, ["'policy' parameter not supplied or empty"])
      }
      if name == "root" { return errors(400, ["cannot update \"root\" policy"]) }
      if let problem = checkHCL(p) { return errors(400, ["failed to parse policy: \(problem)"]) }
      w.policies[name] = p
      return .empty(204)
    case "DELETE":
      if name == "root" { return errors(400, ["cannot delete \"root\" policy"]) }
      if name == "default" { return errors(400, ["cannot delete \"default\" policy"]) }
      w.policies[name] = nil
      return .empty(204)
    default:
      return errors(405, ["1 error occurred:\n\t* unsupported operation\n\n"])
    }
  }

  /// A light check of policy HCL: balanced braces and quotes.
  static func checkHCL(_ p: String) -> String? {
    var braces = 0
    var inString = false
    var escaped = false
    for c in p {
      if inString {
        if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
        continue
      }
      if c == "\"" {
        inString = true
      } else if c == "{" {
        braces += 1
      } else if c == "}" {
        braces -= 1
        if braces < 0 { return "unexpected '}'" }
      }
    }
    if inString { return "unterminated string" }
    if braces != 0 { return "unbalanced braces" }
    return nil
  }

  static func versionMeta(_ v: KVVersion, number: Int, custom: JSON) -> JSON {
    [
      "created_time": time(v.created), "custom_metadata": custom, "deletion_time": time(v.deleted),
      "destroyed": .bool(v.destroyed), "version": .int(number),
    ]
  }

  static func data(_ key: String, _ method: String, _ r: SandboxRequest, _ w: inout VaultState, now: Date, serial: Int) -> SandboxResponse {
    let t = now.timeIntervalSince1970
    switch method {
    case "GET":
      guard let e = w.kv[key], !e.versions.isEmpty else { return errors(404, []) }
      var n = e.versions.count
      if let v = r.q("version"), v != "0" {
        guard let vn = Int(v), vn >= 1, vn <= e.versions.count else { return errors(404, []) }
        n = vn
      }
      let v = e.versions[n - 1]
      let meta = versionMeta(v, number: n, custom: e.customMetadata)
      if v.deleted != nil || v.destroyed {
        // Vault answers 404 with the metadata and null data for a deleted version.
        return .json(
          404,
          [
            "request_id": .string(Ident.uuid("request-\(serial)")), "lease_id": "", "renewable": false,
            "lease_duration": 0, "data": ["data": .null, "metadata": meta], "wrap_info": .null,
            "warnings": .null, "auth": .null, "mount_type": "kv",
          ])
      }
      return ok(["data": v.data, "metadata": meta], requestSeed: serial, extra: ["mount_type": "kv"])
    case "PUT", "POST":
      guard case .object(let o)? = r.json else { return errors(400, ["failed to parse JSON input: invalid request body"]) }
      guard let d = o["data"], d.object != nil else { return errors(400, ["no data provided"]) }
      var e = w.kv[key] ?? KVEntry(created: t, updated: t)
      if let cas = o["options"]?["cas"] {
        guard let c = cas.int, c == e.versions.count else {
          return errors(400, ["check-and-set parameter did not match the current version"])
        }
      }
      e.versions.append(KVVersion(data: d, created: t))
      e.updated = t
      w.kv[key] = e
      return ok(
        versionMeta(e.versions.last!, number: e.versions.count, custom: e.customMetadata), requestSeed: serial,
        extra: ["mount_type": "kv"])
    case "DELETE":
      if var e = w.kv[key], !e.versions.isEmpty {
        e.versions[e.versions.count - 1].deleted = t
        e.updated = t
        w.kv[key] = e
      }
      return .empty(204)
    default:
      return errors(405, ["1 error occurred:\n\t* unsupported operation\n\n"])
    }
  }

  static func metadata(_ key: String, _ method: String, _ w: inout VaultState, serial: Int) -> SandboxResponse {
    switch method {
    case "LIST":
      let prefix = key.isEmpty || key.hasSuffix("/") ? key : key + "/"
      var keys = Set<String>()
      for k in w.kv.keys where k.hasPrefix(prefix) {
        let rest = k.dropFirst(prefix.count)
        if let slash = rest.firstIndex(of: "/") { keys.insert(String(rest[..<slash]) + "/") } else { keys.insert(String(rest)) }
      }
      guard !keys.isEmpty else { return errors(404, []) }
      return ok(["keys": .array(keys.sorted().map { .string($0) })], requestSeed: serial, extra: ["mount_type": "kv"])
    case "GET":
      guard let e = w.kv[key] else { return errors(404, []) }
      var versions: [String: JSON] = [:]
      for (i, v) in e.versions.enumerated() {
        versions[String(i + 1)] = ["created_time": time(v.created), "deletion_time": time(v.deleted), "destroyed": .bool(v.destroyed)]
      }
      let data: JSON = [
        "cas_required": false, "created_time": time(e.created), "current_version": .int(e.versions.count),
        "custom_metadata": e.customMetadata, "delete_version_after": "0s", "max_versions": .int(e.maxVersions),
        "oldest_version": .int(e.versions.isEmpty ? 0 : 1), "updated_time": time(e.updated),
        "versions": .object(versions),
      ]
      return ok(data, requestSeed: serial, extra: ["mount_type": "kv"])
    case "DELETE":
      w.kv[key] = nil
      return .empty(204)
    default:
      return errors(405, ["1 error occurred:\n\t* unsupported operation\n\n"])
    }
  }
}
