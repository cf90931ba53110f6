import YAMLKit

public struct SecurityPolicySpec: Sendable {
  public enum TLSVersion: String, Sendable, CaseIterable {
    case tls12 = "1.2"
    case tls13 = "1.3"
  }
  public enum CipherSuite: String, Sendable, CaseIterable {
    case aes128gcm = "TLS_AES_128_GCM_SHA256"
    case aes256gcm = "TLS_AES_256_GCM_SHA384"
    case chacha20 = "TLS_CHACHA20_POLY1305_SHA256"
    case aes128ccm = "TLS_AES_128_CCM_SHA256"
    case aes128ccm8 = "TLS_AES_128_CCM_8_SHA256"
  }
  public struct Transport: Sendable {
    public var minTLSVersion: TLSVersion?
    public var cipherSuites: [CipherSuite]?
    public var pinnedKeys: [String: [String]]
    public var caBundle: String?
  }
  public enum KeyEncryption: String, Sendable, CaseIterable { case aes256gcm = "AES-256-GCM" }
  public enum KeyStorage: String, Sendable, CaseIterable { case vault }
  public enum RotationMode: String, Sendable, CaseIterable { case automated, manual }
  public struct Authentication: Sendable {
    public var keyEncryption: KeyEncryption?
    public var keyStorage: KeyStorage?
    public var rotation: RotationMode?
    public var mfaForSensitiveOperations: Bool?
  }
  public enum AuthorizationModel: String, Sendable, CaseIterable { case rbac }
  public struct KeyRotation: Sendable {
    public var mount: String
    public var path: String
    public var maxAge: [String: ModelDuration]
  }
  public struct ServiceAccount: Sendable {
    public var name: String
    public var permissions: [String]
    public var secrets: [String]
    public var mark: SourceMark
    public init(name: String, permissions: [String], secrets: [String], mark: SourceMark = SourceMark(file: "", line: 0, column: 0)) {
      self.name = name
      self.permissions = permissions
      self.secrets = secrets
      self.mark = mark
    }
  }
  public enum InTransit: String, Sendable, CaseIterable { case enforced, preferred }
  public enum PIIMasking: String, Sendable, CaseIterable { case automated, manual, off }
  public struct DataProtection: Sendable {
    public var encryptionAtRest: Bool?
    public var encryptionInTransit: InTransit?
    public var piiMasking: PIIMasking?
  }
  public enum APIKeyRetention: Sendable, Equatable {
    case untilRotated
    case duration(ModelDuration)
  }
  public struct Retention: Sendable {
    public var userData: ModelDuration?
    public var analytics: ModelDuration?
    public var logs: ModelDuration?
    public var apiKeys: APIKeyRetention?
  }
  public enum AuditLevel: String, Sendable, CaseIterable { case comprehensive, basic }
  public struct Audit: Sendable {
    public var enabled: Bool
    public var level: AuditLevel?
  }
  public struct Requests: Sendable {
    public var signing: Bool?, responseValidation: Bool?, certificateValidation: Bool?, rateLimitBypassProtection: Bool?
    public var threatBlockThreshold: Double?
  }
  public enum Regulation: String, Sendable, CaseIterable { case gdpr, ccpa, coppa }

  public var transport: Transport?
  public var authentication: Authentication?
  public var authorization: AuthorizationModel?
  public var keyRotation: KeyRotation?
  public var serviceAccounts: [ServiceAccount]
  public var dataProtection: DataProtection?
  public var retention: Retention?
  public var audit: Audit?
  public var requests: Requests?
  public var compliance: [Regulation]
}

