import ArgumentParser
import Basics
import Foundation
import Sandbox

struct SandboxCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sandbox",
    abstract: "Serve local emulators of YouTube (with OAuth), n8n, Cloudflare and Vault on one address.",
    discussion: """
      Every API answers under its real path: /youtube/v3, /token, /api/v1 (n8n), /client/v4 (Cloudflare), \
      /v1 (Vault); /_sandbox is the admin API. --seed-from creates the repository's channels (with branding \
      that differs from it), zones and keys; --write-config writes a ytempire.yaml pointing at the sandbox. \
      Runs until SIGINT or SIGTERM. See docs/sandbox.md.
      """
  )

  @Option(name: .long, help: "Address to listen on (HOST:PORT; port 0 picks a free one).")
  var listen: String = "127.0.0.1:8765"

  @Option(name: .customLong("seed-from"), help: "Desired-state directory to seed the emulators from.")
  var seedFrom: String?

  @Option(name: .customLong("write-config"), help: "Write a ytempire.yaml for this sandbox to FILE.")
  var writeConfig: String?

  @Option(name: .long, help: "SQLite file keeping the emulated state across restarts (default: in memory).")
  var state: String?

  @Option(name: .long, help: "Fault rules, e.g. 'youtube:/youtube/v3/channels=latency:200ms;cloudflare:*=error:0.5:503'.")
  var faults: String?

  @Option(name: .long, help: "Seed of the fault injection's random choices.")
  var seed: UInt64 = 0

  @Option(name: .customLong("state-dir"), help: "stateDir written into --write-config (default: .ytempire-sandbox).")
  var stateDir: String = ".ytempire-sandbox"

  func parsedListen() throws -> (String, Int) {
    do throws(HostPort.ParseError) {
      let hp = try HostPort.parse(listen, allowingPortZero: true)
      return (hp.host, hp.port)
    } catch .missingHost {
      throw ValidationError("--listen must name a host, e.g. 127.0.0.1:8765")
    } catch {
      throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:8765 (\(error))")
    }
  }

  @Flag(
    name: .customLong("allow-non-loopback"),
    help: "Listen on a non-loopback address (the admin API and the credentials are then reachable from the network).")
  var allowNonLoopback = false

  func validate() throws {
    let (host, _) = try parsedListen()
    if !HostPort.isLoopback(host) && !allowNonLoopback {
      throw ValidationError(
        "--listen \(host): the sandbox's admin API is unauthenticated and serves its credentials; listen on 127.0.0.1 (or pass --allow-non-loopback to expose it anyway)"
      )
    }
    if let writeConfig {
      var st = stat()
      if lstat(writeConfig, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
        throw ValidationError(
          "--write-config \(writeConfig) exists and is not a regular file (a link, a directory or a device); refusing to replace it")
      }
    }
  }

  func run() throws {
    let command = self
    do {
      try AsyncBridge.wait { try await command.serve() }
    } catch let error as ExitCode {
      throw error
    } catch {
      Terminal.write("error: \(error)\n", to: .standardError)
      throw ExitCode(1)
    }
  }

  func serve() async throws {
    let (host, port) = try parsedListen()
    var o = SandboxOptions()
    o.host = host
    o.port = port
    o.seedFrom = seedFrom
    o.statePath = state
    o.faults = faults
    o.faultSeed = seed
    o.stopOnSignals = true
    o.logLevel = .notice
    if !HostPort.isLoopback(host) {
      Terminal.write(
        "warning: the sandbox listens on \(host), not a loopback address: its unauthenticated admin API and credentials are reachable from the network\n",
        to: .standardError)
    }
    let sb = try await SandboxServer.start(o)
    let source = seedFrom.map { ($0 as NSString).standardizingPath }.map {
      $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0
    }
    var out = """
      ytempire sandbox listening on \(sb.baseURL)
        YouTube Data API   \(sb.youtubeURL)
        OAuth token        \(sb.tokenURL)
        n8n                \(sb.n8nURL)  (API under /api/v1)
        Cloudflare         \(sb.cloudflareURL)
        Vault              \(sb.vaultURL)  (API under /v1)
        admin              \(sb.adminURL)
      credentials (sandbox-only, put them in ytempire.yaml as {value: …}):
        youtube clientId      \(sb.credentials.youtubeClientId)
        youtube clientSecret  \(sb.credentials.youtubeClientSecret)
        n8n apiKey            \(sb.credentials.n8nAPIKey)
        cloudflare token      \(sb.credentials.cloudflareToken)
        vault token           \(sb.credentials.vaultToken)

      """
    for c in sb.seed.channels {
      out += "  secret \(c.credentials) (channel \(c.name), \(c.channelId))  refresh token \(c.refreshToken)\n"
    }
    if let writeConfig {
      let yaml = SandboxConfigWriter.render(
        baseURL: sb.baseURL, credentials: sb.credentials, channels: sb.seed.channels,
        sourceDir: source, stateDir: stateDir)
      do {
        // Owner-only: it holds the sandbox's credentials as literal secrets.
        try writePrivateFile(writeConfig, Array(yaml.utf8))
      } catch {
        await sb.stop()
        throw SandboxError(description: "--write-config \(writeConfig): \(error)")
      }
      out += "wrote \(writeConfig)\n"
    }
    out += "press Ctrl-C to stop\n"
    Terminal.write(out, to: .standardOutput)
    await sb.wait()
    Terminal.write("sandbox stopped\n", to: .standardOutput)
  }
}
