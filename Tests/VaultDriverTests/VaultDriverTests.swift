import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Sandbox
import TestSupport
import Testing

@testable import VaultDriver

let policyYAML = """
  apiVersion: ytempire.io/v1
  kind: SecurityPolicy
  metadata:
    name: ytempire
  spec:
    keyRotation:
      mount: secret
      path: ytempire
      maxAge: {youtube: 90d, openai: 60d}
    serviceAccounts:
      - name: youtube-publisher
        permissions: [videos.upload, videos.update, analytics.read]
        secrets: [youtube]
      - name: content-generator
        permissions: [ai.generate, storage.write]
        secrets: [openai, anthropic]
    audit:
      enabled: true
      level: comprehensive
  """

@Suite("Vault driver: rendering, findings, errors (over a scripted transport)")
struct VaultUnitTests {
  let driver = VaultDriver(
    config: VaultDriverConfig(endpoint: "https://vault.test:8200/", token: .literal("integrations.vault.token", "hvs.unit-secret-token")))

  @Test("a service account's policy grants read on exactly the data and metadata paths of its secrets")
  func policyGrants() throws {
    let r = decode(policyYAML)
    let d = driver.desired(r[0], in: DesiredIndex(r))
    let hcl = try #require(d["policies"]?["ytempire-content-generator"]?["policy"]?.string)
    let paths = hcl.split(separator: "\n").filter { $0.hasPrefix("path ") }.map(String.init)
    #expect(
      paths == [
        "path \"secret/data/ytempire/anthropic\" {", "path \"secret/metadata/ytempire/anthropic\" {",
        "path \"secret/data/ytempire/openai\" {", "path \"secret/metadata/ytempire/openai\" {",
      ])
    // read, and nothing more.
    #expect(hcl.components(separatedBy: "capabilities = [\"read\"]").count - 1 == 4)
    #expect(!hcl.contains("create") && !hcl.contains("update") && !hcl.contains("sudo") && !hcl.contains("*"))
    #expect(d["policies"]?.object?.keys.sorted() == ["ytempire-content-generator", "ytempire-youtube-publisher"])
    #expect(d["audit"]?["options"]?["file_path"] == .string(VaultDriverConfig.defaultAuditFilePath))
    #expect(d["keys"]?["maxAge"]?["openai"] == .int(60 * 86_400))
  }

  @Test("two SecurityPolicies naming the same account: the first by name owns its policy and the audit device")
  func firstByNameOwns() {
    let second = policyYAML.replacingOccurrences(of: "name: ytempire\n", with: "name: zz-other\n")
    let r = decode(policyYAML) + decode(second)
    let idx = DesiredIndex(r)
    let a = driver.desired(idx.resource(.securityPolicy, "ytempire")!, in: idx)
    let b = driver.desired(idx.resource(.securityPolicy, "zz-other")!, in: idx)
    #expect(a["policies"]?.object?.count == 2 && a["audit"] != nil)
    #expect(b["policies"]?.object?.isEmpty == true && b["audit"] == nil)
  }

  @Test("a key older than its maxAge, or missing, is RotationDue; a fresh one is not (judged at the injected now)")
  func rotationFindings() {
    let r = decode(policyYAML)
    let idx = DesiredIndex(r)
    let desired = driver.desired(r[0], in: idx)
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let old = VaultDriverTests.rfc3339(now.addingTimeInterval(-91 * 86_400))
    let fresh = VaultDriverTests.rfc3339(now.addingTimeInterval(-59 * 86_400))
    let observed: JSONValue = [
      "policies": [:], "keys": ["youtube": ["updatedTime": .string(old)], "openai": ["updatedTime": .string(fresh)]],
    ]
    let f = driver.findings(
      DiffInput(id: ResourceID(r[0]), desired: desired, observed: observed, external: [:], pricing: Pricing(idx)), now: now)
    #expect(f.count == 1)
    #expect(f.first?.condition == .rotationDue && f.first?.reason == .keyOverdue)
    #expect(f.first?.condition.rawValue == "RotationDue" && f.first?.reason.rawValue == "KeyOverdue")
    #expect(f.first?.message.contains("secret/data/ytempire/youtube was last written 91 days ago") == true)
    let missing: JSONValue = ["policies": [:], "keys": ["youtube": .null, "openai": ["updatedTime": .string(fresh)]]]
    let g = driver.findings(
      DiffInput(id: ResourceID(r[0]), desired: desired, observed: missing, external: [:], pricing: Pricing(idx)), now: now)
    #expect(g.map(\.reason) == [.keyMissing])
    // Vault's nanosecond timestamps parse.
    #expect(VaultDriver.parseTime("2026-01-02T03:04:05.123456789Z") == Date(timeIntervalSince1970: 1_767_323_045))
  }

  @Test("observationCalls prices exactly the calls observe makes")
  func observationPricedExactly() async throws {
    let r = decode(policyYAML)
    let idx = DesiredIndex(r)
    let client = ScriptedClient([
      "GET auth/token/lookup-self": json(200, #"{"data":{"policies":["root"]}}"#),
      "GET sys/audit": json(200, #"{"data":{}}"#),
      "GET sys/policies/acl/ytempire-youtube-publisher": json(200, #"{"data":{"name":"ytempire-youtube-publisher","policy":"x"}}"#),
      "GET secret/metadata/ytempire/youtube": json(200, #"{"data":{"updated_time":"2026-01-02T03:04:05.1Z","current_version":3}}"#),
    ])
    let ctx = DriverContext(desired: idx, pricing: Pricing(idx), cache: NoCache(), client: { _ in client })
    let t = [ObserveTarget(id: ResourceID(r[0]), desired: driver.desired(r[0], in: idx), external: ["policy/ytempire-old": "ytempire-old"])]
    let out = try await driver.observe(t, context: ctx)
    let priced = driver.observationCalls(t, pricing: Pricing(idx))
    #expect(priced.count == client.keys.count)
    #expect(priced.map(\.operation).sorted() == client.sent.withLock { $0.map(\.1.operation) }.sorted())
    guard case .observed(let s, _)? = out[t[0].id] else {
      Issue.record("not observed")
      return
    }
    #expect(s["policies"]?.object?.keys.sorted() == ["ytempire-youtube-publisher"])  // the others are 404: absent
    #expect(s["keys"]?["openai"] == .null)
    #expect(s["keys"]?["youtube"]?["version"] == .int(3))
    #expect(s["audit"] == .null)
  }

  @Test(
    "Vault's error shapes become clear messages without the token",
    arguments: [
      (
        403, #"{"errors":["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"]}"#, "tokenRejected",
        "Vault refused the token of integrations.vault.token (permission denied; invalid token); check that it exists and has not expired"
      ),
      (503, #"{"errors":["Vault is sealed"]}"#, "sealed", "Vault is sealed or unavailable (Vault is sealed)"),
      (500, #"not json hvs.unit-secret-token"#, "internalError", ""),
    ])
  func errorShapes(status: Int, body: String, reason: String, message: String) async throws {
    let r = decode(policyYAML)
    let idx = DesiredIndex(r)
    let client = ScriptedClient(["GET auth/token/lookup-self": json(status, body)])
    let ctx = DriverContext(desired: idx, pricing: Pricing(idx), cache: NoCache(), client: { _ in client })
    let t = [ObserveTarget(id: ResourceID(r[0]), desired: driver.desired(r[0], in: idx), external: [:])]
    do {
      _ = try await driver.observe(t, context: ctx)
      Issue.record("observe should fail")
    } catch let e as VaultError {
      #expect(e.reason == reason)
      #expect(e.status == status)
      if !message.isEmpty { #expect(e.message == message) }
      #expect(!String(describing: e).contains("hvs.unit-secret-token"))
    }
  }

  @Test("a policy Vault rejects (400) and a write the token may not make (403) say which call and why")
  func applyErrors() async throws {
    let r = decode(policyYAML)
    let idx = DesiredIndex(r)
    let client = ScriptedClient([
      "PUT sys/policies/acl/ytempire-youtube-publisher": json(400, #"{"errors":["failed to parse policy: At 3:1: expected '}'"]}"#),
      "PUT sys/policies/acl/ytempire-content-generator": json(403, #"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#),
    ])
    let ctx = DriverContext(desired: idx, pricing: Pricing(idx), cache: NoCache(), client: { _ in client })
    let acts = driver.diff(
      DiffInput(
        id: ResourceID(r[0]), desired: driver.desired(r[0], in: idx), observed: ["policies": [:], "audit": .null],
        external: [:], pricing: Pricing(idx)))
    #expect(acts.map(\.key) == ["policy/ytempire-content-generator", "policy/ytempire-youtube-publisher", "audit"])
    var messages: [String] = []
    for a in acts.prefix(2) {
      do { _ = try await driver.apply(a, observed: ["policies": [:]], external: [:], context: ctx) } catch let e as VaultError {
        messages.append(e.description)
      }
    }
    #expect(
      messages == [
        "vault sys.policies.acl.write: HTTP 403 permissionDenied: permission denied on sys/policies/acl/ytempire-content-generator: the token's policies do not allow PUT (permission denied)",
        "vault sys.policies.acl.write: HTTP 400 invalidRequest: failed to parse policy: At 3:1: expected '}'",
      ])
  }
}

@Suite("Vault driver against the sandbox, through the engine")
struct VaultDriverTests {
  static func rfc3339(_ d: Date) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: d)
  }

  @Test("from empty: policies and the audit device are created, rotation is reported, and two more plans show no changes")
  func createThenNoPerpetualDiff() async throws {
    try await VaultRig.with { rig in
      let desired = Example.resources
      let (plan, report) = try await rig.apply(desired)
      #expect(
        plan.actions.map(\.action.key).sorted() == ["audit", "policy/ytempire-content-generator", "policy/ytempire-youtube-publisher"])
      #expect(plan.actions.allSatisfy { $0.action.operation == .create })
      #expect(plan.actions.first { $0.action.key == "audit" }?.action.calls.map(\.name) == ["vault.sys.audit.enable"])
      #expect(report.failed == 0 && report.succeeded == 3)
      let gen = try #require(try await rig.policyText("ytempire-content-generator"))
      #expect(gen.contains("path \"secret/data/ytempire/openai\"") && gen.contains("path \"secret/metadata/ytempire/elevenlabs\""))
      let audit = try JSONValue.parse(try await rig.vault("GET", "sys/audit").body)
      #expect(audit["data"]?["ytempire/"]?["type"] == "file")
      #expect(audit["data"]?["ytempire/"]?["options"]?["file_path"] == "/var/log/vault/test-audit.log")
      // The sandbox's keys were written 100 days ago: past every maxAge of the example.
      let sp = try #require(plan.resources.first { $0.id.kind == .securityPolicy })
      #expect(sp.findings.map(\.condition) == Array(repeating: .rotationDue, count: 4))
      #expect(PlanRenderer.text(plan).contains("! RotationDue: secret/data/ytempire/youtube was last written 100 days ago"))
      let status = try #require(try rig.store.status(sp.id))
      #expect(status.conditions.first { $0.type == .rotationDue }?.status == .true)
      #expect(status.conditions.first { $0.type == .ready }?.status == .true)

      for _ in 0..<2 {
        let again = try await rig.plan(desired) { $0.refresh = .all }
        #expect(again.actions.isEmpty, "perpetual diff: \(again.actions.map(\.action.id))")
      }
      // Looking at key ages never writes a key.
      let meta = try JSONValue.parse(try await rig.vault("GET", "secret/metadata/ytempire/youtube").body)
      #expect(meta["data"]?["current_version"] == .int(1))
    }
  }

  @Test("a hand-made policy, the default policy and a foreign audit device survive apply and prune")
  func foreignSurvives() async throws {
    try await VaultRig.with { rig in
      let foreign = #"path \"secret/data/ops/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n"#
      #expect(try await rig.vault("PUT", "sys/policies/acl/ops-team", #"{"policy":"\#(foreign)"}"#).status == 204)
      #expect(try await rig.vault("PUT", "sys/audit/ops", #"{"type":"file","options":{"file_path":"/tmp/ops.log"}}"#).status == 204)
      try await rig.apply(Example.resources)
      // The account list shrinks to one: its sibling's policy is pruned, nothing else is.
      let shrunk = example(
        replacingPolicyWith: policyYAML.replacingOccurrences(
          of: """
                - name: content-generator
                  permissions: [ai.generate, storage.write]
                  secrets: [openai, anthropic]

            """, with: ""))
      let (plan, _) = try await rig.apply(shrunk, revision: "r2")
      #expect(plan.actions.map(\.action.id).contains("vault:SecurityPolicy/ytempire:delete:policy/ytempire-content-generator"))
      #expect(try await rig.policyText("ytempire-content-generator") == nil)
      #expect(
        try await rig.policyText("ops-team")
          == foreign.replacingOccurrences(of: "\\n", with: "\n").replacingOccurrences(of: "\\\"", with: "\""))
      #expect(try await rig.policyText("default") != nil)
      let audit = try JSONValue.parse(try await rig.vault("GET", "sys/audit").body)
      #expect(audit["data"]?["ops/"]?["options"]?["file_path"] == "/tmp/ops.log")
    }
  }

  @Test("one changed secret list = exactly one policy write; nothing else is called to apply it")
  func oneFieldChange() async throws {
    try await VaultRig.with { rig in
      try await rig.apply(Example.resources)
      let changed = example(replacingPolicyWith: policyYAML)
      let before = rig.vaultCalls()
      let (plan, report) = try await rig.apply(changed, revision: "r2")
      #expect(report.failed == 0)
      let writes = plan.actions.map(\.action).filter {
        $0.key == "policy/ytempire-youtube-publisher" || $0.key == "policy/ytempire-content-generator"
      }
      // youtube-publisher is unchanged; content-generator loses elevenlabs; audit options are the same.
      #expect(plan.actions.map(\.action.id) == ["vault:SecurityPolicy/ytempire:update:policy/ytempire-content-generator"])
      #expect(writes.flatMap(\.calls).map(\.name) == ["vault.sys.policies.acl.write"])
      let after = rig.vaultCalls()
      let writesMade = after.filter { $0.key.hasPrefix("vault PUT") || $0.key.hasPrefix("vault DELETE") || $0.key.hasPrefix("vault POST") }
        .map { ($0.key, $0.value - (before[$0.key] ?? 0)) }.filter { $0.1 > 0 }
      #expect(writesMade.map(\.0) == ["vault PUT /v1/sys/policies/acl/ytempire-content-generator"])
      #expect(writesMade.map(\.1) == [1])
      #expect(!(try #require(try await rig.policyText("ytempire-content-generator"))).contains("elevenlabs"))
    }
  }

  @Test("a hand edit of an owned policy is drift: corrected by apply, or only reported under ytempire.io/drift: report")
  func driftCorrectedOrReported() async throws {
    try await VaultRig.with { rig in
      try await rig.apply(Example.resources)
      #expect(
        try await rig.vault(
          "PUT", "sys/policies/acl/ytempire-youtube-publisher", #"{"policy":"path \"secret/*\" { capabilities = [\"sudo\"] }"}"#
        ).status == 204)
      let reported = Example.resources.map { r -> Resource in
        var r = r
        if r.kind == .securityPolicy { r.metadata.annotations["ytempire.io/drift"] = "report" }
        return r
      }
      let p1 = try await rig.plan(reported) { $0.refresh = .all }
      let sp = try #require(p1.resources.first { $0.id.kind == .securityPolicy })
      #expect(p1.actions.isEmpty && sp.driftReportOnly)
      #expect(sp.driftedFields == ["policies.ytempire-youtube-publisher.policy"])
      let (p2, report) = try await rig.apply(Example.resources, revision: "r1") { $0.refresh = .all }
      #expect(p2.actions.map(\.action.id) == ["vault:SecurityPolicy/ytempire:update:policy/ytempire-youtube-publisher"])
      #expect(report.failed == 0)
      #expect(try await rig.policyText("ytempire-youtube-publisher")?.contains("sudo") == false)
      let status = try #require(try rig.store.status(sp.id))
      #expect(status.conditions.first { $0.type == .drifted }?.reason == .corrected)
    }
  }

  @Test("a rotated key clears its RotationDue; audit.enabled off disables the device; a removed policy resource prunes what it owned")
  func rotationAuditAndPrune() async throws {
    try await VaultRig.with { rig in
      try await rig.apply(Example.resources)
      #expect(try await rig.vault("POST", "secret/data/ytempire/youtube", #"{"data":{"api_key":"rotated"}}"#).status == 200)
      let noAudit = example(replacingPolicyWith: policyYAML.replacingOccurrences(of: "enabled: true", with: "enabled: false"))
      let (plan, _) = try await rig.apply(noAudit, revision: "r2") { $0.refresh = .all }
      #expect(plan.actions.map(\.action.id).contains("vault:SecurityPolicy/ytempire:delete:audit"))
      let sp = try #require(plan.resources.first { $0.id.kind == .securityPolicy })
      // policyYAML watches youtube (rotated now) and openai (100 days old).
      #expect(sp.findings.map(\.message).count == 1 && sp.findings[0].message.contains("ytempire/openai"))
      let audit = try JSONValue.parse(try await rig.vault("GET", "sys/audit").body)
      #expect(audit["data"]?["ytempire/"] == nil)

      // The SecurityPolicy leaves the repository: the policies it owned go, nothing else.
      let gone = Example.resources.filter { $0.kind != .securityPolicy }
      let (p3, r3) = try await rig.apply(gone, revision: "r3")
      #expect(Set(p3.actions.map(\.action.key)) == ["policy/ytempire-youtube-publisher", "policy/ytempire-content-generator"])
      #expect(r3.failed == 0)
      #expect(try await rig.policyText("ytempire-youtube-publisher") == nil)
      #expect(try await rig.policyText("default") != nil)
    }
  }

  @Test("a refused token is one clear observation error in the plan and in status, and nothing is written")
  func refusedToken() async throws {
    try await VaultRig.with(token: "hvs.wrong-token-canary") { rig in
      let plan = try await rig.plan(Example.resources)
      let sp = try #require(plan.resources.first { $0.id.kind == .securityPolicy })
      let e = try #require(sp.observationError)
      #expect(e.contains("Vault refused the token of integrations.vault.token"))
      #expect(!e.contains("hvs.wrong-token-canary") && !plan.json().contains("hvs.wrong-token-canary"))
      #expect(plan.actions.isEmpty)
      #expect(rig.vaultCalls().keys.allSatisfy { $0.hasPrefix("vault GET") })
    }
  }
}
