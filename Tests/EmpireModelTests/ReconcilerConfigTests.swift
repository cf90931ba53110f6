import Basics
import Foundation
import Sandbox
import TestSupport
import Testing
import YAMLKit

@testable import EmpireModel

/// ytempire.yaml (DESIGN A5): decoding, diagnostics, defaults, paths and secret resolution.
@Suite("ReconcilerConfig")
struct ReconcilerConfigTests {
  static let base = "/etc/ytempire"

  static func load(_ yaml: String, base: String = base) -> (config: ReconcilerConfig?, diagnostics: [Diagnostic]) {
    ReconcilerConfigLoader.load(bytes: Array(yaml.utf8), displayPath: "ytempire.yaml", baseDirectory: base)
  }

  static func errors(_ d: [Diagnostic]) -> [Diagnostic] { d.filter { $0.severity == .error } }
  static func warnings(_ d: [Diagnostic]) -> [Diagnostic] { d.filter { $0.severity == .warning } }

  /// The smallest valid configuration plus `extra` top-level lines.
  static func minimal(_ extra: String = "", url: String = "https://git.example.com/acme/empire.git") -> String {
    """
    apiVersion: ytempire.io/v1
    kind: ReconcilerConfig
    source:
      url: \(url)
    stateDir: /var/lib/ytempire
    \(extra)
    """
  }

  // MARK: Whole files

  @Test("examples/ytempire.yaml loads with no diagnostics and sets every section")
  func exampleLoads() throws {
    let path = Support.packageRoot.appendingPathComponent("examples/ytempire.yaml").path
    let (config, diags) = ReconcilerConfigLoader.load(path: path)
    #expect(diags.isEmpty, "\(diags.map(\.rendered))")
    let c = try #require(config)
    #expect(c.file == path)
    #expect(c.source.url == "https://github.com/acme/empire-config.git")
    #expect(c.source.ref == "main")
    #expect(c.source.path == ".")
    #expect(c.source.interval == .seconds(60))
    #expect(c.source.verify.mode == .off)
    #expect(c.source.verify.allowedSigners == "/etc/ytempire/allowed_signers")
    #expect(c.source.auth.token?.source == .env("GIT_TOKEN"))
    #expect(c.source.auth.token?.path == "source.auth.token")
    #expect(c.source.caFile == "/etc/ssl/certs/ca-certificates.crt")
    #expect(c.source.timeouts.connect == .seconds(15))
    #expect(c.source.timeouts.transfer == .seconds(300))
    #expect(c.status.branch == "ytempire/status")
    #expect(c.status.push == true)
    #expect(c.stateDir == "/var/lib/ytempire")
    let yt = try #require(c.integrations.youtube)
    #expect(yt.endpoint == "https://www.googleapis.com/youtube/v3")
    #expect(yt.clientSecret.source == .file("/run/secrets/yt-client-secret"))
    #expect(c.integrations.n8n?.credential == "ytempire-postgres")
    #expect(c.integrations.cloudflare?.accountId == "0123456789abcdef0123456789abcdef")
    #expect(c.integrations.vault?.token.source == .file("/run/secrets/vault-token"))
    #expect(c.integrations.prometheus?.rulesFile == "/etc/prometheus/rules/ytempire.yml")
    #expect(c.integrations.prometheus?.promtool == "promtool")
    #expect(c.integrations.configStore?.url == "postgres://ytempire@db.internal.example.com:5432/ytempire")
    #expect(c.integrations.configStore?.password?.source == .env("YTEMPIRE_DB_PASSWORD"))
    #expect(c.secrets.keys.sorted() == ["openai", "youtube-finance-focus", "youtube-tech-daily"])
    #expect(c.secrets["youtube-tech-daily"]?.path == "secrets.youtube-tech-daily")
    #expect(c.policy.syncWindows.count == 2)
    let deny = try #require(c.policy.syncWindows.first)
    #expect(deny.kind == .deny)
    #expect(deny.schedule.source == "0 22 * * *")
    #expect(deny.duration == .seconds(8 * 3600))
    #expect(deny.timezone == "America/Los_Angeles")
    #expect(deny.applies == [.channel])
    #expect(c.policy.syncWindows[1].names == ["main-cdn"])
    #expect(c.serve.listen == "127.0.0.1:9400")
    #expect(c.serve.driftBudget == 0.10)
    #expect(c.serve.webhooks.githubSecret?.source == .env("GITHUB_WEBHOOK_SECRET"))
    #expect(c.serve.webhooks.gitlabToken?.source == .env("GITLAB_WEBHOOK_TOKEN"))
    #expect(c.serve.externalURL == "https://ytempire.example.com")
    #expect(c.notifications.map(\.type) == [.slack, .webhook, .alertmanager, .github])
    // 12 of the integrations, sources, secrets and webhooks, and 3 of the sinks.
    #expect(c.allSecretRefs.count == 15)
  }

