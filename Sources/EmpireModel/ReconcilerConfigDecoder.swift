import Basics
import Foundation
import YAMLKit

/// What decoding one configuration file collects besides the values: the base for relative
/// paths, the endpoints that decide whether literal secrets are acceptable, and the literals.
struct ConfigContext {
  let baseDirectory: String
  let home: String?
  /// Hosts the reconciler talks to (integration endpoints, the config store, a remote source).
  var endpoints: [(path: String, host: String, mark: SourceMark)] = []
  /// `{value: …}` references, warned about unless every endpoint is loopback.
  var literals: [SecretRef] = []
  /// URLs that carry a password in their userinfo.
  var urlPasswords: [(path: String, mark: SourceMark)] = []

  init(baseDirectory: String, home: String?) {
    self.baseDirectory = baseDirectory
    self.home = home
  }

  /// `~/…` from HOME, absolute as is, anything else against the config file's directory.
  func resolve(_ p: String) -> String {
    if let home, home.hasPrefix("/"), p == "~" || p.hasPrefix("~/") {
      return ConfigPaths.normalize(home + "/" + p.dropFirst(1))
    }
    return ConfigPaths.absolute(p, base: baseDirectory)
  }
}

enum GitRefName {
  /// nil when `s` is a valid git reference name (git check-ref-format, one-level names allowed).
  static func problem(_ s: String) -> String? {
    if s.isEmpty { return "is empty" }
    if s.utf8.count > 255 { return "is longer than 255 bytes" }
    if s.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7f }) { return "contains spaces or control characters" }
    if let c = s.first(where: { "~^:?*[\\".contains($0) }) { return "contains '\(c)'" }
    if s.contains("..") || s.contains("//") || s.contains("@{") || s == "@" { return "contains '..', '//' or '@{'" }
    if s.hasPrefix("-") || s.hasPrefix("/") || s.hasSuffix("/") || s.hasSuffix(".") || s.hasSuffix(".lock") {
      return "starts with '-' or '/', or ends with '/', '.' or '.lock'"
    }
    if s.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { return "has a component starting with '.'" }
    return nil
  }
}

extension NodeDecoder {
  static let configKeys = [
    "apiVersion", "kind", "source", "status", "stateDir", "integrations", "secrets", "policy", "serve", "deadlines", "notifications",
    "stateStore",
  ]

  func reconcilerConfig(_ root: YAMLNode, file: String, context ctx: inout ConfigContext) -> ReconcilerConfig? {
    guard let named = mapping(root, ReconcilerConfigLoader.kind, known: Self.configKeys) else { return nil }
    requireFields(named, ["apiVersion", "kind", "source", "stateDir"])
    // Sub-paths read `source.url`, not `ReconcilerConfig.source.url`.
    let top = Fields(node: named.node, pairs: named.pairs, path: "")

    if let n = top.value("apiVersion"), let v = string(n, "apiVersion"), v != apiVersionV1 {
      diags.error(.unknownApiVersion, "unknown apiVersion '\(v)'; this version of ytempire reads \(apiVersionV1)", at: n.mark)
    }
    if let n = top.value("kind"), let k = string(n, "kind"), k != ReconcilerConfigLoader.kind {
      if Kind(rawValue: k) != nil {
        diags.error(
          .unknownKind,
          "kind '\(k)' is a manifest of the desired-state repository, not a reconciler configuration (kind: \(ReconcilerConfigLoader.kind))",
          at: n.mark)
      } else {
        diags.error(
          .unknownKind,
          "unknown kind '\(k)'; a reconciler configuration has kind: \(ReconcilerConfigLoader.kind)\(Suggest.hint(k, [ReconcilerConfigLoader.kind]))",
          at: n.mark)
      }
    }

    let source = top.value("source").flatMap { configSource($0, "source", &ctx) }
    let status = configStatus(top.value("status"), "status")
    let stateDir = localPath(top, "stateDir", ctx)  // required above, with the path named
    let integrations =
      top.value("integrations").map { configIntegrations($0, "integrations", &ctx) }
      ?? ReconcilerConfig.Integrations()
    var secrets: [String: SecretRef] = [:]
    if let n = top.value("secrets"), let es = entries(n, "secrets") {
      for e in es {
        guard Names.isSecretName(e.key) else {
          diags.error(
            .invalidName,
            "secret name '\(e.key)' in secrets is not valid: 1–63 lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
            at: e.mark)
          continue
        }
        if e.value.isPlainNull {
          diags.error(.missingField, "secrets.\(e.key) has no value; write {env: NAME}, {file: PATH} or {value: \"…\"}", at: e.mark)
          continue
        }
        if let r = secretRef(e.value, "secrets.\(e.key)", &ctx) { secrets[e.key] = r }
      }
    }
    let policy = configPolicy(top.value("policy"), "policy")
    let serve = configServe(top.value("serve"), "serve", &ctx)
    let deadlines = configDeadlines(top.value("deadlines"), "deadlines")
    let notifications = configNotifications(top.value("notifications"), "notifications", &ctx)
    let stateStore = top.value("stateStore").flatMap { configStateStore($0, "stateStore", &ctx) }

    checkLiterals(ctx)
    guard let source, let stateDir else { return nil }
    var config = ReconcilerConfig(
      source: source, status: status, stateDir: stateDir, integrations: integrations,
      secrets: secrets, policy: policy, serve: serve, file: file)
    config.deadlines = deadlines
    config.notifications = notifications
    config.stateStore = stateStore
    return config
  }

