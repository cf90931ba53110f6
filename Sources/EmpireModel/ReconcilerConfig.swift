import Basics
import Foundation
import YAMLKit

/// A reference to a secret in the reconciler configuration: `{env: NAME}`, `{file: PATH}` or
/// `{value: "…"}`. Loading never reads the secret; `SecretResolver.resolve` does.
///
/// `description` never shows a literal value, so a reference can be logged.
public struct SecretRef: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
  public enum Source: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// An environment variable of the reconciler process.
    case env(String)
    /// A regular file (absolute once loaded), read when resolved.
    case file(String)
    /// The secret itself, written in the configuration (local sandboxes only; warned about otherwise).
    case value(String)

    public var description: String {
      switch self {
      case .env(let n): "{env: \(n)}"
      case .file(let p): "{file: \(p)}"
      case .value: "{value: \(Redaction.mask)}"
      }
    }
    public var debugDescription: String { description }
  }

  public var source: Source
  public var mark: SourceMark
  /// Where it is configured, e.g. "integrations.youtube.clientId" or "secrets.youtube-tech-daily".
  public var path: String

  public init(source: Source, mark: SourceMark, path: String) {
    self.source = source
    self.mark = mark
    self.path = path
  }

  public var description: String { "\(path) \(source)" }
  public var debugDescription: String { description }
}

/// `stateStore:` (DESIGN A10): the shared PostgreSQL database that holds the state store, the
/// journal, quota windows, observations, plan keys and the audit log instead of SQLite in
/// `stateDir`. nil (the section absent): SQLite in `stateDir`.
public struct StateStoreSettings: Sendable, Equatable {
  /// How the connection is encrypted: `tls.mode`, else the URL's `?sslmode=`.
  public enum TLSMode: String, Sendable, Equatable, CaseIterable {
    case disable, require
    case verifyFull = "verify-full"
  }

  /// `postgres://user[:pw]@host[:port]/database[?sslmode=…]` as written. It may hold a
  /// password: never put it in a message.
  public var url: String
  /// The PostgreSQL password, when it is not in the URL.
  public var password: SecretRef?
  /// `tls.mode`, else the URL's `?sslmode=`, else `.disable`.
  public var tlsMode: TLSMode
  /// CA bundle the server certificate is checked against (absolute); only with `require` or `verify-full`.
  public var caFile: String?

  public init(url: String, password: SecretRef? = nil, tlsMode: TLSMode = .disable, caFile: String? = nil) {
    self.url = url
    self.password = password
    self.tlsMode = tlsMode
    self.caFile = caFile
  }
}

/// `ytempire.yaml` (DESIGN A5): where the desired state comes from, where status goes, the
/// integrations' endpoints and credentials, the safety policy and the service settings.
/// Every path in it is absolute (relative ones were resolved against the file's directory).
public struct ReconcilerConfig: Sendable {
  public struct Verify: Sendable {
    public enum Mode: String, Sendable, CaseIterable { case off, head }
    public var mode: Mode
    /// An ssh `allowed_signers` file.
    public var allowedSigners: String?
    /// A GnuPG home directory holding the trusted public keys.
    public var gpgHome: String?
  }

  public struct Auth: Sendable {
    /// HTTPS token (sent as the basic-auth password).
    public var token: SecretRef?
    /// SSH private key (no passphrase).
    public var sshKey: SecretRef?
    /// known_hosts file the ssh host key is checked against.
    public var knownHosts: String?
  }

  public struct Source: Sendable {
    /// An absolute local path, or a `file://`, `git://`, `http(s)://` or `ssh://` URL.
    public var url: String
    /// Branch, tag, commit or `refs/…`; nil for the remote's HEAD.
    public var ref: String?
    /// Folder of the repository holding the manifests (repository-relative; default ".").
    public var path: String
    /// Poll interval (default 1m); nil when written as `0s`: no polling, webhooks and manual runs only.
    public var interval: ModelDuration?
    public var verify: Verify
    /// Accept a tracked ref that moved to a commit not descending from the last applied one.
    public var allowRewrite: Bool
    public var auth: Auth
    /// CA bundle for https sources.
    public var caFile: String?
    /// Network deadlines of fetches and pushes: a sync gives up at connect + transfer + 1 s.
    public var timeouts: Timeouts = Timeouts()