  @Test("the file `ytempire sandbox --write-config` writes loads with no errors and no warnings")
  func sandboxConfigLoads() throws {
    let channels = try JSONDecoder().decode(
      [SeededChannel].self,
      from: Data(
        """
        [{"name": "tech-daily", "channelId": "UCabcdefghijklmnopqrstuv", "credentials": "youtube-tech-daily",
          "refreshToken": "1//sandbox-refresh-tech-daily"}]
        """.utf8))
    let dir = try Support.tempDir([:])
    defer { Support.cleanup(dir) }
    for source in [Optional(Support.examples.path), nil] {
      let yaml = SandboxConfigWriter.render(
        baseURL: "http://127.0.0.1:8765", credentials: SandboxCredentials(), channels: channels,
        sourceDir: source, stateDir: dir.path + "/state")
      let file = dir.appendingPathComponent("ytempire.yaml")
      try Data(yaml.utf8).write(to: file)
      let (config, diags) = ReconcilerConfigLoader.load(path: file.path)
      #expect(diags.isEmpty, "\(diags.map(\.rendered))")
      let c = try #require(config)
      #expect(c.source.url == (source ?? ConfigPaths.normalize(dir.path)))
      #expect(c.integrations.youtube?.clientId.source == .value(SandboxCredentials().youtubeClientId))
      #expect(c.integrations.configStore?.sqlitePath == ConfigPaths.normalize(dir.path) + "/state/runtime.sqlite")
      #expect(c.secrets["youtube-tech-daily"]?.source == .value("1//sandbox-refresh-tech-daily"))
      #expect(c.integrations.prometheus == nil)
    }
    // Also with no channels (`secrets: {}`) and the IPv6 and localhost spellings of loopback.
    for base in ["http://[::1]:8765", "http://localhost:8765"] {
      let yaml = SandboxConfigWriter.render(
        baseURL: base, credentials: SandboxCredentials(), channels: [],
        sourceDir: "/srv/empire", stateDir: "/tmp/ytempire-sandbox")
      let (config, diags) = Self.load(yaml)
      #expect(diags.isEmpty, "\(base): \(diags.map(\.rendered))")
      #expect(config?.secrets.isEmpty == true)
    }
  }

  @Test func defaults() throws {
    let (config, diags) = Self.load(Self.minimal())
    #expect(diags.isEmpty, "\(diags.map(\.rendered))")
    let c = try #require(config)
    #expect(c.source.ref == nil)
    #expect(c.source.path == ".")
    #expect(c.source.interval == .seconds(60))
    #expect(c.source.verify.mode == .off)
    #expect(c.source.allowRewrite == false)
    #expect(c.source.auth.token == nil && c.source.auth.sshKey == nil)
    #expect(c.status.branch == "ytempire/status")
    #expect(c.status.push == false)
    #expect(c.integrations.youtube == nil && c.integrations.n8n == nil && c.integrations.cloudflare == nil)
    #expect(c.integrations.vault == nil && c.integrations.prometheus == nil && c.integrations.configStore == nil)
    #expect(c.secrets.isEmpty)
    #expect(c.policy.prune == true)
    #expect(c.policy.maxDeletePercent == 30)
    #expect(c.policy.maxUpdatePercent == 50)
    #expect(c.policy.minExisting == 10)
    #expect(c.policy.observeMaxAge == .seconds(3600))
    #expect(c.policy.syncWindows.isEmpty)
    #expect(c.serve.listen == "127.0.0.1:9400")
    #expect(c.serve.driftInterval == .seconds(6 * 3600))
    #expect(c.serve.driftBudget == 0.10)
    #expect(c.serve.webhooks.githubSecret == nil && c.serve.webhooks.gitlabToken == nil)
    #expect(c.file == "/etc/ytempire/ytempire.yaml")

    // Production endpoints are the defaults of youtube and cloudflare; n8n, vault and prometheus need one.
    let (c2, d2) = Self.load(
      Self.minimal(
        """
        integrations:
          youtube: {clientId: {env: A}, clientSecret: {env: B}}
          cloudflare: {token: {env: C}}
          vault: {token: {env: D}}
        """))
    #expect(c2 == nil)
    #expect(Self.errors(d2).map(\.message) == ["missing required field 'endpoint' in integrations.vault"])
    let (c3, _) = Self.load(
      Self.minimal(
        """
        integrations:
          youtube: {clientId: {env: A}, clientSecret: {env: B}}
          cloudflare: {token: {env: C}}
        """))
    #expect(c3?.integrations.youtube?.tokenEndpoint == "https://oauth2.googleapis.com/token")
    #expect(c3?.integrations.cloudflare?.endpoint == "https://api.cloudflare.com/client/v4")
  }

