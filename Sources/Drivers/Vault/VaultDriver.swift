import Basics
import CurlHTTP
import DriverKit
import EmpireModel
import Foundation

public struct VaultDriverConfig: Sendable {
  /// Vault's address (`https://vault.internal:8200`); requests go to `<endpoint>/v1/…`.
  public var endpoint: String
  public var token: LazySecret
  /// `options.file_path` of the file audit device ytempire enables at `sys/audit/ytempire`.
  public var auditFilePath: String
  public init(endpoint: String, token: LazySecret, auditFilePath: String = VaultDriverConfig.defaultAuditFilePath) {
    var e = endpoint
    while e.hasSuffix("/") { e.removeLast() }
    self.endpoint = e
    self.token = token
    self.auditFilePath = auditFilePath
  }
  public static let defaultAuditFilePath = "/var/log/vault/ytempire-audit.log"
}

/// SecurityPolicy → Vault (DESIGN A4): one ACL policy `ytempire-<account>` per service account,
/// the age of the keys under `keyRotation` from their KV v2 metadata (reported, never written),
/// and a file audit device at `sys/audit/ytempire` when `audit.enabled`.
public struct VaultDriver: Driver {
  public let name = "vault"
  public let kinds: Set<Kind> = [.securityPolicy]
  public let displayName = "Vault"
  public let config: VaultDriverConfig
  static let service = "vault"
  /// The audit device path ytempire owns (DESIGN A4).
  public static let auditPath = "ytempire"
  public static let policyPrefix = "ytempire-"

  public init(config: VaultDriverConfig) { self.config = config }

  public enum ExternalKey {
    /// `policy/<policy name>` → the policy's name (what ytempire wrote and may prune).
    public static let policyPrefix = "policy/"
    public static func policy(_ name: String) -> String { policyPrefix + name }
    /// The audit device's path, when ytempire enabled it.
    public static let audit = "auditDevice"
  }

  // MARK: desired

  public func desired(_ resource: Resource, in index: DesiredIndex) -> JSONValue {
    guard let s = resource.securityPolicy else { return .null }
    // Two SecurityPolicies cannot both own `ytempire-<account>` or the audit device: the first by name does.
    let earlier = index.all(.securityPolicy).filter { $0.name < resource.name }.compactMap(\.securityPolicy)
    let taken = Set(earlier.flatMap { $0.serviceAccounts.map(\.name) })
    let mount = s.keyRotation?.mount ?? "secret"
    let path = s.keyRotation?.path ?? "ytempire"
    var policies: [String: JSONValue] = [:]
    for a in s.serviceAccounts where !taken.contains(a.name) {
      policies[Self.policyPrefix + a.name] = [
        "account": .string(a.name),
        "policy": .string(PolicyHCL.render(policy: resource.name, account: a, mount: mount, path: path)),
      ]
    }
    var out: [String: JSONValue] = ["policies": .object(policies)]
    let auditTaken = earlier.contains { $0.audit?.enabled == true }
    if let audit = s.audit, !auditTaken {
      out["audit"] = audit.enabled ? Self.auditDevice(resource.name, audit, filePath: config.auditFilePath) : ["enabled": false]
    }
    if let k = s.keyRotation {
      var ages: [String: JSONValue] = [:]
      for (service, d) in k.maxAge { ages[service] = .int(d.milliseconds / 1000) }
      out["keys"] = ["mount": .string(k.mount), "path": .string(k.path), "maxAge": .object(ages)]
    }
    return .object(out)
  }

  /// The audit device as `GET sys/audit` shows it (options are strings in Vault).
  static func auditDevice(_ policy: String, _ a: SecurityPolicySpec.Audit, filePath: String) -> JSONValue {
    let level = a.level ?? .comprehensive
    return [
      "enabled": true, "type": "file",
      "description": .string("ytempire: SecurityPolicy/\(policy) audit log (\(level.rawValue))"),
      // basic elides list responses; comprehensive logs them whole.
      "options": ["file_path": .string(filePath), "elide_list_responses": level == .basic ? "true" : "false"],
    ]
  }