    /// True when `url` is a local path (not a URL).
    public var isLocalPath: Bool { !url.contains("://") }
  }

  public struct Timeouts: Sendable {
    /// Establishing the connection (default 15 s).
    public var connect: ModelDuration
    /// The whole transfer once connected (default 5 m).
    public var transfer: ModelDuration
    public init(
      connect: ModelDuration = ReconcilerConfigLoader.Defaults.connectTimeout,
      transfer: ModelDuration = ReconcilerConfigLoader.Defaults.transferTimeout
    ) {
      self.connect = connect
      self.transfer = transfer
    }
  }

  public struct Status: Sendable {
    public var branch: String
    public var push: Bool
  }

  public struct YouTube: Sendable {
    public var endpoint: String
    public var tokenEndpoint: String
    public var clientId: SecretRef
    public var clientSecret: SecretRef
  }

  public struct N8n: Sendable {
    public var endpoint: String
    public var apiKey: SecretRef
    /// n8n credential name for the Postgres node.
    public var credential: String?
  }

  public struct Cloudflare: Sendable {
    public var endpoint: String
    public var token: SecretRef
    public var accountId: String?
  }

  public struct Vault: Sendable {
    public var endpoint: String
    public var token: SecretRef
    /// `options.file_path` of the file audit device at `sys/audit/ytempire` (a path on the Vault server).
    public var auditFilePath: String?
  }

  public struct Prometheus: Sendable {
    public var endpoint: String
    /// The rule file ytempire writes (absolute).
    public var rulesFile: String
    /// `promtool` to check the rule file with: a command name looked up on PATH, or an absolute path.
    public var promtool: String?
  }

  /// The runtime config database: `sqlite:///abs/path` (relative sqlite paths are made
  /// absolute when loading) or `postgres://user[:pw]@host:port/db`.
  public struct ConfigStore: Sendable {
    public var url: String
    /// The PostgreSQL password, when it is not in the URL.
    public var password: SecretRef?

    /// The database file of a `sqlite:` URL.
    public var sqlitePath: String? {
      url.hasPrefix("sqlite://") ? String(url.dropFirst("sqlite://".count)) : nil
    }
  }

  public struct Integrations: Sendable {
    public var youtube: YouTube?
    public var n8n: N8n?
    public var cloudflare: Cloudflare?
    public var vault: Vault?
    public var prometheus: Prometheus?
    public var configStore: ConfigStore?
  }

  public struct SyncWindow: Sendable {
    public enum WindowKind: String, Sendable, CaseIterable { case allow, deny }
    public var kind: WindowKind
    /// When each window opens.
    public var schedule: CronExpression
    /// How long it stays open.
    public var duration: ModelDuration
    /// IANA zone the schedule is read in (default UTC).
    public var timezone: String
    /// Kinds it applies to; nil: all.
    public var applies: [Kind]?
    /// Resource names it applies to; nil: all.
    public var names: [String]?
    public var mark: SourceMark
  }

  public struct Policy: Sendable {
    public var prune: Bool
    public var maxDeletePercent: Double
    public var maxUpdatePercent: Double
    public var minExisting: Int
    public var observeMaxAge: ModelDuration
    public var syncWindows: [SyncWindow]
    /// How long a service may still execute a create whose answer was lost; that resource's
    /// creates wait this long from when it was sent, then it is observed and adopted.
    public var unknownOutcomeWait: ModelDuration = ReconcilerConfigLoader.Defaults.unknownOutcomeWait
  }

  public struct Webhooks: Sendable {
    public var githubSecret: SecretRef?
    public var gitlabToken: SecretRef?
  }

  public struct Serve: Sendable {
    /// `host:port` (IPv6 hosts in brackets).
    public var listen: String
    public var driftInterval: ModelDuration
    /// Share (0…1) of each daily quota drift checks may spend; `10%` in the file is 0.10.
    public var driftBudget: Double
    public var webhooks: Webhooks
    /// Where people reach this service's status page (`https://ytempire.example`): commit
    /// statuses and notifications link to it. nil: no link.
    public var externalURL: String?
    /// `leaderElection.takeover`: with a shared state store, how soon a standby leads after
    /// the leader's session ends (it campaigns three times in that span).
    public var leaderTakeover = ReconcilerConfigLoader.Defaults.leaderTakeover
  }

