import ArgumentParser
import Foundation

struct InitCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "init",
    abstract: "Scaffold a desired-state repository: one resource of each kind, .ytempireignore, a CI example.",
    discussion: """
      Writes into DIR (created if missing; existing files are never overwritten): one manifest of \
      each kind under its folder, each starting with a yaml-language-server modeline naming its \
      JSON Schema (installed by `make install` under PREFIX/share/ytempire/schemas, or --schemas), \
      a .ytempireignore, and .github/workflows/ytempire.yml running `ytempire validate` and \
      `ytempire plan --output markdown` on pull requests. The result validates as it is.
      """
  )

  @Argument(help: "The repository directory to create or fill.")
  var dir: String

  @Option(name: .long, help: "Where the JSON Schemas are, for the editor modelines (default: /usr/local/share/ytempire/schemas).")
  var schemas: String = "/usr/local/share/ytempire/schemas"

  func run() throws {
    let fm = FileManager.default
    var isDir: ObjCBool = false
    if fm.fileExists(atPath: dir, isDirectory: &isDir), !isDir.boolValue {
      throw CLIFailure("\(dir) exists and is not a directory")
    }
    try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var written: [String] = []
    var kept: [String] = []
    for (rel, text) in Scaffold.files(schemas: schemas).sorted(by: { $0.key < $1.key }) {
      let path = dir + "/" + rel
      try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      var st = stat()
      if lstat(path, &st) == 0 {
        kept.append(rel)
        continue
      }
      // O_EXCL: never replace, never follow a link planted meanwhile.
      let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
      guard fd >= 0 else { throw CLIFailure("\(path): cannot create: \(String(cString: strerror(errno)))") }
      let bytes = Array(text.utf8)
      let ok = bytes.withUnsafeBufferPointer { p -> Bool in
        var off = 0
        while off < p.count {
          let n = write(fd, p.baseAddress! + off, p.count - off)
          if n <= 0 { return false }
          off += n
        }
        return true
      }
      close(fd)
      guard ok else { throw CLIFailure("\(path): write failed") }
      written.append(rel)
    }
    var out = "Scaffolded \(dir): \(written.count) file\(written.count == 1 ? "" : "s") written"
    if !kept.isEmpty { out += ", \(kept.count) already there and kept (\(kept.joined(separator: ", ")))" }
    out += ".\nNext: edit the manifests (channel ids, credentials, zones), then `ytempire validate \(dir)`.\n"
    Terminal.write(out, to: .standardOutput)
  }
}

/// The files `ytempire init` writes: a small empire with one resource of each kind.
enum Scaffold {
  static func modeline(_ schemas: String, _ kind: String) -> String {
    "# yaml-language-server: $schema=\(schemas)/\(kind).schema.json\n"
  }