  /// `{value: …}` secrets and passwords in URLs are warnings unless every endpoint is loopback.
  private func checkLiterals(_ ctx: ConfigContext) {
    guard let remote = ctx.endpoints.first(where: { !HostPort.isLoopback($0.host) }) else { return }
    let note = Diagnostic.Note("\(remote.path) points at \(remote.host), which is not a loopback address", at: remote.mark)
    for r in ctx.literals {
      diags.warning(
        .literalSecret,
        "\(r.path) is a literal secret ({value: …}), and this configuration talks to non-loopback hosts; read it from the environment ({env: NAME}) or a file ({file: PATH})",
        at: r.mark, notes: [note])
    }
    for u in ctx.urlPasswords {
      diags.warning(
        .literalSecret,
        "\(u.path) has a password in the URL, and this configuration talks to non-loopback hosts; keep the password out of the file",
        at: u.mark, notes: [note])
    }
  }

  // MARK: Secrets

  func secretRef(_ f: Fields, _ key: String, required: Bool = false, _ ctx: inout ConfigContext) -> SecretRef? {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    return secretRef(n, f.sub(key), &ctx)
  }

  /// Exactly one of `{env: NAME}`, `{file: PATH}`, `{value: "…"}`. What a wrongly written
  /// reference holds is never repeated in a message: it may be a pasted secret.
  func secretRef(_ n: YAMLNode, _ path: String, _ ctx: inout ConfigContext) -> SecretRef? {
    let how = "{env: NAME}, {file: PATH} or {value: \"…\"}"
    switch n.value {
    case .scalar:
      diags.error(
        .invalidSecretRef,
        "\(path) must be a secret reference, not a plain string: write \(how) (the text written here is not repeated, in case it is a secret)",
        at: n.mark)
      return nil
    case .sequence:
      diags.error(.invalidSecretRef, "\(path) must be a secret reference (\(how)), found a list", at: n.mark)
      return nil
    case .mapping:
      break
    }
    let kinds = ["env", "file", "value"]
    guard let m = mapping(n, path, known: kinds) else { return nil }
    // An unknown key (reported by mapping, with its did-you-mean) says enough.
    if m.pairs.contains(where: { $0.key.scalarText.map { !kinds.contains($0) } ?? true }) { return nil }
    let present = kinds.filter { m.keyMark($0) != nil }
    guard present.count == 1, let key = present.first else {
      if present.isEmpty {
        diags.error(.invalidSecretRef, "\(path) needs exactly one of 'env', 'file' or 'value'", at: n.mark)
      } else {
        diags.error(
          .invalidSecretRef,
          "\(path) sets \(present.map { "'\($0)'" }.joined(separator: " and ")); a secret reference has exactly one of 'env', 'file' or 'value'",
          at: m.keyMark(present[1])!)
      }
      return nil
    }
    guard let v = m.value(key) else {
      diags.error(.missingField, "\(path).\(key) has no value", at: m.keyMark(key)!)
      return nil
    }
    if isRejected(v) { return nil }
    guard case .scalar(let s, _) = v.value else {
      diags.error(.typeMismatch, "\(path).\(key) must be a string, found \(describe(v))", at: v.mark)
      return nil
    }
    if s.isEmpty {
      diags.error(.outOfRange, "\(path).\(key) must not be empty", at: v.mark)
      return nil
    }
    switch key {
    case "env":
      guard Self.isEnvName(s) else {
        diags.error(
          .invalidSecretRef,
          "\(path).env is not an environment variable name (letters, digits and '_', not starting with a digit); the text is not repeated, in case it is a secret",
          at: v.mark)
        return nil
      }
      return SecretRef(source: .env(s), mark: n.mark, path: path)
    case "file":
      guard !s.utf8.contains(0) else {
        diags.error(.invalidPath, "\(path).file contains a NUL byte", at: v.mark)
        return nil
      }
      return SecretRef(source: .file(ctx.resolve(s)), mark: n.mark, path: path)
    default:
      let r = SecretRef(source: .value(s), mark: n.mark, path: path)
      ctx.literals.append(r)
      return r
    }
  }

  static func isEnvName(_ s: String) -> Bool {
    guard let f = s.utf8.first, !(f >= 0x30 && f <= 0x39), s.utf8.count <= 255 else { return false }
    return s.utf8.allSatisfy { ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f }
  }

  // MARK: Paths and URLs

  /// A path on the reconciler's machine, made absolute against the config file's directory.
  func localPath(_ f: Fields, _ key: String, required: Bool = false, _ ctx: ConfigContext) -> String? {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    guard let s = string(n, f.sub(key)) else { return nil }
    if s.isEmpty {
      diags.error(.outOfRange, "\(f.sub(key)) must not be empty", at: n.mark)
      return nil
    }
    if s.utf8.contains(0) {
      diags.error(.invalidPath, "\(f.sub(key)) contains a NUL byte", at: n.mark)
      return nil
    }
    return ctx.resolve(s)
  }