  // MARK: observe

  /// Policy names to read for a target: the desired ones and those ytempire wrote before.
  static func policyNames(_ t: ObserveTarget) -> [String] {
    var names = Set(t.desired?["policies"]?.object?.keys.map { $0 } ?? [])
    for (k, v) in t.external where k.hasPrefix(ExternalKey.policyPrefix) { names.insert(v) }
    return names.sorted()
  }

  static func keyServices(_ t: ObserveTarget) -> [String] {
    (t.desired?["keys"]?["maxAge"]?.object?.keys.map { $0 } ?? []).sorted()
  }

  static func wantsAudit(_ t: ObserveTarget) -> Bool { t.desired?["audit"] != nil || t.external[ExternalKey.audit] != nil }

  public func observationCalls(_ targets: [ObserveTarget], pricing: Pricing) -> [PlannedCall] {
    guard !targets.isEmpty else { return [] }
    var calls = [pricing.call(Self.service, "auth.token.lookupSelf")]
    if targets.contains(where: Self.wantsAudit) { calls.append(pricing.call(Self.service, "sys.audit.list")) }
    for t in targets {
      calls += Self.policyNames(t).map { _ in pricing.call(Self.service, "sys.policies.acl.read") }
      calls += Self.keyServices(t).map { _ in pricing.call(Self.service, "kv.metadata.read") }
    }
    return calls
  }

  public func observe(_ targets: [ObserveTarget], context: DriverContext) async throws -> [ResourceID: ObservationOutcome] {
    guard !targets.isEmpty else { return [:] }
    // Vault's clients check their token first: a refused token is one clear error, not one per call.
    _ = try await send("auth.token.lookupSelf", "GET", "auth/token/lookup-self", context: context)
    var audit: JSONValue?? = nil
    if targets.contains(where: Self.wantsAudit) {
      let devices = try await send("sys.audit.list", "GET", "sys/audit", context: context) ?? .object([:])
      // Vault answers the map at the top level and (newer versions) again under `data`.
      let map = devices["data"]?.object ?? devices.object ?? [:]
      audit = .some(map[Self.auditPath + "/"].map(Self.canonicalAudit))
    }
    var out: [ResourceID: ObservationOutcome] = [:]
    for t in targets {
      var policies: [String: JSONValue] = [:]
      for name in Self.policyNames(t) {
        guard
          let p = try await send(
            "sys.policies.acl.read", "GET", "sys/policies/acl/" + PercentEncoding.encode(name), context: context,
            absentOn404: true)
        else { continue }
        let text = p["data"]?["policy"]?.string ?? p["policy"]?.string ?? ""
        policies[name] = ["policy": .string(text)]
      }
      var state: [String: JSONValue] = ["policies": .object(policies)]
      if Self.wantsAudit(t), case .some(let a) = audit { state["audit"] = a ?? .null }
      if let keys = t.desired?["keys"], let mount = keys["mount"]?.string, let path = keys["path"]?.string {
        var seen: [String: JSONValue] = [:]
        for service in Self.keyServices(t) {
          let meta = PolicyHCL.metadataPath(mount: mount, path: path, secret: service)
          guard let m = try await send("kv.metadata.read", "GET", Self.escapePath(meta), context: context, absentOn404: true) else {
            seen[service] = .null
            continue
          }
          let d = m["data"]
          var k: [String: JSONValue] = ["updatedTime": d?["updated_time"] ?? .null]
          if let v = d?["current_version"]?.int, v >= 0, v <= Int64(Int32.max) { k["version"] = .int(v) }
          seen[service] = .object(k)
        }
        state["keys"] = .object(seen)
      }
      out[t.id] = .observed(state: .object(state), external: [:])
    }
    return out
  }