  static func files(schemas s: String) -> [String: String] {
    [
      ".ytempireignore": """
      # gitignore syntax: files and folders ytempire does not read as manifests.
      drafts/
      *.draft.yaml
      # The reconciler configuration CI uses is not a manifest.
      ci/

      """,
      "README.md": """
      # Desired state for ytempire

      Each YAML file declares resources (DESIGN kinds: Channel, Schedule, ProviderChain,
      RateLimit, CDNZone, SecurityPolicy, Monitor). `ytempire validate .` checks them;
      `ytempire plan` shows what would change and what it costs in API quota; `ytempire apply`
      converges. Pull requests run both (.github/workflows/ytempire.yml).

      """,
      "ratelimits/youtube-api.yaml": modeline(s, "ratelimit") + """
        # The YouTube Data API's daily quota and what each call costs.
        apiVersion: ytempire.io/v1
        kind: RateLimit
        metadata:
          name: youtube-api
        spec:
          service: youtube
          quota:
            units: 10000
            window: daily
            resetAt: "00:00"
            timezone: America/Los_Angeles
            costs: {videos.insert: 1600, videos.list: 1, channels.list: 1, channels.update: 50,
                    playlists.list: 1, playlists.insert: 50, playlists.update: 50, playlists.delete: 50}
            reservedPerChannel: 3000
            emergencyReserve: 1000
          retry:
            maxRetries: 5
            initialDelay: 1s
            maxDelay: 60s
            multiplier: 2
            jitter: true
            retryOn: {statuses: [429, 500, 502, 503, 504]}
          circuitBreaker: {failureThreshold: 5, successThreshold: 2, timeout: 60s, halfOpenRequests: 1}

        """,
      "providers/llm.yaml": modeline(s, "providerchain") + """
        apiVersion: ytempire.io/v1
        kind: ProviderChain
        metadata:
          name: llm
        spec:
          capability: llm
          providers:
            - name: openai
              model: gpt-4-turbo
              endpoint: https://api.openai.com/v1
              weight: 1.0
              credentials: openai          # a name from ytempire.yaml `secrets:`

        """,
      "channels/my-channel.yaml": modeline(s, "channel") + """
        apiVersion: ytempire.io/v1
        kind: Channel
        metadata:
          name: my-channel
          labels: {network: my-empire}
        spec:
          active: true
          youtube:
            channelId: UCxxxxxxxxxxxxxxxxxxxxxx   # replace with the channel's id
            credentials: youtube-my-channel      # its OAuth refresh token, in ytempire.yaml `secrets:`
          branding:
            title: My Channel
            description: What this channel is about.
            keywords: [example]
            defaultLanguage: en
          playlists:
            - name: highlights
              title: Highlights
              privacy: public
          limits: {videosPerDay: 2, uploadsPerHour: 1, quotaShare: 0.5}
          rateLimit: youtube-api

        """,
      "schedules/analytics-daily.yaml": modeline(s, "schedule") + """
        # An n8n workflow from the built-in analytics-collection template.
        apiVersion: ytempire.io/v1
        kind: Schedule
        metadata:
          name: analytics-daily
        spec:
          workflow: analytics-collection
          trigger:
            cron: "15 0 * * *"
            timezone: America/Los_Angeles
          channelSelector: {matchLabels: {network: my-empire}}
          parameters:
            metrics: [views, estimatedMinutesWatched, likes]
            dimensions: [day, video]
            lookback: 1d
          timeout: 2m
          active: true

        """,
      "cdn/static.yaml": modeline(s, "cdnzone") + """
        apiVersion: ytempire.io/v1
        kind: CDNZone
        metadata:
          name: static
        spec:
          provider: cloudflare
          zone: example.com                    # a zone of your Cloudflare account
          type: pull
          origin: https://origin.example.com
          rules:
            - name: images
              match: ["*.jpg", "*.png", "*.webp"]
              edgeTTL: 30d
              browserTTL: 7d
              cacheLevel: standard
            - name: api
              match: ["/api/*"]
              edgeTTL: 0s
              cacheLevel: bypass

        """,
      "security/policy.yaml": modeline(s, "securitypolicy") + """
        apiVersion: ytempire.io/v1
        kind: SecurityPolicy
        metadata:
          name: policy
        spec:
          keyRotation:
            mount: secret
            path: ytempire
            maxAge: {youtube: 90d, openai: 60d}
          serviceAccounts:
            - name: publisher
              permissions: [videos.upload]
              secrets: [youtube]
          audit: {enabled: true, level: comprehensive}

        """,
      "monitors/quota-usage.yaml": modeline(s, "monitor") + """
        apiVersion: ytempire.io/v1
        kind: Monitor
        metadata:
          name: quota-usage
        spec:
          expr: ytempire_quota_used_units{service="youtube"} > 8000
          for: 15m
          severity: warning
          summary: YouTube quota usage above 8000 units

        """,
      "ci/ytempire.yaml": """
      # The reconciler configuration the CI plan uses (docs/configuration.md). No secrets here:
      # every credential is an environment variable the CI job sets from its secret store.
      apiVersion: ytempire.io/v1
      kind: ReconcilerConfig
      source:
        url: .
      stateDir: .ytempire-ci
      integrations:
        youtube:
          clientId: {env: YT_CLIENT_ID}
          clientSecret: {env: YT_CLIENT_SECRET}
      secrets:
        youtube-my-channel: {env: YT_MY_CHANNEL_REFRESH_TOKEN}

      """,
      ".github/workflows/ytempire.yml": """
      # Validate every change, and show what it would do, on pull requests.
      name: ytempire
      on:
        pull_request:
        push:
          branches: [main]
      jobs:
        validate:
          runs-on: ubuntu-latest
          steps:
            - uses: actions/checkout@v4
            - name: validate
              run: ytempire validate . --output text
            - name: plan
              if: github.event_name == 'pull_request'
              # A read-only ytempire.yaml for CI: credentials from the repository's secrets.
              run: ytempire plan . --config ci/ytempire.yaml --output markdown >> "$GITHUB_STEP_SUMMARY"

      """,
    ]
  }
}