  /// Deadlines of the integration calls and of each run's observation (`deadlines:`).
  public struct Deadlines: Sendable, Equatable {
    /// One HTTP request to an integration (one attempt), connection included.
    public var request = ReconcilerConfigLoader.Defaults.requestDeadline
    /// One integration call: every attempt, retry wait and rate-limit wait.
    public var call = ReconcilerConfigLoader.Defaults.callDeadline
    /// The observation of one run (`plan`, `apply`, each reconcile of `serve`), all drivers.
    public var observe = ReconcilerConfigLoader.Defaults.observeDeadline
    public init() {}
  }

  public var source: Source
  public var status: Status
  public var stateDir: String
  public var integrations: Integrations
  /// The names resources' `credentials:` fields use.
  public var secrets: [String: SecretRef]
  public var policy: Policy
  public var serve: Serve
  /// The file it was read from (absolute).
  public var file: String
  public var deadlines = Deadlines()
  /// `notifications:`, the sinks events go to.
  public var notifications: [NotificationSink] = []
  /// `stateStore:`, the shared PostgreSQL state; nil: SQLite in `stateDir`.
  public var stateStore: StateStoreSettings? = nil

  /// Every secret reference of the configuration (integrations, auth, webhooks, `stateStore`, `secrets:`, notifications), sorted by path.
  public var allSecretRefs: [SecretRef] {
    var out: [SecretRef] = []
    out.append(contentsOf: [source.auth.token, source.auth.sshKey].compactMap { $0 })
    if let y = integrations.youtube { out += [y.clientId, y.clientSecret] }
    if let n = integrations.n8n { out.append(n.apiKey) }
    if let c = integrations.cloudflare { out.append(c.token) }
    if let v = integrations.vault { out.append(v.token) }
    if let p = integrations.configStore?.password { out.append(p) }
    if let p = stateStore?.password { out.append(p) }
    out.append(contentsOf: secrets.values)
    out.append(contentsOf: [serve.webhooks.githubSecret, serve.webhooks.gitlabToken].compactMap { $0 })
    for s in notifications { out.append(contentsOf: [s.secretURL, s.secret, s.token].compactMap { $0 }) }
    return out.sorted { $0.path < $1.path }
  }
}

public enum ReconcilerConfigLoader {
  /// Default values (DESIGN A5).
  public enum Defaults {
    public static let youtubeEndpoint = "https://www.googleapis.com/youtube/v3"
    public static let youtubeTokenEndpoint = "https://oauth2.googleapis.com/token"
    public static let cloudflareEndpoint = "https://api.cloudflare.com/client/v4"
    public static let interval = ModelDuration.seconds(60)
    public static let connectTimeout = ModelDuration.seconds(15)
    public static let transferTimeout = ModelDuration.seconds(300)
    /// The largest deadline either timeout may have (a day).
    public static let maxTimeout = ModelDuration.seconds(86_400)
    public static let statusBranch = "ytempire/status"
    public static let listen = "127.0.0.1:9400"
    public static let driftInterval = ModelDuration.seconds(6 * 3600)
    public static let leaderTakeover = ModelDuration.seconds(15)
    public static let driftBudget = 0.10
    public static let observeMaxAge = ModelDuration.seconds(3600)
    public static let unknownOutcomeWait = ModelDuration.seconds(120)
    public static let maxDeletePercent = 30.0
    public static let maxUpdatePercent = 50.0
    public static let minExisting = 10
    /// A request that has not finished in 30 s is given up (a silent or slow-drip server);
    /// healthy answers of these APIs take well under a second.
    public static let requestDeadline = ModelDuration.seconds(30)
    /// Room for Cloudflare's five-minute block (waited out once) and a few failed attempts.
    public static let callDeadline = ModelDuration.seconds(360)
    /// A run whose observation has not finished in 10 minutes plans what it saw and reports
    /// the rest as not observed.
    public static let observeDeadline = ModelDuration.seconds(600)
    /// The range every deadline must be in.
    public static let minDeadline = ModelDuration(milliseconds: 100)
  }