  static func canonicalAudit(_ d: JSONValue) -> JSONValue {
    var options: [String: JSONValue] = [:]
    for (k, v) in d["options"]?.object ?? [:] {
      switch v {
      case .string: options[k] = v
      case .bool(let b): options[k] = .string(b ? "true" : "false")
      case .int(let i): options[k] = .string(String(i))
      default: options[k] = .string(v.canonicalString)
      }
    }
    return ["enabled": true, "type": d["type"] ?? .null, "description": d["description"] ?? "", "options": .object(options)]
  }

  // MARK: diff

  public func diff(_ input: DiffInput) -> [Action] { VaultDiff.actions(input, driver: name) }

  public var findingTypes: [ConditionType] { [.rotationDue] }

  /// A key older than its `keyRotation.maxAge` (or missing) is due for rotation: reported in the
  /// plan and in status, never rotated by ytempire.
  public func findings(_ input: DiffInput, now: Date) -> [Finding] {
    guard let keys = input.desired?["keys"], let mount = keys["mount"]?.string, let path = keys["path"]?.string,
      let maxAge = keys["maxAge"]?.object, let seen = input.observed["keys"]?.object
    else { return [] }
    var out: [Finding] = []
    for service in maxAge.keys.sorted() {
      guard let limit = maxAge[service]?.int, let k = seen[service] else { continue }
      let location = PolicyHCL.dataPath(mount: mount, path: path, secret: service)
      let limitText = ModelDuration.seconds(limit).description
      if k.isNull {
        out.append(
          Finding(
            condition: .rotationDue, reason: .keyMissing,
            message: "\(location) does not exist (keyRotation.maxAge \(service): \(limitText))"))
        continue
      }
      guard let t = k["updatedTime"]?.string, let updated = Self.parseTime(t) else { continue }
      let age = now.timeIntervalSince(updated)
      if age > Double(limit) {
        let days = Int(age / 86_400)
        out.append(
          Finding(
            condition: .rotationDue, reason: .keyOverdue,
            message:
              "\(location) was last written \(days) day\(days == 1 ? "" : "s") ago, past keyRotation.maxAge \(service): \(limitText); rotate it"
          ))
      }
    }
    return out
  }

  /// RFC 3339 with or without fractional seconds (Vault writes nanoseconds).
  static func parseTime(_ s: String) -> Date? {
    guard s.count <= 64 else { return nil }
    var t = s
    if let dot = t.firstIndex(of: "."), let end = t[dot...].firstIndex(where: { $0 == "Z" || $0 == "+" || $0 == "-" }) {
      t.removeSubrange(dot..<end)
    }
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.date(from: t)
  }

  // MARK: apply

  public func apply(_ action: Action, observed: JSONValue, external: [String: String], context: DriverContext) async throws -> ApplyOutcome
  {
    let p = action.payload
    var state = observed.object ?? [:]
    var ext: [String: String?] = [:]
    func malformed() -> VaultError {
      VaultError(
        operation: action.key, status: nil, reason: "malformedAction", message: "action \(action.id) lacks what apply needs in its payload")
    }
    if action.key.hasPrefix(VaultDiff.policyKeyPrefix) {
      guard let name = p["name"]?.string else { throw malformed() }
      var policies = state["policies"]?.object ?? [:]
      switch action.operation {
      case .create, .update:
        guard let text = p["policy"]?.string else { throw malformed() }
        _ = try await send(
          "sys.policies.acl.write", "PUT", "sys/policies/acl/" + PercentEncoding.encode(name), body: ["policy": .string(text)],
          call: action.calls.first, context: context)
        policies[name] = ["policy": .string(text)]
        ext[ExternalKey.policy(name)] = name
      case .delete:
        _ = try await send(
          "sys.policies.acl.delete", "DELETE", "sys/policies/acl/" + PercentEncoding.encode(name), call: action.calls.first,
          context: context, absentOn404: true)
        policies[name] = nil
        ext[ExternalKey.policy(name)] = .some(nil)
      }
      state["policies"] = .object(policies)
    } else if action.key == VaultDiff.auditKey {
      let path = "sys/audit/" + Self.auditPath
      if action.operation != .create {
        _ = try await send("sys.audit.disable", "DELETE", path, call: action.calls.first, context: context, absentOn404: true)
        state["audit"] = .null
        ext[ExternalKey.audit] = .some(nil)
      }
      if action.operation != .delete {
        guard let device = p["device"] else { throw malformed() }
        let body: JSONValue = [
          "type": device["type"] ?? "file", "description": device["description"] ?? "",
          "options": device["options"] ?? .object([:]),
        ]
        _ = try await send("sys.audit.enable", "PUT", path, body: body, call: action.calls.last, context: context)
        state["audit"] = device
        ext[ExternalKey.audit] = Self.auditPath + "/"
      }
    } else {
      throw malformed()
    }
    return ApplyOutcome(external: ext, observed: .object(state))
  }