  /// An integration's base URL (http or https), stored without a trailing '/'.
  func endpoint(_ f: Fields, _ key: String, default def: String? = nil, _ ctx: inout ConfigContext) -> String? {
    guard let n = f.value(key) else {
      if let def {
        if let h = URLComponents(string: def)?.host { ctx.endpoints.append((f.sub(key), h, f.node.mark)) }
        return def
      }
      requireFields(f, [key])
      return nil
    }
    guard var s = url(n, f.sub(key)) else { return nil }
    while s.hasSuffix("/") { s.removeLast() }
    if let c = URLComponents(string: s), let h = c.host {
      ctx.endpoints.append((f.sub(key), h, n.mark))
      if c.password != nil { ctx.urlPasswords.append((f.sub(key), n.mark)) }
    }
    return s
  }

  /// source.url: a local path (made absolute), file://, git://, http(s):// or ssh://.
  func sourceURL(_ f: Fields, _ ctx: inout ConfigContext) -> String? {
    let key = "url"
    let path = f.sub("url")
    guard let n = f.value(key) else {
      requireFields(f, [key])
      return nil
    }
    guard let s = string(n, path) else { return nil }
    if s.isEmpty {
      diags.error(.outOfRange, "\(path) must not be empty", at: n.mark)
      return nil
    }
    let shown = Redaction.url(s)
    if let r = s.range(of: "://") {
      let scheme = s[..<r.lowerBound].lowercased()
      guard ["file", "git", "http", "https", "ssh"].contains(scheme) else {
        diags.error(
          .invalidURL, "\(path) '\(shown)': scheme '\(scheme)' is not supported; use a local path, file://, git://, http(s):// or ssh://",
          at: n.mark)
        return nil
      }
      guard s.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }), s.utf8.count <= 2048 else {
        diags.error(.invalidURL, "\(path) contains spaces or non-ASCII characters, or is longer than 2048 characters", at: n.mark)
        return nil
      }
      if scheme == "file" {
        guard s[r.upperBound...].hasPrefix("/") else {
          diags.error(
            .invalidURL,
            "\(path) '\(shown)': a file:// URL needs an absolute path (file:///srv/empire.git); write a relative path without file://",
            at: n.mark)
          return nil
        }
        return s
      }
      guard let c = URLComponents(string: s), let host = c.host, !host.isEmpty else {
        diags.error(.invalidURL, "\(path) '\(shown)' is not a valid URL: it has no host", at: n.mark)
        return nil
      }
      ctx.endpoints.append((path, host, n.mark))
      if c.password != nil { ctx.urlPasswords.append((path, n.mark)) }
      return s
    }
    if s.contains("@"), s.contains(":"), !s.hasPrefix("/"), !s.hasPrefix("."), !s.hasPrefix("~") {
      diags.error(.invalidURL, "\(path) '\(shown)': scp-style addresses are not supported; write ssh://user@host/path", at: n.mark)
      return nil
    }
    if s.utf8.contains(0) {
      diags.error(.invalidPath, "\(path) contains a NUL byte", at: n.mark)
      return nil
    }
    return ctx.resolve(s)
  }

  // MARK: Sections

  func configSource(_ node: YAMLNode, _ path: String, _ ctx: inout ConfigContext) -> ReconcilerConfig.Source? {
    guard let f = mapping(node, path, known: ["url", "ref", "path", "interval", "verify", "allowRewrite", "auth", "caFile", "timeouts"])
    else { return nil }
    let url = sourceURL(f, &ctx)
    var ref: String?
    if let n = f.value("ref"), let s = string(n, f.sub("ref")) {
      if let problem = GitRefName.problem(s) {
        diags.error(.invalidValue, "\(f.sub("ref")) '\(s)' is not a branch, tag, commit or refs/… name: it \(problem)", at: n.mark)
      } else {
        ref = s
      }
    }
    let repoPath = relativePath(f, "path") ?? "."
    var interval: ModelDuration? = ReconcilerConfigLoader.Defaults.interval
    if let d = duration(f, "interval") {
      if d.milliseconds == 0 {
        interval = nil
      } else if d.milliseconds < 1000 {
        diags.error(
          .outOfRange, "\(f.sub("interval")) is \(d); poll at most once a second (or write 0s to turn polling off)",
          at: f.value("interval")!.mark)
      } else {
        interval = d
      }
    }

    var verify = ReconcilerConfig.Verify(mode: .off, allowedSigners: nil, gpgHome: nil)
    if let vn = f.value("verify"), let v = mapping(vn, f.sub("verify"), known: ["mode", "allowedSigners", "gpgHome"]) {
      verify.mode = enumeration(v, "mode", ReconcilerConfig.Verify.Mode.self) ?? .off
      verify.allowedSigners = localPath(v, "allowedSigners", ctx)
      verify.gpgHome = localPath(v, "gpgHome", ctx)
      if verify.mode == .head, !v.has("allowedSigners"), !v.has("gpgHome") {
        diags.error(
          .missingField, "\(v.path).mode head needs the keys to trust: allowedSigners (ssh signatures) or gpgHome (OpenPGP), or both",
          at: v.node.mark)
      }
    }
    let allowRewrite = bool(f, "allowRewrite") ?? false

    var auth = ReconcilerConfig.Auth(token: nil, sshKey: nil, knownHosts: nil)
    if let an = f.value("auth"), let a = mapping(an, f.sub("auth"), known: ["token", "sshKey", "knownHosts"]) {
      auth.token = secretRef(a, "token", &ctx)
      auth.sshKey = secretRef(a, "sshKey", &ctx)
      auth.knownHosts = localPath(a, "knownHosts", ctx)
      if a.has("token"), a.has("sshKey") {
        diags.error(
          .mutuallyExclusive, "\(a.path) sets both 'token' and 'sshKey'; an https source takes a token, an ssh:// source a key",
          at: a.keyMark("sshKey")!)
      }
      if let url {
        let scheme = url.range(of: "://").map { url[..<$0.lowerBound].lowercased() } ?? "path"
        if a.has("token"), scheme != "http", scheme != "https" {
          diags.warning(
            .invalidValue,
            "\(a.path).token is only sent to http(s):// sources; source.url is \(scheme == "path" ? "a local path" : "a \(scheme):// URL")",
            at: a.keyMark("token")!)
        }
        if a.has("sshKey"), scheme != "ssh" {
          diags.warning(
            .invalidValue,
            "\(a.path).sshKey is only used for ssh:// sources; source.url is \(scheme == "path" ? "a local path" : "a \(scheme):// URL")",
            at: a.keyMark("sshKey")!)
        }
      }
      if a.has("knownHosts"), !a.has("sshKey") {
        diags.warning(.invalidValue, "\(a.path).knownHosts is only used with sshKey", at: a.keyMark("knownHosts")!)
      }
    }
    let caFile = localPath(f, "caFile", ctx)
    var timeouts = ReconcilerConfig.Timeouts()
    if let tn = f.value("timeouts"), let t = mapping(tn, f.sub("timeouts"), known: ["connect", "transfer"]) {
      let limit = ReconcilerConfigLoader.Defaults.maxTimeout
      for key in ["connect", "transfer"] {
        guard let d = duration(t, key) else { continue }
        if d.milliseconds < 100 || limit < d {
          diags.error(.outOfRange, "\(t.sub(key)) is \(d); write a deadline between 100ms and \(limit)", at: t.value(key)!.mark)
        } else if key == "connect" {
          timeouts.connect = d
        } else {
          timeouts.transfer = d
        }
      }
    }
    guard let url else { return nil }
    var source = ReconcilerConfig.Source(
      url: url, ref: ref, path: repoPath, interval: interval, verify: verify,
      allowRewrite: allowRewrite, auth: auth, caFile: caFile)
    source.timeouts = timeouts
    return source
  }

  func configStatus(_ node: YAMLNode?, _ path: String) -> ReconcilerConfig.Status {
    var status = ReconcilerConfig.Status(branch: ReconcilerConfigLoader.Defaults.statusBranch, push: false)
    guard let node, let f = mapping(node, path, known: ["branch", "push"]) else { return status }
    if let n = f.value("branch"), let s = string(n, f.sub("branch")) {
      if let problem = GitRefName.problem(s) {
        diags.error(.invalidValue, "\(f.sub("branch")) '\(s)' is not a valid branch name: it \(problem)", at: n.mark)
      } else if s.hasPrefix("refs/") {
        diags.error(.invalidValue, "\(f.sub("branch")) is a branch name such as ytempire/status, without refs/heads/", at: n.mark)
      } else {
        status.branch = s
      }
    }
    status.push = bool(f, "push") ?? false
    return status
  }

  func configIntegrations(_ node: YAMLNode, _ path: String, _ ctx: inout ConfigContext) -> ReconcilerConfig.Integrations {
    var out = ReconcilerConfig.Integrations()
    guard let f = mapping(node, path, known: ["youtube", "n8n", "cloudflare", "vault", "prometheus", "configStore"]) else { return out }
    if let n = f.value("youtube"), let m = mapping(n, f.sub("youtube"), known: ["endpoint", "tokenEndpoint", "clientId", "clientSecret"]) {
      let endpoint = self.endpoint(m, "endpoint", default: ReconcilerConfigLoader.Defaults.youtubeEndpoint, &ctx)
      let token = self.endpoint(m, "tokenEndpoint", default: ReconcilerConfigLoader.Defaults.youtubeTokenEndpoint, &ctx)
      let id = secretRef(m, "clientId", required: true, &ctx)
      let secret = secretRef(m, "clientSecret", required: true, &ctx)
      if let endpoint, let token, let id, let secret {
        out.youtube = .init(endpoint: endpoint, tokenEndpoint: token, clientId: id, clientSecret: secret)
      }
    }
    if let n = f.value("n8n"), let m = mapping(n, f.sub("n8n"), known: ["endpoint", "apiKey", "credential"]) {
      let endpoint = self.endpoint(m, "endpoint", &ctx)
      let key = secretRef(m, "apiKey", required: true, &ctx)
      let credential = string(m, "credential", maxLength: 128, minLength: 1)
      if let endpoint, let key { out.n8n = .init(endpoint: endpoint, apiKey: key, credential: credential) }
    }
    if let n = f.value("cloudflare"), let m = mapping(n, f.sub("cloudflare"), known: ["endpoint", "token", "accountId"]) {
      let endpoint = self.endpoint(m, "endpoint", default: ReconcilerConfigLoader.Defaults.cloudflareEndpoint, &ctx)
      let token = secretRef(m, "token", required: true, &ctx)
      let account = pattern(m, "accountId", what: "a Cloudflare account id (32 lowercase hexadecimal characters)") { s in
        s.utf8.count == 32 && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
      }
      if let endpoint, let token { out.cloudflare = .init(endpoint: endpoint, token: token, accountId: account) }
    }
    if let n = f.value("vault"), let m = mapping(n, f.sub("vault"), known: ["endpoint", "token", "auditFilePath"]) {
      let endpoint = self.endpoint(m, "endpoint", &ctx)
      let token = secretRef(m, "token", required: true, &ctx)
      // A path on the Vault server (not resolved against this file), or Vault's `stdout` / `discard`.
      let audit = pattern(m, "auditFilePath", what: "an absolute path on the Vault server, stdout or discard") { s in
        (s == "stdout" || s == "discard" || (s.hasPrefix("/") && s.count > 1)) && s.utf8.count <= 4096
          && !s.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
      }
      if let endpoint, let token { out.vault = .init(endpoint: endpoint, token: token, auditFilePath: audit) }
    }
    if let n = f.value("prometheus"), let m = mapping(n, f.sub("prometheus"), known: ["endpoint", "rulesFile", "promtool"]) {
      let endpoint = self.endpoint(m, "endpoint", &ctx)
      let rules = localPath(m, "rulesFile", required: true, ctx)
      var promtool: String?
      if let pn = m.value("promtool"), let s = string(pn, m.sub("promtool")) {
        if s.isEmpty {
          diags.error(.outOfRange, "\(m.sub("promtool")) must not be empty", at: pn.mark)
        } else {
          promtool = s.contains("/") ? ctx.resolve(s) : s
        }
      }
      if let endpoint, let rules { out.prometheus = .init(endpoint: endpoint, rulesFile: rules, promtool: promtool) }
    }
    if let n = f.value("configStore"), let m = mapping(n, f.sub("configStore"), known: ["url", "password"]) {
      out.configStore = configStore(m, &ctx)
    }
    return out
  }

  /// `sqlite:///abs`, `sqlite:relative` (made absolute, stored as sqlite:///abs), or
  /// `postgres[ql]://user[:pw]@host[:port]/db[?sslmode=disable|require|verify-full]` (what ConfigStoreLocation accepts). The URL is not repeated in messages: it may hold a password.
  func configStore(_ m: Fields, _ ctx: inout ConfigContext) -> ReconcilerConfig.ConfigStore? {
    let path = m.sub("url")
    guard let n = m.value("url") else {
      requireFields(m, ["url"])
      return nil
    }
    guard let s = string(n, path) else { return nil }
    let password = secretRef(m, "password", &ctx)
    let forms = "sqlite:///absolute/path, sqlite:relative/path or postgres://user@host:5432/database"
    if s.hasPrefix("sqlite:") {
      var rest = s.dropFirst("sqlite:".count)
      if rest.hasPrefix("//") {
        rest = rest.dropFirst(2)
        guard rest.hasPrefix("/") else {
          diags.error(
            .invalidURL,
            "\(path): sqlite:// takes an absolute path (three slashes: sqlite:///var/lib/ytempire/runtime.sqlite); write sqlite:relative/path for a path relative to this file",
            at: n.mark)
          return nil
        }
      }
      guard !rest.isEmpty, !rest.utf8.contains(0), !rest.contains("?"), !rest.contains("#"), !rest.hasSuffix("/") else {
        diags.error(.invalidURL, "\(path) does not name a database file; write \(forms)", at: n.mark)
        return nil
      }
      if m.has("password") {
        diags.error(.invalidValue, "\(m.sub("password")) is only used with a postgres:// URL", at: m.keyMark("password")!)
      }
      return .init(url: "sqlite://" + ctx.resolve(String(rest)), password: nil)
    }
    guard s.hasPrefix("postgres://") || s.hasPrefix("postgresql://") else {
      diags.error(.invalidURL, "\(path) is not a config store URL; write \(forms)", at: n.mark)
      return nil
    }
    guard postgresURL(s, n, in: m, &ctx) != nil else { return nil }
    return .init(url: s, password: password)
  }

  /// What `postgresURL` found in a valid URL.
  struct PostgresURLParts {
    /// The `?sslmode=` value (disable, require or verify-full), nil when the URL has none.
    var sslmode: String?
  }

  /// Checks `s`, the `url` of `m` (configStore, stateStore), already known to start with
  /// `postgres://` or `postgresql://`: `postgres[ql]://user[:pw]@host[:port]/db[?sslmode=disable|require|verify-full]`,
  /// what ConfigStoreLocation and the PostgreSQL state store accept. A password both in the URL and in `m`'s
  /// `password:` is an error. Records the host in `ctx.endpoints` and a password in the URL in `ctx.urlPasswords`.
  /// The URL is never repeated in a message: it may hold a password. nil after an error.
  func postgresURL(_ s: String, _ n: YAMLNode, in m: Fields, _ ctx: inout ConfigContext) -> PostgresURLParts? {
    let path = m.sub("url")
    guard s.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }), let c = URLComponents(string: s),
      let host = c.host, !host.isEmpty
    else {
      diags.error(.invalidURL, "\(path) is not a valid postgres:// URL (it needs a host: postgres://user@host:5432/database)", at: n.mark)
      return nil
    }
    guard let user = c.percentEncodedUser, !user.isEmpty else {
      diags.error(.invalidURL, "\(path) names no user: postgres://user@host:5432/database", at: n.mark)
      return nil
    }
    var sslmode: String?
    for item in c.queryItems ?? [] {
      guard item.name == "sslmode" else {
        diags.error(.invalidURL, "\(path): unknown parameter '\(item.name)'; only sslmode is understood", at: n.mark)
        return nil
      }
      guard let v = item.value, ["disable", "require", "verify-full"].contains(v) else {
        diags.error(.invalidURL, "\(path): sslmode must be disable, require or verify-full", at: n.mark)
        return nil
      }
      sslmode = v
    }
    if let port = c.port, !(1...65535).contains(port) {
      diags.error(.outOfRange, "\(path): port \(port) is not between 1 and 65535", at: n.mark)
      return nil
    }
    let db = c.path.drop { $0 == "/" }
    guard !db.isEmpty, !db.contains("/") else {
      diags.error(.invalidURL, "\(path) names no database: postgres://user@host:5432/database", at: n.mark)
      return nil
    }
    if c.password != nil {
      if m.has("password") {
        diags.error(
          .mutuallyExclusive, "\(path) has a password and \(m.sub("password")) is set too; keep only password: {env: NAME}",
          at: m.keyMark("password")!)
      }
      ctx.urlPasswords.append((path, n.mark))
    }
    ctx.endpoints.append((path, host, n.mark))
    return PostgresURLParts(sslmode: sslmode)
  }

  /// `stateStore: {url, password, tls: {mode, caFile}}` (DESIGN A10): a PostgreSQL URL checked like the config
  /// store's; SQLite is the default (in stateDir), not written here. The URL is never repeated in a message.
  func configStateStore(_ node: YAMLNode, _ path: String, _ ctx: inout ConfigContext) -> StateStoreSettings? {
    guard let m = mapping(node, path, known: ["url", "password", "tls"]) else { return nil }
    let password = secretRef(m, "password", &ctx)
    typealias Mode = StateStoreSettings.TLSMode
    var tlsMode: Mode?
    var caFile: String?
    var tls: Fields?
    if let tn = m.value("tls"), let t = mapping(tn, m.sub("tls"), known: ["mode", "caFile"]) {
      tls = t
      tlsMode = enumeration(t, "mode", Mode.self)
      caFile = localPath(t, "caFile", ctx)
    }
    let urlPath = m.sub("url")
    guard let n = m.value("url") else {
      requireFields(m, ["url"])
      return nil
    }
    guard let s = string(n, urlPath) else { return nil }
    let form = "postgres://user@host:5432/database"
    if s.lowercased().hasPrefix("sqlite:") {
      diags.error(
        .invalidURL,
        "\(urlPath): SQLite is the default state store, kept in stateDir; remove \(path) to use it (\(path) is for a shared PostgreSQL database: \(form))",
        at: n.mark)
      return nil
    }
    guard s.hasPrefix("postgres://") || s.hasPrefix("postgresql://") else {
      // The scheme is named when it looks like one; the rest is not repeated (it may hold a password).
      let scheme = s.range(of: "://").map { String(s[..<$0.lowerBound]) }
      if let scheme, scheme.utf8.count <= 32, Self.isURLScheme(scheme) {
        diags.error(
          .invalidURL, "\(urlPath): scheme '\(scheme)' is not supported; the state store is PostgreSQL: write \(form) (or postgresql://)",
          at: n.mark)
      } else {
        diags.error(.invalidURL, "\(urlPath) is not a PostgreSQL URL; write \(form) (or postgresql://)", at: n.mark)
      }
      return nil
    }
    guard let parts = postgresURL(s, n, in: m, &ctx) else { return nil }
    if tls?.value("mode") != nil, tlsMode == nil { return nil }  // reported by enumeration
    if let t = tls, let given = tlsMode, let written = parts.sslmode, given.rawValue != written {
      diags.error(
        .mutuallyExclusive,
        "\(t.sub("mode")) is \(given.rawValue) but \(urlPath) sets sslmode=\(written); write the mode in one place (tls.mode, or sslmode in the URL)",
        at: t.value("mode")!.mark)
      return nil
    }
    let mode = tlsMode ?? parts.sslmode.flatMap(Mode.init(rawValue:)) ?? .disable
    if let t = tls, caFile != nil, mode == .disable {
      diags.error(
        .invalidValue,
        "\(t.sub("caFile")) is only used with TLS: set \(t.sub("mode")) to verify-full (or require), or remove caFile",
        at: t.keyMark("caFile")!)
      return nil
    }
    return StateStoreSettings(url: s, password: password, tlsMode: mode, caFile: caFile)
  }

  /// `[A-Za-z][A-Za-z0-9+.-]*` (RFC 3986 scheme).
  static func isURLScheme(_ s: String) -> Bool {
    guard let f = s.utf8.first, (f >= 0x41 && f <= 0x5a) || (f >= 0x61 && f <= 0x7a) else { return false }
    return s.utf8.allSatisfy {
      ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2b || $0 == 0x2d || $0 == 0x2e
    }
  }

  func configPolicy(_ node: YAMLNode?, _ path: String) -> ReconcilerConfig.Policy {
    typealias D = ReconcilerConfigLoader.Defaults
    var p = ReconcilerConfig.Policy(
      prune: true, maxDeletePercent: D.maxDeletePercent, maxUpdatePercent: D.maxUpdatePercent,
      minExisting: D.minExisting, observeMaxAge: D.observeMaxAge, syncWindows: [])
    guard let node,
      let f = mapping(
        node, path,
        known: [
          "prune", "maxDeletePercent", "maxUpdatePercent", "minExisting",
          "observeMaxAge", "syncWindows", "unknownOutcomeWait",
        ])
    else { return p }
    p.prune = bool(f, "prune") ?? true
    p.maxDeletePercent = number(f, "maxDeletePercent", min: 0, max: 100) ?? D.maxDeletePercent
    p.maxUpdatePercent = number(f, "maxUpdatePercent", min: 0, max: 100) ?? D.maxUpdatePercent
    p.minExisting = int(f, "minExisting", min: 0, max: 1_000_000) ?? D.minExisting
    p.observeMaxAge = duration(f, "observeMaxAge") ?? D.observeMaxAge
    p.unknownOutcomeWait = duration(f, "unknownOutcomeWait") ?? D.unknownOutcomeWait
    for (ip, item) in list(f, "syncWindows") ?? [] {
      if let w = syncWindow(item, ip) { p.syncWindows.append(w) }
    }
    return p
  }

  func syncWindow(_ node: YAMLNode, _ path: String) -> ReconcilerConfig.SyncWindow? {
    guard let f = mapping(node, path, known: ["kind", "schedule", "duration", "timezone", "applies", "names"]) else { return nil }
    requireFields(f, ["kind", "schedule", "duration"])
    let kind = enumeration(f, "kind", ReconcilerConfig.SyncWindow.WindowKind.self)
    var cron: CronExpression?
    if let cn = f.value("schedule"), let s = string(cn, f.sub("schedule")) {
      do {
        cron = try CronExpression(parsing: s)
      } catch {
        diags.error(.invalidCron, "\(f.sub("schedule")) '\(s)': \(error.message)", at: cn.mark)
      }
    }
    var length: ModelDuration?
    if let d = duration(f, "duration") {
      if d.milliseconds <= 0 {
        diags.error(.outOfRange, "\(f.sub("duration")) must be longer than 0s", at: f.value("duration")!.mark)
      } else {
        length = d
      }
    }
    let tz = timezone(f, "timezone") ?? "UTC"
    let applies = enumList(f, "applies", Kind.self)
    let names = nameList(f, "names")
    if let names { checkUnique(names, in: f.sub("names")) }
    guard let kind, let cron, let length else { return nil }
    return .init(
      kind: kind, schedule: cron, duration: length, timezone: tz, applies: applies,
      names: names?.map(\.name), mark: node.mark)
  }

  /// `deadlines: {request, call, observe}`, each from 100ms to a day.
  func configDeadlines(_ node: YAMLNode?, _ path: String) -> ReconcilerConfig.Deadlines {
    typealias D = ReconcilerConfigLoader.Defaults
    var out = ReconcilerConfig.Deadlines()
    let keys = ["request", "call", "observe"]
    guard let node, let f = mapping(node, path, known: keys) else { return out }
    for key in keys {
      guard let d = duration(f, key) else { continue }
      if d < D.minDeadline || D.maxTimeout < d {
        diags.error(
          .outOfRange, "\(f.sub(key)) is \(d); write a deadline between \(D.minDeadline) and \(D.maxTimeout)", at: f.value(key)!.mark)
        continue
      }
      switch key {
      case "request": out.request = d
      case "call": out.call = d
      default: out.observe = d
      }
    }
    return out
  }

  func configServe(_ node: YAMLNode?, _ path: String, _ ctx: inout ConfigContext) -> ReconcilerConfig.Serve {
    typealias D = ReconcilerConfigLoader.Defaults
    var s = ReconcilerConfig.Serve(
      listen: D.listen, driftInterval: D.driftInterval, driftBudget: D.driftBudget,
      webhooks: .init(githubSecret: nil, gitlabToken: nil))
    guard let node,
      let f = mapping(node, path, known: ["listen", "driftInterval", "driftBudget", "webhooks", "externalURL", "leaderElection"])
    else {
      return s
    }
    if let ln = f.value("leaderElection"), let l = mapping(ln, f.sub("leaderElection"), known: ["takeover"]),
      let d = duration(l, "takeover")
    {
      if d.milliseconds < 3_000 || d.milliseconds > 600_000 {
        diags.error(
          .outOfRange, "\(l.sub("takeover")) is \(d); a standby takes over within 3s to 10m of the leader's end",
          at: l.value("takeover")!.mark)
      } else {
        s.leaderTakeover = d
      }
    }
    if let u = url(f, "externalURL") {
      var t = u
      while t.hasSuffix("/") { t.removeLast() }
      s.externalURL = t
    }
    if let n = f.value("listen"), let text = string(n, f.sub("listen")) {
      if let problem = Self.listenProblem(text) {
        diags.error(.invalidValue, "\(f.sub("listen")) '\(text)' is not host:port (127.0.0.1:9400, [::1]:9400): \(problem)", at: n.mark)
      } else {
        s.listen = text
      }
    }
    if let d = duration(f, "driftInterval") {
      if d.milliseconds < 60_000 {
        diags.error(
          .outOfRange, "\(f.sub("driftInterval")) is \(d); drift checks run at most once a minute", at: f.value("driftInterval")!.mark)
      } else {
        s.driftInterval = d
      }
    }
    if let n = f.value("driftBudget"), let b = share(n, f.sub("driftBudget")) { s.driftBudget = b }
    if let wn = f.value("webhooks"), let w = mapping(wn, f.sub("webhooks"), known: ["github", "gitlab"]) {
      if let gn = w.value("github"), let g = mapping(gn, w.sub("github"), known: ["secret"]) {
        s.webhooks.githubSecret = secretRef(g, "secret", required: true, &ctx)
      }
      if let gn = w.value("gitlab"), let g = mapping(gn, w.sub("gitlab"), known: ["token"]) {
        s.webhooks.gitlabToken = secretRef(g, "token", required: true, &ctx)
      }
    }
    return s
  }

  /// A share written as a fraction (`0.1`) or a percentage (`10%`), returned as 0…1.
  func share(_ n: YAMLNode, _ path: String) -> Double? {
    if isRejected(n) { return nil }
    guard case .scalar(let text, let style) = n.value else {
      diags.error(.typeMismatch, "\(path) must be a percentage such as 10% or a fraction such as 0.1, found \(describe(n))", at: n.mark)
      return nil
    }
    if style == .plain {
      let resolved = CoreScalar.resolve(text)
      if case .float(let d) = resolved, !d.isFinite {
        diags.error(
          .invalidValue,
          "\(path) is \(describe(n)); NaN and infinity are not allowed: write a fraction from 0 to 1 (0.1) or a percentage from 0% to 100% (10%)",
          at: n.mark)
        return nil
      }
      let v: Double? =
        switch resolved {
        case .int(let i): Double(i)
        case .float(let d): d
        default: nil
        }
      if let v {
        guard (0...1).contains(v) else {
          diags.error(
            .outOfRange, "\(path) is \(text); write a fraction from 0 to 1 (0.1) or a percentage from 0% to 100% (10%)", at: n.mark)
          return nil
        }
        return v
      }
    }
    if text.hasSuffix("%"), Self.isDecimal(text.dropLast()), let p = Double(text.dropLast()) {
      guard (0...100).contains(p) else {
        diags.error(.outOfRange, "\(path) is \(text); a percentage is from 0% to 100%", at: n.mark)
        return nil
      }
      return p / 100
    }
    diags.error(.typeMismatch, "\(path) '\(clip(text))' is not a percentage such as 10% or a fraction such as 0.1", at: n.mark)
    return nil
  }

  /// `[0-9]+(\.[0-9]+)?`
  static func isDecimal(_ s: Substring) -> Bool {
    let parts = s.split(separator: ".", omittingEmptySubsequences: false)
    guard (1...2).contains(parts.count) else { return false }
    return parts.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
  }

  static func listenProblem(_ s: String) -> String? {
    do throws(HostPort.ParseError) {
      let hp = try HostPort.parse(s, allowingPortZero: true)
      if !hp.host.contains(":"), !hp.host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }) {
        return "not a host name or address"
      }
      return nil
    } catch {
      switch error {
      case .missingPort: return "no port"
      case .portNotANumber, .portOutOfRange: return "the port must be a number from 0 (any free port, logged at start) to 65535"
      case .missingHost: return "no host (write 0.0.0.0:\(s.split(separator: ":").last ?? "9400") to listen on every interface)"
      case .unclosedBracket: return "an IPv6 address needs its closing ']'"
      case .notIPv6: return "not an IPv6 address"
      case .ipv6WithoutBrackets: return "write an IPv6 address in brackets, [::1]:9400"
      case .invalidHost: return "not a host name or address"
      }
    }
  }
}
