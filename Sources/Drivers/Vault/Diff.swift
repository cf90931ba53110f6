import DriverKit

/// Desired vs observed → Vault actions. Pure: no I/O, no clock.
enum VaultDiff {
  static let policyKeyPrefix = "policy/"
  static let auditKey = "audit"

  static func actions(_ input: DiffInput, driver: String) -> [Action] {
    let desired: JSONValue? = (input.desired?.isNull ?? true) ? nil : input.desired
    guard case .object(let observed) = input.observed else { return [] }
    func price(_ op: String) -> PlannedCall { input.pricing.call(VaultDriver.service, op) }
    var out: [Action] = []

    // Policies: the desired ones written, the ones ytempire wrote before and no longer wants deleted.
    let want = desired?["policies"]?.object ?? [:]
    let have = observed["policies"]?.object ?? [:]
    for name in want.keys.sorted() {
      guard let text = want[name]?["policy"]?.string else { continue }
      let account = want[name]?["account"]?.string ?? name
      let current = have[name]?["policy"]?.string
      if current == text { continue }
      let op: ActionOperation = current == nil ? .create : .update
      // Policies are not secret, but their text is long: the plan shows one field.
      out.append(
        Action(
          driver: driver, resource: input.id, operation: op, key: policyKeyPrefix + name,
          summary: "ACL policy \(name) (service account \(account))",
          changes: [FieldChange(path: "policies.\(name).policy", old: current.map(JSONValue.string), new: .string(text))],
          calls: [price("sys.policies.acl.write")],
          payload: ["name": .string(name), "policy": .string(text)]))
    }
    let recorded = Set(input.external.filter { $0.key.hasPrefix(VaultDriver.ExternalKey.policyPrefix) }.map(\.value))
    for name in have.keys.sorted() where want[name] == nil && recorded.contains(name) {
      out.append(
        Action(
          driver: driver, resource: input.id, operation: .delete, key: policyKeyPrefix + name,
          summary: "ACL policy \(name) (no longer declared)",
          changes: [FieldChange(path: "policies.\(name).policy", old: have[name]?["policy"], new: nil)],
          calls: [price("sys.policies.acl.delete")], payload: ["name": .string(name)]))
    }

    // The audit device at sys/audit/ytempire.
    let wantAudit = desired?["audit"]
    // (JSONValue takes `nil` literals as .null: spell the optional out.)
    let haveAudit: JSONValue? = observed["audit"].flatMap { $0.isNull ? Optional<JSONValue>.none : .some($0) }
    let ours =
      input.external[VaultDriver.ExternalKey.audit] != nil
      || (haveAudit?["description"]?.string ?? "").hasPrefix("ytempire")
    if let w = wantAudit, w["enabled"]?.bool == true {
      if let h = haveAudit {
        let changes = JSONDiff.changes(h, w, prefix: "audit")
        if !changes.isEmpty {
          // Vault cannot change an audit device in place: disable, then enable it again.
          out.append(
            Action(
              driver: driver, resource: input.id, operation: .update, key: auditKey,
              summary: "file audit device \(VaultDriver.auditPath)/ (re-enabled with new options)", changes: changes,
              calls: [price("sys.audit.disable"), price("sys.audit.enable")], payload: ["device": w]))
        }
      } else if observed["audit"] != nil {
        out.append(
          Action(
            driver: driver, resource: input.id, operation: .create, key: auditKey,
            summary: "file audit device \(VaultDriver.auditPath)/", changes: JSONDiff.changes(nil, w, prefix: "audit"),
            calls: [price("sys.audit.enable")], payload: ["device": w]))
      }
    } else if let h = haveAudit, ours, wantAudit != nil || desired == nil {
      out.append(
        Action(
          driver: driver, resource: input.id, operation: .delete, key: auditKey,
          summary: "file audit device \(VaultDriver.auditPath)/ (audit.enabled is off)",
          changes: JSONDiff.changes(h, nil, prefix: "audit"), calls: [price("sys.audit.disable")], payload: .null))
    }
    return out
  }
}
