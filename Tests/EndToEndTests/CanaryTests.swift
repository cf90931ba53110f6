import Foundation
import Sandbox
import Service
import TestSupport
import Testing

/// Every secret is a canary; no canary may appear in any output, state file, file name or
/// status-branch file. The one exception, by design: the short-lived OAuth ACCESS tokens the
/// YouTube driver caches in state.sqlite (they are issued by the sandbox as `ya29.sandbox-…`,
/// so they are not canaries here); refresh tokens, the client secret and every other
/// configured secret must never be written.
@Suite("end to end: secrets")
struct CanaryTests {
  @Test("no canary secret in stdout, stderr, the state directory, file names or the status branch")
  func canaries() async throws {
    let tag = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    func canary(_ what: String) -> String { "CANARY-\(what)-\(tag)" }
    var creds = SandboxCredentials()
    creds.youtubeClientId = canary("client-id")
    creds.youtubeClientSecret = canary("client-secret")
    creds.n8nAPIKey = canary("n8n")
    creds.cloudflareToken = canary("cloudflare")
    creds.vaultToken = canary("vault")
    let refresh = [
      "tech-daily": canary("refresh-tech"), "finance-focus": canary("refresh-finance"),
      "science-simplified": canary("refresh-science"),
    ]
    var canaries = [creds.youtubeClientId, creds.youtubeClientSecret, creds.n8nAPIKey, creds.cloudflareToken, creds.vaultToken]
    canaries += refresh.values
    let unused = [canary("unused-openai"), canary("unused-env"), canary("unused-file")]
    canaries += unused

    try await Empire.with(credentials: creds) { e in
      // The sandbox accepts the canary refresh tokens (and no longer the seeded ones).
      var tokens: [String: String] = [:]
      for (name, t) in refresh { tokens[t] = e.channelId(name) }
      let (code, body) = try await e.admin("PUT", "/state/youtube/refreshTokens", tokens)
      #expect(code == 200 || code == 204, "\(String(describing: body))")

      // Secrets as value, env and file references; the secret files live outside the state directory.
      let secretsDir = e.tmp.sub("secrets")
      try FileManager.default.createDirectory(atPath: secretsDir, withIntermediateDirectories: true)
      try refresh["science-simplified"]!.write(toFile: secretsDir + "/science", atomically: true, encoding: .utf8)
      try unused[2].write(toFile: secretsDir + "/unused", atomically: true, encoding: .utf8)
      let env = [
        "YTE_CLIENT_SECRET": creds.youtubeClientSecret, "YTE_FINANCE_TOKEN": refresh["finance-focus"]!,
        "YTE_UNUSED": unused[1],
      ]
      var cfg = e.configText
      cfg = cfg.replacingOccurrences(
        of: "clientSecret: {value: \"\(creds.youtubeClientSecret)\"}", with: "clientSecret: {env: YTE_CLIENT_SECRET}")
      var secretsBlock = "secrets:\n"
      secretsBlock += "  youtube-tech-daily: {value: \"\(refresh["tech-daily"]!)\"}\n"
      secretsBlock += "  youtube-finance-focus: {env: YTE_FINANCE_TOKEN}\n"
      secretsBlock += "  youtube-science-simplified: {file: \"\(secretsDir)/science\"}\n"
      secretsBlock += "  openai: {value: \"\(unused[0])\"}\n"
      secretsBlock += "  elevenlabs: {env: YTE_UNUSED}\n"
      secretsBlock += "  anthropic: {file: \"\(secretsDir)/unused\"}\n"
      let lines = cfg.components(separatedBy: "\n")
      let start = try #require(lines.firstIndex { $0.hasPrefix("secrets:") })
      var end = start + 1
      while end < lines.count && lines[end].hasPrefix("  ") { end += 1 }
      cfg = (lines[..<start] + [secretsBlock] + lines[end...]).joined(separator: "\n")
      #expect(!cfg.contains("sandbox-refresh"))
      #expect(cfg.contains("clientSecret: {env: YTE_CLIENT_SECRET}"))
      try e.writeConfig(cfg)

      var outputs: [(String, String)] = []
      func run(_ args: [String], expect: Int32 = 0) async throws {
        let r = try await e.run(args, env: env)
        #expect(r.status == expect, "\(args): \(r)")
        outputs.append(("\(args.joined(separator: " ")) stdout", r.stdout))
        outputs.append(("\(args.joined(separator: " ")) stderr", r.stderr))
      }
      let planFile = e.tmp.sub("plan.json")
      try await run(["validate", e.repo.path])
      try await run(["plan", "--output", "text"])
      try await run(["plan", "--output", "json"])
      try await run(["plan", "--output", "markdown", "--out", planFile])
      try await run(["apply", planFile, "--auto-approve"])
      try await run(["plan", "--detailed-exitcode"])
      try await run(["status"])
      try await run(["status", "--output", "json"])
      // The audit log: its rows are in state.sqlite (scanned below), and what `audit` prints.
      try await run(["audit"])
      try await run(["audit", "--output", "json"])
      try await run(["audit", "verify"])
      let audit = try E2E.object(outputs.first { $0.0 == "audit --output json stdout" }?.1 ?? "")
      #expect((audit["total"] as? Int ?? 0) > 0, "the apply left audit entries to scan: \(audit)")
      let stillWorks = outputs.first { $0.0 == "plan --detailed-exitcode stdout" }?.1 ?? ""
      #expect(stillWorks.contains("No changes"), "\(stillWorks)")
      outputs.append(("plan.json", try String(contentsOfFile: planFile, encoding: .utf8)))

      // serve: its logs (text and JSON) and every endpoint, with the webhook secrets as canaries too.
      let hookSecret = canary("github-webhook")
      let gitlabToken = canary("gitlab-token")
      canaries += [hookSecret, gitlabToken]
      let served = try Served(e, interval: "1h")
      try e.writeConfig(
        e.configText
          .replacingOccurrences(
            of: "github: {secret: {value: \"\(Served.webhookSecret)\"}}",
            with: "github: {secret: {env: YTE_HOOK}}\n    gitlab: {token: {value: \"\(gitlabToken)\"}}"))
      for format in ["text", "json"] {
        let p = try e.spawn(["serve", "--log-format", format], env: env.merging(["YTE_HOOK": hookSecret]) { $1 }, log: "serve-\(format)")
        var port = 0
        try await served.eventually("serve listening") {
          let log = served.log("serve-\(format)")
          if let r = log.range(of: "address=127.0.0.1:") ?? log.range(of: "\"address\":\"127.0.0.1:") {
            port = Int(log[r.upperBound...].prefix { $0.isNumber }) ?? 0
          }
          return port > 0
        }
        try await served.eventually("a reconcile logged") { served.log("serve-\(format)").contains("reconciled") }
        let body = #"{"ref":"refs/heads/main"}"#
        let sig = Service.WebhookGate.githubSignature(secret: Array(hookSecret.utf8), body: Array(body.utf8))
        for (method, path, headers) in [
          ("GET", "/", [String: String]()), ("GET", "/metrics", [:]), ("GET", "/healthz", [:]), ("GET", "/readyz", [:]),
          ("POST", "/hooks/github", ["X-Hub-Signature-256": sig, "X-GitHub-Event": "push", "X-GitHub-Delivery": "c-\(format)"]),
          (
            "POST", "/hooks/github",
            [
              "X-Hub-Signature-256": "sha256=" + String(repeating: "0", count: 64), "X-GitHub-Event": "push",
              "X-GitHub-Delivery": "f-\(format)",
            ]
          ),
          ("POST", "/hooks/gitlab", ["X-Gitlab-Token": gitlabToken, "X-Gitlab-Event": "Push Hook"]),
          ("POST", "/hooks/gitlab", ["X-Gitlab-Token": "wrong", "X-Gitlab-Event": "Push Hook"]),
        ] {
          let (code, text) = try await served.http(port, method, path, headers: headers, body: method == "POST" ? body : nil)
          #expect(code > 0)
          outputs.append(("serve \(format) \(method) \(path) \(code)", text))
        }
        #expect(try await served.stop(p) == 0)
        outputs.append(("serve \(format) log", served.log("serve-\(format)")))
        outputs.append(("serve \(format) stdout", (try? String(contentsOfFile: e.tmp.sub("serve-\(format).out"), encoding: .utf8)) ?? ""))
      }

      try expectNoCanary(canaries, in: outputs, e)
    }
  }

