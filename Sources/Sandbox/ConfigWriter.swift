import Foundation

/// Writes the `ytempire.yaml` (DESIGN A5) that points a reconciler at a running sandbox.
public enum SandboxConfigWriter {
  /// YAML double-quoted scalar. YAML 1.2 double-quoted strings take JSON's escapes, so the
  /// JSON quoter serves both.
  static func q(_ s: String) -> String {
    var out = ""
    JSON.quote(s, into: &out)
    return out
  }

  static func absolute(_ p: String) -> String {
    p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
  }

  public static func render(
    baseURL: String, credentials: SandboxCredentials, channels: [SeededChannel],
    sourceDir: String?, stateDir: String
  ) -> String {
    var y = """
      # Written by `ytempire sandbox`: a reconciler configuration for the local sandbox at \(baseURL).
      # The credentials below are the sandbox's own; they are literal `value:` secrets on purpose.
      apiVersion: ytempire.io/v1
      kind: ReconcilerConfig
      source:
        url: \(q(sourceDir ?? "."))
        ref: main
        path: .
        interval: 1m
      status:
        branch: ytempire/status
        push: false
      stateDir: \(q(absolute(stateDir)))
      integrations:
        youtube:
          endpoint: \(q(baseURL + "/youtube/v3"))
          tokenEndpoint: \(q(baseURL + "/token"))
          clientId: {value: \(q(credentials.youtubeClientId))}
          clientSecret: {value: \(q(credentials.youtubeClientSecret))}
        n8n:
          endpoint: \(q(baseURL))
          apiKey: {value: \(q(credentials.n8nAPIKey))}
        cloudflare:
          endpoint: \(q(baseURL + "/client/v4"))
          token: {value: \(q(credentials.cloudflareToken))}
        vault:
          endpoint: \(q(baseURL))
          token: {value: \(q(credentials.vaultToken))}
        configStore:
          url: \(q("sqlite://" + absolute(stateDir) + "/runtime.sqlite"))

      """
    if channels.isEmpty {
      y += "secrets: {}\n"
    } else {
      y += "secrets:                      # each channel's `credentials` name → its sandbox refresh token\n"
      var seen = Set<String>()
      for c in channels.sorted(by: { $0.credentials < $1.credentials }) where seen.insert(c.credentials).inserted {
        y += "  \(c.credentials): {value: \(q(c.refreshToken))}\n"
      }
    }
    y += """
      policy: {prune: true, maxDeletePercent: 30, maxUpdatePercent: 50, minExisting: 10}
      # Events (docs/notifications.md), to the sandbox's own receivers: uncomment to try them.
      # Slack and GitHub are emulated; /hooks/… records whatever it is sent (GET /_sandbox/notifications).
      # notifications:
      #   - {name: ops, type: slack, url: {value: \(q(baseURL + "/slack/services/" + SandboxCredentials.slackHookPath))}}
      #   - {name: pager, type: webhook, url: \(q(baseURL + "/hooks/pager")), secret: {value: "sandbox-hook-secret"}}
      #   - {name: commits, type: github, endpoint: \(q(baseURL + "/github")), repository: acme/empire-config, token: {value: \(q(SandboxCredentials.githubToken))}}

      """
    return y
  }
}