  // MARK: calls

  static func escapePath(_ path: String) -> String {
    path.split(separator: "/").map { PercentEncoding.encode(String($0)) }.joined(separator: "/")
  }

  /// One authenticated call to `/v1/<path>`; returns the parsed body (nil for 204, or for 404
  /// when `absentOn404`).
  func send(
    _ operation: String, _ method: String, _ path: String, body: JSONValue? = nil, call: PlannedCall? = nil,
    context: DriverContext, absentOn404: Bool = false
  ) async throws -> JSONValue? {
    let token: String
    do { token = try config.token.resolve() } catch {
      throw VaultError(operation: operation, status: nil, reason: "secretUnavailable", message: "\(config.token.name): \(error)")
    }
    var headers: HTTPHeaders = ["X-Vault-Token": token, "Accept": "application/json"]
    var bytes: [UInt8]?
    if let body {
      headers.add("Content-Type", "application/json")
      bytes = body.canonicalBytes
    }
    let request = HTTPRequest(method: method, url: config.endpoint + "/v1/" + path, headers: headers, body: bytes)
    let priced = call ?? context.pricing.call(Self.service, operation)
    let status: Int?
    let messages: [String]
    let fallback: String
    do {
      let r = try await context.client(Self.service).send(request, call: priced)
      if (200..<300).contains(r.status) {
        if r.body.isEmpty || r.status == 204 { return nil }
        do { return try JSONValue.parse(r.body) } catch {
          throw VaultError(operation: operation, status: r.status, reason: "malformedResponse", message: "the answer is not JSON")
        }
      }
      status = r.status
      messages = VaultError.messages(r.body)
      fallback = ""
    } catch let e where CallFailure(e) != nil {
      let f = CallFailure(e)!
      status = f.status
      messages = []
      fallback = f.message
    }
    if status == 404 && absentOn404 { return nil }
    var text = messages.isEmpty ? fallback : VaultError.flatten(messages)
    let reason = status.map { VaultError.reason(status: $0, messages: messages) } ?? "transportError"
    if operation == "auth.token.lookupSelf" && status == 403 {
      text =
        "Vault refused the token of \(config.token.name) (\(text.isEmpty ? "permission denied" : text)); check that it exists and has not expired"
    } else if status == 403 {
      text = "permission denied on \(path): the token's policies do not allow \(method) (\(text))"
    } else if status == 503 {
      text = "Vault is sealed or unavailable" + (text.isEmpty ? "" : " (\(text))")
    }
    throw VaultError(operation: operation, status: status, reason: reason, message: VaultError.scrub(text, token))
  }
}

extension ConditionType {
  /// A key is past its `keyRotation.maxAge`, or missing.
  public static let rotationDue = ConditionType("RotationDue")
}

extension ConditionReason {
  public static let keyMissing = ConditionReason("KeyMissing")
  public static let keyOverdue = ConditionReason("KeyOverdue")
}