  /// Checks that no canary is in `outputs`, in the name or bytes of any file under the state
  /// directory (SQLite files, WAL, mirror, status copy), or in any file of the status branch.
  func expectNoCanary(
    _ canaries: [String], in outputs: [(String, String)], _ e: Empire,
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    var outputs = outputs
    var files: [(String, [UInt8])] = []
    let fm = FileManager.default
    let walker = fm.enumerator(atPath: e.stateDir)
    while let rel = walker?.nextObject() as? String {
      outputs.append(("file name", rel))
      let full = e.stateDir + "/" + rel
      var st = stat()
      guard lstat(full, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
      files.append((rel, Array(fm.contents(atPath: full) ?? Data())))
    }
    #expect(files.contains { $0.0 == "state.sqlite" }, sourceLocation: sourceLocation)
    let listed = try e.repo.git("ls-tree", "-r", "--name-only", "ytempire/status")
    for rel in listed.split(separator: "\n") {
      outputs.append(("status branch \(rel)", try e.repo.git("show", "ytempire/status:\(rel)")))
    }
    // The status branch's commit messages too.
    outputs.append(("status branch log", try e.repo.git("log", "--format=%B", "ytempire/status")))
    #expect(listed.contains("status/channel/tech-daily.yaml"), sourceLocation: sourceLocation)
    for c in canaries {
      for (location, text) in outputs { #expect(!text.contains(c), "\(c) in \(location)", sourceLocation: sourceLocation) }
      let needle = Array(c.utf8)
      for (rel, bytes) in files {
        #expect(!contains(bytes, needle), "\(c) in \(e.stateDir)/\(rel)", sourceLocation: sourceLocation)
      }
    }
  }

  @Test("a token endpoint that echoes the request (client id, client secret, refresh token) leaks none of them into any output")
  func echoingTokenEndpoint() async throws {
    let tag = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    var creds = SandboxCredentials()
    creds.youtubeClientId = "CANARY-client-id-\(tag)"
    creds.youtubeClientSecret = "CANARY-client-secret-\(tag)"
    try await Empire.with(credentials: creds) { e in
      let echo = try await HTTPTestServer.start()
      echo.route("/token", .echoBody(status: 400))
      let from = "tokenEndpoint: \"\(e.sandbox.baseURL)/token\""
      #expect(e.configText.contains(from))
      // The client id from the environment, the secret from a file: every kind of reference.
      let secretFile = e.tmp.sub("client-secret")
      try creds.youtubeClientSecret.write(toFile: secretFile, atomically: true, encoding: .utf8)
      try e.writeConfig(
        e.configText
          .replacingOccurrences(of: from, with: "tokenEndpoint: \"\(echo.baseURL)/token\"")
          .replacingOccurrences(of: "clientId: {value: \"\(creds.youtubeClientId)\"}", with: "clientId: {env: YTE_CLIENT_ID}")
          .replacingOccurrences(
            of: "clientSecret: {value: \"\(creds.youtubeClientSecret)\"}", with: "clientSecret: {file: \"\(secretFile)\"}"))
      #expect(!e.configText.contains(creds.youtubeClientId))
      let refresh = e.configText.components(separatedBy: "\n").filter { $0.contains("youtube-") && $0.contains("value:") }
        .compactMap { $0.split(separator: "\"").dropFirst().first.map(String.init) }
      #expect(!refresh.isEmpty)
      let env = ["YTE_CLIENT_ID": creds.youtubeClientId]
      var outputs: [(String, String)] = []
      let planFile = e.tmp.sub("plan.json")
      for args in [
        ["plan"], ["plan", "--output", "json"], ["plan", "--output", "markdown", "--out", planFile], ["apply", planFile, "--auto-approve"],
        ["apply", "--auto-approve"], ["status"], ["status", "--output", "json"],
      ] {
        let r = try await e.run(args, env: env)
        #expect(r.status == 0 || r.status == 1, "\(args): \(r)")
        outputs += [("\(args) stdout", r.stdout), ("\(args) stderr", r.stderr)]
      }
      outputs.append(("plan.json", (try? String(contentsOfFile: planFile, encoding: .utf8)) ?? ""))
      // The echo reached the outputs (masked), so the test does look at the path that leaked.
      #expect(echo.hits("/token") > 0)
      #expect(outputs.contains { $0.1.contains("could not use client_id=[redacted]") }, "\(outputs.map(\.1).joined().prefix(3000))")
      // As given, and as a form body spells them (the refresh tokens hold slashes).
      let secrets = [creds.youtubeClientId, creds.youtubeClientSecret] + refresh
      let formSafe = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
      try expectNoCanary(secrets + secrets.compactMap { $0.addingPercentEncoding(withAllowedCharacters: formSafe) }, in: outputs, e)
      try await echo.shutdown()
    }
  }

  @Test("a refresh token and a client secret the token endpoint rejects are not echoed in any output")
  func rejectedSecretsAreNotEchoed() async throws {
    let tag = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    let badToken = "CANARY-revoked-\(tag)"
    try await Empire.with(
      config: { text in
        text.replacingOccurrences(of: "\"1//sandbox-refresh-finance-focus\"", with: "\"\(badToken)\"")
      },
      { e in
        #expect(e.configText.contains(badToken))
        var outputs: [String] = []
        for args in [
          ["plan"], ["plan", "--output", "json"], ["plan", "--output", "markdown"], ["apply", "--auto-approve"], ["status"],
          ["status", "--output", "json"],
        ] {
          let r = try await e.run(args)
          outputs += [r.stdout, r.stderr]
          if args == ["apply", "--auto-approve"] { #expect(r.status == 0 || r.status == 1, "\(r)") }
        }
        #expect(outputs.joined().contains("finance-focus"))
        for o in outputs { #expect(!o.contains(badToken), "\(o)") }
        let status = try e.statusFile("status/channel/finance-focus.yaml")
        #expect(status.condition("Ready")?.status != "True")
        // Now the client secret is wrong: every channel's token refresh fails.
        let badSecret = "CANARY-bad-secret-\(tag)"
        try e.writeConfig(
          e.configText.replacingOccurrences(
            of: "clientSecret: {value: \"sandbox-client-secret\"}", with: "clientSecret: {value: \"\(badSecret)\"}"))
        #expect(e.configText.contains(badSecret))
        for args in [["plan", "--refresh", "all"], ["apply", "--auto-approve", "--refresh", "all"]] {
          let r = try await e.run(args)
          #expect(!r.stdout.contains(badSecret) && !r.stderr.contains(badSecret), "\(r)")
        }
      })
  }

  @Test("a git token (source.auth.token, and one pasted into the URL's query) is in no output, state file, mirror or lock file name")
  func gitTokenCanary() async throws {
    let tag = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    let token = "CANARY-git-token-\(tag)"
    let inURL = "CANARY-url-query-\(tag)"
    try await Empire.with { e in
      let served = e.tmp.sub("served")
      let server = try GitHTTPServer.serving(e.repo.path, at: served, token: token)
      defer { server.stop() }
      let url = server.url("empire.git") + "?token=\(inURL)"
      let lines = e.configText.components(separatedBy: "\n")
      let at = try #require(lines.firstIndex { $0.hasPrefix("  url: ") })
      var cfg = lines
      cfg[at] = "  url: \"\(url)\"\n  auth: {token: {env: YTE_GIT}}"
      try e.writeConfig(cfg.joined(separator: "\n"))
      let env = ["YTE_GIT": token, "YTEMPIRE_GIT_TOKEN": token]
      var outputs: [(String, String)] = []
      for args in [["plan"], ["plan", "--output", "json"], ["apply", "--auto-approve"], ["status", "--output", "json"]] {
        let r = try await e.run(args, env: env)
        #expect(r.status == 0, "\(args): \(r)")
        outputs += [("\(args) stdout", r.stdout), ("\(args) stderr", r.stderr)]
      }
      // validate --repo with the token from the environment, and a wrong one (the error path).
      for (t, expect) in [(token, Int32(0)), ("CANARY-wrong-\(tag)", Int32(1))] {
        let r = try await Processes.runDetached(
          [E2E.binary, "validate", "--repo", url, "--state-dir", e.tmp.sub("vstate")],
          env: ["YTEMPIRE_GIT_TOKEN": t], check: false)
        #expect(r.status == expect, "\(r.stderr)")
        outputs += [("validate stdout", r.stdout), ("validate stderr", r.stderr)]
      }
      #expect(outputs.contains { $0.1.contains("?[redacted]") }, "the URL is shown, its query redacted")
      var names: [String] = []
      var bytes: [(String, [UInt8])] = []
      for dir in [e.stateDir, e.tmp.sub("vstate")] {
        let walker = FileManager.default.enumerator(atPath: dir)
        while let rel = walker?.nextObject() as? String {
          names.append(rel)
          var st = stat()
          guard lstat(dir + "/" + rel, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
          bytes.append((rel, Array(FileManager.default.contents(atPath: dir + "/" + rel) ?? Data())))
        }
      }
      #expect(names.contains { $0.hasPrefix("git/mirrors/") }, "\(names)")
      for c in [token, inURL] {
        for (location, text) in outputs { #expect(!text.contains(c), "\(c) in \(location)") }
        for n in names { #expect(!n.contains(c), "\(c) in the file name \(n)") }
        for (rel, b) in bytes {
          #expect(!contains(b, Array(c.utf8)), "\(c) in \(rel)")
        }
      }
    }
  }

  func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, hay.count >= needle.count else { return false }
    let first = needle[0]
    var i = 0
    while i <= hay.count - needle.count {
      if hay[i] == first && Array(hay[i..<i + needle.count]) == needle { return true }
      i += 1
    }
    return false
  }
}