  // MARK: Diagnostics

  @Test("an unknown key is an error located at its line and column, with a did-you-mean")
  func unknownKeyDidYouMean() {
    let (config, diags) = Self.load(
      """
      apiVersion: ytempire.io/v1
      kind: ReconcilerConfig
      source:
        url: /srv/empire
        intervall: 5m
      stateDir: /var/lib/ytempire
      polcy: {prune: false}
      """)
    #expect(config == nil)
    #expect(
      diags.map(\.rendered) == [
        "ytempire.yaml:5:3: error: unknown field 'intervall' in source (did you mean 'interval'?) [unknown-field]",
        "ytempire.yaml:7:1: error: unknown field 'polcy' in ReconcilerConfig (did you mean 'policy'?) [unknown-field]",
      ])
  }

  @Test("every error of the file is reported at once, sorted by position")
  func severalErrorsAtOnce() {
    let (config, diags) = Self.load(
      """
      apiVersion: ytempire.io/v2
      kind: ReconcilerConfig
      source:
        url: https://git.example.com/empire.git
        interval: 60
        allowRewrite: yes
      status: {branch: "bad branch"}
      policy:
        maxDeletePercent: 130
        minExisting: -1
        syncWindows:
          - {kind: sometimes, schedule: "0 25 * * *", duration: 8h, timezone: PST}
      serve:
        listen: localhost
        driftBudget: 150%
      """)
    #expect(config == nil)
    let codes = diags.map(\.code)
    #expect(
      codes == [
        "missing-field", "unknown-api-version", "invalid-duration", "yaml11-boolean", "invalid-value",
        "out-of-range", "out-of-range", "invalid-enum", "invalid-cron", "unknown-timezone",
        "invalid-value", "out-of-range",
      ], "\(diags.map(\.rendered))")
    #expect(diags.first?.message == "missing required field 'stateDir' in ReconcilerConfig")
    #expect(diags.contains { $0.line == 12 && $0.message.contains("for Pacific time write America/Los_Angeles") })
    #expect(diags.contains { $0.line == 5 && $0.message.contains("add a unit") })
    #expect(diags == diags.sorted(by: Diagnostic.reportOrder))
  }

  @Test("a bare string where a secret reference belongs is an error that does not repeat the string")
  func bareStringSecret() {
    let token = "ghp_Zq8XexampleTOKEN0123456789abcdefXYZ"
    let (config, diags) = Self.load(
      Self.minimal(
        """
        integrations:
          cloudflare: {token: \(token)}
        secrets:
          openai: "sk-proj-\(token)"
          other: {env: "not a name \(token)"}
          both: {env: A, value: \(token)}
        """))
    #expect(config == nil)
    let errs = Self.errors(diags)
    #expect(errs.count == 4, "\(diags.map(\.rendered))")
    #expect(errs.allSatisfy { $0.code == "invalid-secret-ref" })
    #expect(
      errs.contains {
        $0.message.contains("integrations.cloudflare.token must be a secret reference") && $0.message.contains("{env: NAME}")
      })

    // A misspelt kind of reference is one error, with its did-you-mean.
    let (_, typo) = Self.load(Self.minimal("secrets: {a: {envv: A}}"))
    #expect(typo.map(\.message) == ["unknown field 'envv' in secrets.a (did you mean 'env'?)"])
    for d in diags { #expect(!d.rendered.contains(token), "\(d.rendered)") }
  }

  @Test("{value} secrets are warnings when any endpoint is not loopback, and fine when all are")
  func literalSecretWarnings() throws {
    let loopback = Self.minimal(
      """
      integrations:
        youtube: {endpoint: "http://127.0.0.2:8765/youtube/v3", tokenEndpoint: "http://localhost:8765/token",
                  clientId: {value: id}, clientSecret: {value: s3cr3t}}
        vault: {endpoint: "http://[::1]:8200", token: {value: hvs.root}}
        configStore: {url: "postgres://ytempire:pw@127.0.0.1:5432/ytempire"}
      secrets:
        yt: {value: refresh-token}
      """, url: "/srv/empire")
    let (c1, d1) = Self.load(loopback)
    #expect(c1 != nil)
    #expect(d1.isEmpty, "\(d1.map(\.rendered))")

    // A production endpoint turns every literal (and the URL password) into a warning, but still loads.
    let remote = loopback.replacingOccurrences(of: "http://[::1]:8200", with: "https://vault.example.com")
    let (c2, d2) = Self.load(remote)
    #expect(c2 != nil)
    let w = Self.warnings(d2)
    #expect(w.count == 5, "\(d2.map(\.rendered))")
    #expect(w.allSatisfy { $0.code == "literal-secret" })
    #expect(
      Set(w.compactMap { $0.message.split(separator: " ").first.map(String.init) }) == [
        "integrations.youtube.clientId", "integrations.youtube.clientSecret", "integrations.vault.token",
        "integrations.configStore.url", "secrets.yt",
      ])
    #expect(w.allSatisfy { $0.notes.first?.message.contains("vault.example.com") == true })
    for d in d2 {
      for secret in ["s3cr3t", "hvs.root", "refresh-token", "ytempire:pw"] { #expect(!d.rendered.contains(secret)) }
    }

    // A remote source counts too; a default (production) endpoint counts.
    let (_, d3) = Self.load(Self.minimal("secrets: {a: {value: x}}", url: "https://github.com/acme/empire.git"))
    #expect(Self.warnings(d3).map(\.code) == ["literal-secret"])
    let (_, d4) = Self.load(Self.minimal("integrations: {cloudflare: {token: {value: x}}}", url: "/srv/empire"))
    #expect(Self.warnings(d4).map(\.code) == ["literal-secret"])
    let (_, d5) = Self.load(Self.minimal("secrets: {a: {value: x}}", url: "/srv/empire"))
    #expect(d5.isEmpty)
  }

  @Test func loopbackAddresses() {
    for h in ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"] {
      #expect(HostPort.isLoopback(h), "\(h)")
    }
    for h in ["128.0.0.1", "10.0.0.1", "localhost.example.com", "::2", "example.com", "0.0.0.0", "127.0.0"] {
      #expect(!HostPort.isLoopback(h), "\(h)")
    }
  }

  @Test("relative paths are resolved against the configuration file's directory")
  func relativePaths() throws {
    let yaml = """
      apiVersion: ytempire.io/v1
      kind: ReconcilerConfig
      source:
        url: ../empire
        path: channels
        verify: {mode: head, allowedSigners: keys/allowed_signers, gpgHome: ./gnupg}
        auth: {sshKey: {file: keys/id}, knownHosts: keys/known_hosts}
        caFile: ca.pem
      stateDir: state
      integrations:
        prometheus: {endpoint: "http://127.0.0.1:9090", rulesFile: rules/ytempire.yml, promtool: bin/promtool}
        configStore: {url: "sqlite:db/runtime.sqlite"}
      secrets:
        openai: {file: ./secrets/openai}
        abs: {file: /run/secrets/abs}
      """
    let (config, diags) = Self.load(yaml, base: "/opt/ytempire/conf")
    // sshKey with a local source is a warning (it is only used for ssh://).
    #expect(Self.errors(diags).isEmpty, "\(diags.map(\.rendered))")
    let c = try #require(config)
    #expect(c.source.url == "/opt/ytempire/empire")
    #expect(c.source.path == "channels")
    #expect(c.source.isLocalPath)
    #expect(c.source.verify.allowedSigners == "/opt/ytempire/conf/keys/allowed_signers")
    #expect(c.source.verify.gpgHome == "/opt/ytempire/conf/gnupg")
    #expect(c.source.auth.sshKey?.source == .file("/opt/ytempire/conf/keys/id"))
    #expect(c.source.auth.knownHosts == "/opt/ytempire/conf/keys/known_hosts")
    #expect(c.source.caFile == "/opt/ytempire/conf/ca.pem")
    #expect(c.stateDir == "/opt/ytempire/conf/state")
    #expect(c.integrations.prometheus?.rulesFile == "/opt/ytempire/conf/rules/ytempire.yml")
    #expect(c.integrations.prometheus?.promtool == "/opt/ytempire/conf/bin/promtool")
    #expect(c.integrations.configStore?.url == "sqlite:///opt/ytempire/conf/db/runtime.sqlite")
    #expect(c.secrets["openai"]?.source == .file("/opt/ytempire/conf/secrets/openai"))
    #expect(c.secrets["abs"]?.source == .file("/run/secrets/abs"))

    // load(path:) takes the directory of the file, wherever the process runs.
    let dir = try Support.tempDir([
      "conf/ytempire.yaml": Self.minimal("", url: "repo").replacingOccurrences(of: "/var/lib/ytempire", with: "state")
    ])
    defer { Support.cleanup(dir) }
    let (c2, d2) = ReconcilerConfigLoader.load(path: dir.appendingPathComponent("conf/ytempire.yaml").path, environment: [:])
    #expect(d2.isEmpty)
    let root = ConfigPaths.normalize(dir.path)
    #expect(c2?.source.url == root + "/conf/repo")
    #expect(c2?.stateDir == root + "/conf/state")

    // ~/ takes HOME from the environment given to load(path:).
    try Data(Self.minimal("secrets: {k: {file: ~/.ytempire/k}}").utf8).write(to: dir.appendingPathComponent("conf/home.yaml"))
    let (c3, _) = ReconcilerConfigLoader.load(path: dir.appendingPathComponent("conf/home.yaml").path, environment: ["HOME": "/home/op"])
    #expect(c3?.secrets["k"]?.source == .file("/home/op/.ytempire/k"))
  }

  @Test("values: driftBudget spellings, ranges, sync windows, URLs and the config store")
  func values() throws {
    func budget(_ v: String) -> (Double?, [String]) {
      let (c, d) = Self.load(Self.minimal("serve: {driftBudget: \(v)}"))
      return (c?.serve.driftBudget, d.map(\.code))
    }
    #expect(budget("10%").0 == 0.10)
    #expect(budget("12.5%").0 == 0.125)
    #expect(budget("0.1").0 == 0.1)
    #expect(budget("0").0 == 0)
    #expect(budget("100%").0 == 1)
    #expect(budget("10").1 == ["out-of-range"])
    #expect(budget("101%").1 == ["out-of-range"])
    #expect(budget("-1%").1 == ["type-mismatch"])
    #expect(budget("ten").1 == ["type-mismatch"])

    func policy(_ v: String) -> [String] { Self.load(Self.minimal("policy: {\(v)}")).diagnostics.map(\.code) }
    #expect(policy("maxDeletePercent: 0, maxUpdatePercent: 100, minExisting: 0").isEmpty)
    #expect(policy("minExisting: 1000000").isEmpty)
    #expect(policy("minExisting: 1000001") == ["out-of-range"])
    #expect(policy("maxUpdatePercent: -0.5") == ["out-of-range"])
    #expect(policy("maxDeletePercent: \"30\"") == ["type-mismatch"])
    #expect(policy("minExisting: 2.5") == ["type-mismatch"])
    #expect(policy("prune: off") == ["yaml11-boolean"])

    let (c, d) = Self.load(
      Self.minimal("source: {url: x, interval: 0s}").replacingOccurrences(
        of: "source:\n  url: https://git.example.com/acme/empire.git\n", with: ""))
    #expect(d.isEmpty, "\(d.map(\.rendered))")
    #expect(c?.source.interval == nil)

    func timeouts(_ v: String) -> (ReconcilerConfig.Timeouts?, [String]) {
      let (c, d) = Self.load(Self.minimal("", url: "https://git.example.com/e.git\n  timeouts: {\(v)}"))
      return (c?.source.timeouts, d.map(\.code))
    }
    #expect(timeouts("connect: 2s, transfer: 90s").0.map { [$0.connect, $0.transfer] } == [.seconds(2), .seconds(90)])
    #expect(timeouts("connect: 2s").0?.transfer == .seconds(300))
    #expect(timeouts("connect: 10ms").1 == ["out-of-range"])
    #expect(timeouts("transfer: 25h").1 == ["out-of-range"])
    #expect(timeouts("transfr: 1m").1 == ["unknown-field"])
    #expect(Self.load(Self.minimal()).config?.source.timeouts.connect == .seconds(15))

    func url(_ u: String) -> [String] { Self.load(Self.minimal("", url: u)).diagnostics.map(\.code) }
    #expect(url("ssh://git@github.com/acme/empire.git").isEmpty)
    #expect(url("git://127.0.0.1/empire").isEmpty)
    #expect(url("file:///srv/empire.git").isEmpty)
    #expect(url("git@github.com:acme/empire.git") == ["invalid-url"])
    #expect(url("ftp://example.com/x") == ["invalid-url"])
    #expect(url("file://relative") == ["invalid-url"])
    #expect(url("https:///nohost") == ["invalid-url"])

    func store(_ s: String) -> (String?, [String]) {
      let (c, d) = Self.load(Self.minimal("integrations: {configStore: {\(s)}}"))
      return (c?.integrations.configStore?.url, d.map(\.code))
    }
    #expect(store("url: \"sqlite:///var/lib/y/r.sqlite\"").0 == "sqlite:///var/lib/y/r.sqlite")
    #expect(store("url: \"sqlite:/var/lib/y/r.sqlite\"").0 == "sqlite:///var/lib/y/r.sqlite")
    #expect(store("url: \"sqlite://r.sqlite\"").1 == ["invalid-url"])
    #expect(store("url: \"postgres://u@db:5432/ytempire\", password: {env: PGPASSWORD}").1 == [])
    #expect(store("url: \"postgres://u:pw@db:5432/ytempire\", password: {env: PGPASSWORD}").1.contains("mutually-exclusive"))
    #expect(store("url: \"postgres://u@db:5432/\"").1 == ["invalid-url"])
    #expect(store("url: \"postgres://db:5432/ytempire\"").1 == ["invalid-url"])
    #expect(store("url: \"postgresql://u@db/ytempire?sslmode=verify-full\"").1 == [])
    #expect(store("url: \"postgres://u@db/ytempire?sslmode=prefer\"").1 == ["invalid-url"])
    #expect(store("url: \"postgres://u@db/ytempire?connect_timeout=5\"").1 == ["invalid-url"])
    #expect(store("url: \"sqlite:r.sqlite\", password: {env: P}").1 == ["invalid-value"])
    #expect(store("url: \"mysql://u:hunter2@db/x\"").1 == ["invalid-url"])
    #expect(
      !Self.load(Self.minimal("integrations: {configStore: {url: \"mysql://u:hunter2@db/x\"}}")).diagnostics[0].message.contains("hunter2"))

    let (cw, dw) = Self.load(
      Self.minimal(
        """
        policy:
          syncWindows:
            - {kind: allow, schedule: "*/30 9-17 * * mon-fri", duration: 30m, applies: [Chanel], names: [a, a]}
        """))
    #expect(cw == nil)
    #expect(dw.map(\.code) == ["invalid-enum", "duplicate-entry"], "\(dw.map(\.rendered))")
    #expect(dw[0].message.contains("did you mean 'Channel'"))

    let (cv, dv) = Self.load(
      Self.minimal("source: {url: /srv/e, verify: {mode: head}}")
        .replacingOccurrences(of: "source:\n  url: https://git.example.com/acme/empire.git\n", with: ""))
    #expect(cv == nil)
    #expect(dv.map(\.code) == ["missing-field"])

    let (_, dk) = Self.load(Self.minimal().replacingOccurrences(of: "kind: ReconcilerConfig", with: "kind: Channel"))
    #expect(dk.map(\.code) == ["unknown-kind"])
    let (_, dk2) = Self.load(Self.minimal().replacingOccurrences(of: "kind: ReconcilerConfig", with: "kind: ReconcilerConfg"))
    #expect(dk2.first?.message.contains("did you mean 'ReconcilerConfig'") == true)

    let (_, dl) = Self.load(Self.minimal("serve: {listen: \"[::1]:9400\"}"))
    #expect(dl.isEmpty)
    let (_, dl2) = Self.load(Self.minimal("serve: {listen: \"0.0.0.0:70000\"}"))
    #expect(dl2.map(\.code) == ["invalid-value"])
  }

  @Test("files that are empty, unreadable, YAML-broken or hold two documents")
  func badFiles() {
    #expect(Self.load("").diagnostics.map(\.code) == ["missing-field"])
    #expect(Self.load("a: [").diagnostics.map(\.code) == ["yaml-syntax"])
    #expect(Self.load(Self.minimal() + "\n---\n" + Self.minimal()).diagnostics.map(\.code) == ["invalid-value"])
    #expect(Self.load("source: {url: a}\nsource: {url: b}\n").diagnostics.map(\.code).contains("duplicate-key"))
    let missing = ReconcilerConfigLoader.load(path: "/nonexistent/ytempire.yaml")
    #expect(missing.config == nil)
    #expect(missing.diagnostics.map(\.code) == ["file-unreadable"])
    #expect(missing.diagnostics.first?.file == "/nonexistent/ytempire.yaml")
  }

  // MARK: Secret resolution

  static func ref(_ s: SecretRef.Source) -> SecretRef {
    SecretRef(source: s, mark: SourceMark(file: "ytempire.yaml", line: 3, column: 5), path: "integrations.vault.token")
  }

  static func failure(_ r: SecretResolver, _ s: SecretRef.Source) -> SecretError? {
    do {
      _ = try r.resolve(ref(s))
      return nil
    } catch {
      return error
    }
  }

  @Test("env and value references; unset or empty variables fail without showing anything secret")
  func resolveEnvAndValue() throws {
    let r = SecretResolver(environment: ["VAULT_TOKEN": "hvs.s3cr3t-value", "EMPTY": ""])
    #expect(try r.resolve(Self.ref(.env("VAULT_TOKEN"))) == "hvs.s3cr3t-value")
    #expect(try r.resolve(Self.ref(.value("literal-s3cr3t"))) == "literal-s3cr3t")
    let unset = try #require(Self.failure(r, .env("NOPE")))
    #expect(unset.reason == .envUnset)
    #expect(unset.description == "integrations.vault.token: environment variable NOPE is not set")
    let empty = try #require(Self.failure(r, .env("EMPTY")))
    #expect(empty.description.contains("EMPTY is empty"))
    // Loading never resolves: a configuration naming unset variables loads.
    let (c, d) = Self.load(Self.minimal("secrets: {a: {env: YTEMPIRE_TEST_SURELY_UNSET}}"))
    #expect(c != nil && d.isEmpty)
    #expect(!"\(Self.ref(.value("literal-s3cr3t")))".contains("s3cr3t"))
  }

  @Test("file references: regular files only, 64 KiB at most, one trailing newline trimmed")
  func resolveFiles() throws {
    let secret = "file-s3cr3t-value"
    let dir = try Support.tempDir([
      "nl": secret + "\n",
      "crlf": secret + "\r\n",
      "two": secret + "\n\n",
      "plain": secret,
      "empty": "\n",
      "max": String(repeating: "k", count: SecretResolver.maxFileBytes),
      "big": String(repeating: "k", count: SecretResolver.maxFileBytes + 1),
    ])
    defer { Support.cleanup(dir) }
    let r = SecretResolver(environment: [:])
    func path(_ n: String) -> String { dir.appendingPathComponent(n).path }
    #expect(try r.resolve(Self.ref(.file(path("nl")))) == secret)
    #expect(try r.resolve(Self.ref(.file(path("crlf")))) == secret)
    #expect(try r.resolve(Self.ref(.file(path("two")))) == secret + "\n")
    #expect(try r.resolve(Self.ref(.file(path("plain")))) == secret)
    #expect(try r.resolve(Self.ref(.file(path("max")))).utf8.count == SecretResolver.maxFileBytes)

    // A symlink to a regular file is followed.
    try FileManager.default.createSymbolicLink(atPath: path("link"), withDestinationPath: path("nl"))
    #expect(try r.resolve(Self.ref(.file(path("link")))) == secret)

    var errors: [SecretError] = []
    let big = try #require(Self.failure(r, .file(path("big"))))
    #expect(big.reason == .fileTooLarge)
    errors.append(big)
    let missing = try #require(Self.failure(r, .file(path("missing"))))
    #expect(missing.reason == .fileUnreadable)
    #expect(missing.description == "integrations.vault.token: secret file \(path("missing")) does not exist")
    errors.append(missing)
    let empty = try #require(Self.failure(r, .file(path("empty"))))
    #expect(empty.reason == .invalidContent)
    errors.append(empty)
    let dirErr = try #require(Self.failure(r, .file(dir.path)))
    #expect(dirErr.reason == .notRegularFile)
    let device = try #require(Self.failure(r, .file("/dev/zero")))
    #expect(device.reason == .notRegularFile)
    #expect(device.description.contains("is a device"))

    // A FIFO is refused at once (no writer, no wait), also behind a symlink.
    try Processes.run(["mkfifo", path("fifo")])
    try FileManager.default.createSymbolicLink(atPath: path("fifo-link"), withDestinationPath: path("fifo"))
    let started = Date()
    for p in [path("fifo"), path("fifo-link")] {
      let fifo = try #require(Self.failure(r, .file(p)))
      #expect(fifo.reason == .notRegularFile)
      #expect(fifo.description.contains("is a FIFO"))
      errors.append(fifo)
    }
    #expect(Date().timeIntervalSince(started) < 60)  // a FIFO read would block forever

    for e in errors + [dirErr, device] {
      #expect(e.path == "integrations.vault.token")
      #expect(e.description.hasPrefix("integrations.vault.token: secret file "))
      #expect(!e.description.contains(secret))
      #expect(!e.description.contains("kkkk"))
    }
  }

  // MARK: The JSON Schema

  @Test("schemas/reconcilerconfig.schema.json agrees: the example and the sandbox config pass, broken ones fail")
  func jsonSchemaAgrees() throws {
    let script = Support.packageRoot.appendingPathComponent("scripts/check_schemas.py").path
    let example = Support.packageRoot.appendingPathComponent("examples/ytempire.yaml").path
    let sandbox = SandboxConfigWriter.render(
      baseURL: "http://127.0.0.1:8765", credentials: SandboxCredentials(), channels: [],
      sourceDir: "/srv/empire", stateDir: "/tmp/ytempire-sandbox")
    let token = "ghp_pastedTOKENvalue0123456789"
    let dir = try Support.tempDir([
      "sandbox.yaml": sandbox,
      "bare.yaml": Self.minimal("secrets: {a: \(token)}"),
      "budget.yaml": Self.minimal("serve: {driftBudget: 10}"),
      "unknown.yaml": Self.minimal("polcy: {}"),
    ])
    defer { Support.cleanup(dir) }
    let ok = try Processes.run(
      ["python3", script, "--config", example, "--config", dir.appendingPathComponent("sandbox.yaml").path], check: false)
    #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
    for name in ["bare.yaml", "budget.yaml", "unknown.yaml"] {
      let path = dir.appendingPathComponent(name).path
      let r = try Processes.run(["python3", script, "--config", path], check: false)
      #expect(r.status == 1, "\(name): \(r.stdout)")
      #expect(r.stdout.hasPrefix(path + ":6:"), "\(name): \(r.stdout)")
      #expect(!r.stdout.contains(token))
      // ytempire validate rejects the same files.
      #expect(ReconcilerConfigLoader.load(path: path).config == nil)
    }
  }

  // MARK: The binary

  @Test("ytempire validate --config: text and json, alone and with the manifests")
  func validateCommand() throws {
    let example = Support.packageRoot.appendingPathComponent("examples/ytempire.yaml").path
    let (s1, o1, e1) = try Support.run(["validate", "--config", example])
    #expect(s1 == 0, "\(e1)")
    #expect(o1 == "\(example): reconciler configuration: valid\n")
    #expect(e1.isEmpty)

    let dir = try Support.tempDir([
      "ytempire.yaml": Self.minimal("secrets: {bad: ghp_pasted_token_value}\nserve: {drftInterval: 1h}"),
      "repo/c.yaml": Support.channel("a"),
    ])
    defer { Support.cleanup(dir) }
    let (s2, o2, e2) = try Support.run(["validate", "--config", "ytempire.yaml"], cwd: dir)
    #expect(s2 == 1)
    #expect(
      e2 == """
        ytempire.yaml:6:16: error: secrets.bad must be a secret reference, not a plain string: write {env: NAME}, {file: PATH} or {value: "…"} (the text written here is not repeated, in case it is a secret) [invalid-secret-ref]
        ytempire.yaml:7:9: error: unknown field 'drftInterval' in serve (did you mean 'driftInterval'?) [unknown-field]

        """)
    #expect(!e2.contains("ghp_pasted"))
    #expect(o2 == "ytempire.yaml: reconciler configuration: 2 errors\n")

    // With a PATH, one report for both; the manifests are still checked.
    let (s3, o3, _) = try Support.run(["validate", "repo", "--config", "ytempire.yaml", "--output", "json"], cwd: dir)
    #expect(s3 == 1)
    let obj = try #require(try JSONSerialization.jsonObject(with: Data(o3.utf8)) as? [String: Any])
    #expect(obj["valid"] as? Bool == false)
    #expect(obj["files"] as? Int == 2)
    #expect((obj["resources"] as? [String: Int])?["Channel"] == 1)
    let diags = try #require(obj["diagnostics"] as? [[String: Any]])
    #expect(diags.compactMap { $0["code"] as? String } == ["invalid-secret-ref", "unknown-field"])
    #expect(diags.allSatisfy { $0["file"] as? String == "ytempire.yaml" })

    // A valid configuration and valid manifests: both summaries, exit 0.
    try Data(Self.minimal().utf8).write(to: dir.appendingPathComponent("ytempire.yaml"))
    let (s4, o4, e4) = try Support.run(["validate", "repo", "--config", "ytempire.yaml"], cwd: dir)
    #expect(s4 == 0, "\(e4)")
    #expect(o4 == "ytempire.yaml: reconciler configuration: valid\nrepo: 1 resource in 1 file (1 Channel): valid\n")

    // Valid configuration, broken manifests: exit 1.
    try Data(Support.channel("b").replacingOccurrences(of: "active: true", with: "active: yes").utf8)
      .write(to: dir.appendingPathComponent("repo/c.yaml"))
    let (s5, _, e5) = try Support.run(["validate", "repo", "--config", "ytempire.yaml"], cwd: dir)
    #expect(s5 == 1)
    #expect(e5.contains("repo/c.yaml:7:11: error:"))

    // A --config file inside PATH is not read as a manifest too.
    try Data(Support.channel("b").utf8).write(to: dir.appendingPathComponent("repo/c.yaml"))
    try Data(Self.minimal().utf8).write(to: dir.appendingPathComponent("repo/ytempire.yaml"))
    let (s7, o7, e7) = try Support.run(["validate", ".", "--config", "ytempire.yaml"], cwd: dir.appendingPathComponent("repo"))
    #expect(s7 == 0, "\(e7)")
    #expect(o7 == "ytempire.yaml: reconciler configuration: valid\n.: 1 resource in 1 file (1 Channel): valid\n")
    try Data(Support.channel("b").replacingOccurrences(of: "active: true", with: "active: yes").utf8)
      .write(to: dir.appendingPathComponent("repo/c.yaml"))

    // Without --config, validate behaves as before (PATH defaults to the current directory).
    let (s6, o6, _) = try Support.run(["validate"], cwd: dir.appendingPathComponent("repo"))
    #expect(s6 == 1)
    #expect(o6.hasPrefix(".: "))
  }
}