  public static let kind = "ReconcilerConfig"

  /// Reads and decodes; all diagnostics of the file (errors and warnings), sorted. config is nil when any error.
  /// A relative `path` is taken from the current directory; diagnostics name the file as `path` is written.
  /// `environment` supplies `HOME` for `~/` paths; no secret is read.
  public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment)
    -> (config: ReconcilerConfig?, diagnostics: [Diagnostic])
  {
    let absolute = ConfigPaths.absolute(path, base: FileManager.default.currentDirectoryPath)
    let base = ConfigPaths.directory(of: absolute)
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: absolute, isDirectory: &isDir), isDir.boolValue {
      let d = Diagnostic(.error, .fileUnreadable, "is a directory, not a configuration file", at: .init(file: path, line: 1, column: 1))
      return (nil, [d])
    }
    let loaded = YAMLLoader.load(contentsOf: absolute, displayName: path)
    return decode(loaded, displayPath: path, file: absolute, baseDirectory: base, home: environment["HOME"])
  }

  /// Decodes configuration text; relative paths are resolved against `baseDirectory`.
  public static func load(bytes: [UInt8], displayPath: String, baseDirectory: String)
    -> (config: ReconcilerConfig?, diagnostics: [Diagnostic])
  {
    let base = ConfigPaths.absolute(baseDirectory, base: FileManager.default.currentDirectoryPath)
    let loaded = YAMLLoader.load(bytes, file: displayPath)
    let file = ConfigPaths.absolute(displayPath, base: base)
    return decode(
      loaded, displayPath: displayPath, file: file, baseDirectory: base,
      home: ProcessInfo.processInfo.environment["HOME"])
  }

  static func decode(_ loaded: YAMLLoadResult, displayPath: String, file: String, baseDirectory: String, home: String?)
    -> (config: ReconcilerConfig?, diagnostics: [Diagnostic])
  {
    var diags = loaded.errors.map(ManifestLoader.diagnostic(from:))
    func finish(_ c: ReconcilerConfig?) -> (config: ReconcilerConfig?, diagnostics: [Diagnostic]) {
      diags.sort(by: Diagnostic.reportOrder)
      return (diags.contains { $0.severity == .error } ? nil : c, diags)
    }
    if loaded.errors.contains(where: \.isFatal) { return finish(nil) }
    let docs = loaded.documents.filter { $0.root != nil }
    guard let first = docs.first, first.root != nil else {
      if !diags.contains(where: { $0.severity == .error }) {
        diags.append(
          Diagnostic(
            .error, .missingField, "the file holds no configuration (apiVersion: \(apiVersionV1), kind: \(kind), …)",
            at: .init(file: displayPath, line: 1, column: 1)))
      }
      return finish(nil)
    }
    for extra in docs.dropFirst() {
      diags.append(Diagnostic(.error, .invalidValue, "a configuration file holds one document; this is a second one", at: extra.mark))
    }
    let decoder = NodeDecoder()
    var context = ConfigContext(baseDirectory: baseDirectory, home: home)
    // Tags are checked as in manifests (Tags.swift): `!!str`, `!!int`, … honoured, any other refused.
    guard let root = decoder.tagsResolved(first) else { return finish(nil) }
    let config = decoder.reconcilerConfig(root, file: file, context: &context)
    diags.append(contentsOf: decoder.diags.items)
    return finish(config)
  }
}

/// Path arithmetic for configuration paths (no file system access, no symlink resolution).
enum ConfigPaths {
  static func absolute(_ p: String, base: String) -> String {
    normalize(p.hasPrefix("/") ? p : base + "/" + p)
  }

  /// Removes empty and `.` components and applies `..` lexically.
  static func normalize(_ p: String) -> String {
    var out: [Substring] = []
    for c in p.split(separator: "/", omittingEmptySubsequences: true) {
      if c == "." { continue }
      if c == ".." {
        if !out.isEmpty { out.removeLast() }
        continue
      }
      out.append(c)
    }
    return "/" + out.joined(separator: "/")
  }

  static func directory(of absolute: String) -> String {
    guard let slash = absolute.lastIndex(of: "/"), slash != absolute.startIndex else { return "/" }
    return String(absolute[..<slash])
  }
}
