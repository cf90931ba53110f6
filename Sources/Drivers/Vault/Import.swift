import Basics
import DriverKit
import EmpireModel
import Foundation

/// `ytempire import` of SecurityPolicies (DESIGN A10 "Import"): the ACL policies `ytempire-*`
/// (and the audit device `ytempire/`) become the service accounts of the SecurityPolicy their
/// header names. The model renders each policy from its service account, so a policy is
/// imported only when rendering it back gives exactly its text; any other is listed with why.
extension VaultDriver: Importer {
  public var importKinds: Set<Kind> { [.securityPolicy] }

  public func importCalls(_ request: ImportRequest, pricing: Pricing) -> [PlannedCall] {
    guard request.wants(.securityPolicy) else { return [] }
    return [
      pricing.call(Self.service, "auth.token.lookupSelf"), pricing.call(Self.service, "sys.policies.acl.list"),
      pricing.call(Self.service, "sys.audit.list"),
    ]
  }

  struct ParsedPolicy {
    var policy: String
    var account: String
    var permissions: [String]
    var secrets: [String]
    var mount: String
    var path: String
  }

  /// The SecurityPolicy, service account, permissions and secrets of a policy text ytempire
  /// rendered; nil when it is not one (or mixes mounts).
  static func parse(_ text: String) -> ParsedPolicy? {
    let header = "# Managed by ytempire (SecurityPolicy/"
    guard let first = text.split(separator: "\n", omittingEmptySubsequences: false).first, first.hasPrefix(header),
      let close = first.range(of: "): service account ")
    else { return nil }
    let policy = String(first[first.index(first.startIndex, offsetBy: header.count)..<close.lowerBound])
    var account = String(first[close.upperBound...])
    guard account.hasSuffix(".") else { return nil }
    account.removeLast()
    var permissions: [String] = []
    var secrets: [String] = []
    var location: (String, String)?
    for line in text.split(separator: "\n") {
      let permsPrefix = "# Service permissions (enforced by the services, not by Vault): "
      if line.hasPrefix(permsPrefix) {
        permissions = line.dropFirst(permsPrefix.count).components(separatedBy: ", ")
      } else if line.hasPrefix("path \""), line.hasSuffix("\" {") {
        let p = String(line.dropFirst(6).dropLast(3))
        guard let r = p.range(of: "/data/") else { continue }
        let mount = String(p[..<r.lowerBound])
        var rest = String(p[r.upperBound...]).split(separator: "/").map(String.init)
        guard let secret = rest.popLast() else { return nil }
        let path = rest.joined(separator: "/")
        if let l = location, l != (mount, path) { return nil }
        location = (mount, path)
        secrets.append(secret)
      }
    }
    let (mount, path) = location ?? ("secret", "ytempire")
    return ParsedPolicy(policy: policy, account: account, permissions: permissions, secrets: secrets, mount: mount, path: path)
  }

  public func discover(_ request: ImportRequest, budget: ImportBudget, context: DriverContext) async throws -> ImportResult {
    guard request.wants(.securityPolicy) else { return ImportResult() }
    var result = ImportResult()
    var byPolicy: [String: [(name: String, text: String, parsed: ParsedPolicy)]] = [:]
    var audit: JSONValue?
    do {
      _ = try await send("auth.token.lookupSelf", "GET", "auth/token/lookup-self", context: context)
      let list = try await send("sys.policies.acl.list", "GET", "sys/policies/acl?list=true", context: context)
      let names = (list?["data"]?["keys"]?.array ?? list?["keys"]?.array ?? []).compactMap(\.string).filter {
        $0.hasPrefix(Self.policyPrefix)
      }
      for name in names.sorted() {
        guard
          let p = try await send(
            "sys.policies.acl.read", "GET", "sys/policies/acl/" + PercentEncoding.encode(name), context: context, absentOn404: true)
        else { continue }
        let text = p["data"]?["policy"]?.string ?? p["policy"]?.string ?? ""
        guard let parsed = Self.parse(text), name == Self.policyPrefix + parsed.account else {
          result.notImported.append(
            NotImported(
              object: "Vault ACL policy \(name)",
              reason: "it was not written by ytempire (no `# Managed by ytempire` header naming its service account)"))
          continue
        }
        byPolicy[parsed.policy, default: []].append((name, text, parsed))
      }
      let devices = try await send("sys.audit.list", "GET", "sys/audit", context: context) ?? .object([:])
      audit = (devices["data"]?.object ?? devices.object ?? [:])[Self.auditPath + "/"]
    } catch is CancellationError {
      throw CancellationError()
    } catch {
      result.errors.append("vault: \(error)")
      return result
    }
    for policy in byPolicy.keys.sorted() {
      let members = byPolicy[policy]!
      let first = members[0].parsed
      var accounts: [JSONValue] = []
      var observed: [String: JSONValue] = [:]
      var external: [String: String] = [:]
      for m in members.sorted(by: { $0.name < $1.name }) {
        let p = m.parsed
        let account = SecurityPolicySpec.ServiceAccount(name: p.account, permissions: p.permissions, secrets: p.secrets)
        guard p.mount == first.mount, p.path == first.path,
          PolicyHCL.render(policy: policy, account: account, mount: p.mount, path: p.path) == m.text
        else {
          result.notImported.append(
            NotImported(
              object: "Vault ACL policy \(m.name)",
              reason:
                "its text is not what ytempire renders for its service account (edited by hand, or another mount): importing it would rewrite it"
            ))
          continue
        }
        var a: [String: JSONValue] = ["name": .string(p.account)]
        if !p.permissions.isEmpty { a["permissions"] = .array(p.permissions.map(JSONValue.string)) }
        a["secrets"] = .array(p.secrets.sorted().map(JSONValue.string))
        accounts.append(.object(a))
        observed[m.name] = ["policy": .string(m.text)]
        external[ExternalKey.policy(m.name)] = m.name
      }
      guard !accounts.isEmpty else { continue }
      var spec: [String: JSONValue] = ["serviceAccounts": .array(accounts)]
      var state: [String: JSONValue] = ["policies": .object(observed)]
      if first.mount != "secret" || first.path != "ytempire" {
        spec["keyRotation"] = ["mount": .string(first.mount), "path": .string(first.path)]
        state["keys"] = .object([:])
      }
      var notes = ["Imported from the Vault ACL policies \(external.values.sorted().joined(separator: ", "))."]
      if let a = audit, let d = a["description"]?.string, d.hasPrefix("ytempire: SecurityPolicy/\(policy) audit log (") {
        let level = d.hasSuffix("(basic)") ? "basic" : "comprehensive"
        spec["audit"] = ["enabled": true, "level": .string(level)]
        state["audit"] = Self.canonicalAudit(a)
        external[ExternalKey.audit] = Self.auditPath
        notes.append("The audit device \(Self.auditPath)/ is this policy's.")
      }
      notes.append("Vault does not hold transport, authentication, retention or compliance settings: they are left out.")
      result.resources.append(
        ImportedResource(
          kind: .securityPolicy, name: policy, spec: .object(spec), notes: notes, external: external, observed: .object(state)))
    }
    return result
  }
}