extension NodeDecoder {
  func securityPolicySpec(_ node: YAMLNode, _ path: String) -> SecurityPolicySpec? {
    guard
      let f = mapping(
        node, path,
        known: [
          "transport", "authentication", "authorization", "keyRotation", "serviceAccounts",
          "dataProtection", "retention", "audit", "requests", "compliance",
        ])
    else { return nil }
    var transport: SecurityPolicySpec.Transport?
    if let n = f.value("transport"),
      let t = mapping(n, f.sub("transport"), known: ["minTLSVersion", "cipherSuites", "pinnedKeys", "caBundle"])
    {
      var pins: [String: [String]] = [:]
      if let pn = t.value("pinnedKeys"), let es = entries(pn, t.sub("pinnedKeys")) {
        for e in es {
          let p = "\(t.sub("pinnedKeys")).\(e.key)"
          guard let items = list(e.value, p) else { continue }
          var keys: [String] = []
          for (ip, inode) in items {
            guard let s = string(inode, ip) else { continue }
            if Self.isPin(s) {
              keys.append(s)
            } else {
              diags.error(
                .invalidValue, "\(ip) is not a public-key pin; write sha256// followed by the base64 SHA-256 of the key (44 characters)",
                at: inode.mark)
            }
          }
          pins[e.key] = keys
        }
      }
      transport = .init(
        minTLSVersion: enumeration(t, "minTLSVersion", SecurityPolicySpec.TLSVersion.self),
        cipherSuites: enumList(t, "cipherSuites", SecurityPolicySpec.CipherSuite.self),
        pinnedKeys: pins, caBundle: string(t, "caBundle", minLength: 1))
    }
    var authentication: SecurityPolicySpec.Authentication?
    if let n = f.value("authentication"),
      let a = mapping(n, f.sub("authentication"), known: ["keyEncryption", "keyStorage", "rotation", "mfaForSensitiveOperations"])
    {
      authentication = .init(
        keyEncryption: enumeration(a, "keyEncryption", SecurityPolicySpec.KeyEncryption.self),
        keyStorage: enumeration(a, "keyStorage", SecurityPolicySpec.KeyStorage.self),
        rotation: enumeration(a, "rotation", SecurityPolicySpec.RotationMode.self),
        mfaForSensitiveOperations: bool(a, "mfaForSensitiveOperations"))
    }
    var authorization: SecurityPolicySpec.AuthorizationModel?
    if let n = f.value("authorization"), let a = mapping(n, f.sub("authorization"), known: ["model"]) {
      authorization = enumeration(a, "model", SecurityPolicySpec.AuthorizationModel.self)
    }
    var keyRotation: SecurityPolicySpec.KeyRotation?
    if let n = f.value("keyRotation"), let k = mapping(n, f.sub("keyRotation"), known: ["mount", "path", "maxAge"]) {
      let seg: (String) -> Bool = { s in !s.isEmpty && Names.relativePathProblem(s) == nil && !s.hasSuffix("/") }
      let mount = pattern(k, "mount", what: "a Vault mount path", seg) ?? "secret"
      let vpath = pattern(k, "path", what: "a Vault path inside the mount", seg) ?? "ytempire"
      let maxAge = serviceMap(k, "maxAge") { self.duration($0, $1) } ?? [:]
      keyRotation = .init(mount: mount, path: vpath, maxAge: maxAge)
    }
    var accounts: [SecurityPolicySpec.ServiceAccount] = []
    if let items = list(f, "serviceAccounts") {
      for (p, n) in items {
        guard let m = mapping(n, p, known: ["name", "permissions", "secrets"]) else { continue }
        requireFields(m, ["name"])
        let name = self.name(m, "name")
        let perms =
          stringList(m, "permissions") { s in
            let parts = s.split(separator: ".", omittingEmptySubsequences: false)
            return parts.count >= 2 && parts.allSatisfy { Names.isIdentifier(String($0)) }
              ? nil : "must be a permission such as videos.upload"
          } ?? []
        let secrets = stringList(m, "secrets") { Names.isServiceName($0) ? nil : "must be a service name such as youtube" } ?? []
        if let name { accounts.append(.init(name: name.name, permissions: perms, secrets: secrets, mark: name.mark)) }
      }
      checkUnique(accounts.map { Reference(name: $0.name, mark: $0.mark) }, in: f.sub("serviceAccounts"))
    }
    var dataProtection: SecurityPolicySpec.DataProtection?
    if let n = f.value("dataProtection"),
      let d = mapping(n, f.sub("dataProtection"), known: ["encryptionAtRest", "encryptionInTransit", "piiMasking"])
    {
      dataProtection = .init(
        encryptionAtRest: bool(d, "encryptionAtRest"),
        encryptionInTransit: enumeration(d, "encryptionInTransit", SecurityPolicySpec.InTransit.self),
        piiMasking: enumeration(d, "piiMasking", SecurityPolicySpec.PIIMasking.self))
    }
    var retention: SecurityPolicySpec.Retention?
    if let n = f.value("retention"), let r = mapping(n, f.sub("retention"), known: ["userData", "analytics", "logs", "apiKeys"]) {
      var apiKeys: SecurityPolicySpec.APIKeyRetention?
      if let an = r.value("apiKeys"), let s = string(an, r.sub("apiKeys")) {
        if s == "untilRotated" {
          apiKeys = .untilRotated
        } else if let d = ModelDuration.parse(s) {
          apiKeys = .duration(d)
        } else if ModelDuration.check(s) == .tooLarge {
          durationTooLarge(r.sub("apiKeys"), s, at: an.mark)
        } else {
          diags.error(.invalidValue, "\(r.sub("apiKeys")) '\(clip(s))' must be untilRotated or a duration such as 90d", at: an.mark)
        }
      }
      retention = .init(userData: duration(r, "userData"), analytics: duration(r, "analytics"), logs: duration(r, "logs"), apiKeys: apiKeys)
    }
    var audit: SecurityPolicySpec.Audit?
    if let n = f.value("audit"), let a = mapping(n, f.sub("audit"), known: ["enabled", "level"]) {
      audit = .init(enabled: bool(a, "enabled") ?? true, level: enumeration(a, "level", SecurityPolicySpec.AuditLevel.self))
    }
    var requests: SecurityPolicySpec.Requests?
    if let n = f.value("requests"),
      let r = mapping(
        n, f.sub("requests"),
        known: [
          "signing", "responseValidation", "certificateValidation",
          "rateLimitBypassProtection", "threatBlockThreshold",
        ])
    {
      requests = .init(
        signing: bool(r, "signing"), responseValidation: bool(r, "responseValidation"),
        certificateValidation: bool(r, "certificateValidation"), rateLimitBypassProtection: bool(r, "rateLimitBypassProtection"),
        threatBlockThreshold: number(r, "threatBlockThreshold", min: 0, max: 1))
    }
    let compliance = enumList(f, "compliance", SecurityPolicySpec.Regulation.self) ?? []
    return SecurityPolicySpec(
      transport: transport, authentication: authentication, authorization: authorization, keyRotation: keyRotation,
      serviceAccounts: accounts, dataProtection: dataProtection, retention: retention, audit: audit,
      requests: requests, compliance: compliance)
  }

  /// `sha256//` + 43 base64 characters + `=`.
  static func isPin(_ s: String) -> Bool {
    guard s.hasPrefix("sha256//") else { return false }
    let b = s.dropFirst(8)
    return b.count == 44 && b.last == "="
      && b.dropLast().allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "/") }
  }
}
