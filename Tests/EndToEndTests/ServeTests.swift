import Foundation
import Sandbox
import Service
import TestSupport
import Testing

/// `ytempire serve` as a process: a bare repository behind a real `git daemon` as the source,
/// the in-process sandbox as the integrations, the service's HTTP side on 127.0.0.1.
final class Served: Sendable {
  let empire: Empire
  let daemon: GitDaemon
  let bare: GitFixture
  static let webhookSecret = "serve-test-webhook-secret"

  init(_ e: Empire, interval: String, driftInterval: String = "6h") throws {
    empire = e
    bare = try GitFixture.create(at: e.tmp.sub("served/empire.git"), bare: true)
    try e.repo.git("remote", "add", "origin", bare.path)
    try e.repo.git("push", "-q", "origin", "main")
    daemon = try GitDaemon(baseDir: e.tmp.sub("served"))
    var text = e.configText
    text = text.replacingOccurrences(of: "  url: \"\(e.repo.path)\"", with: "  url: \"\(daemon.url("empire.git"))\"")
    text = text.replacingOccurrences(of: "  interval: 1m", with: "  interval: \(interval)")
    text += """
      serve:
        listen: 127.0.0.1:0
        driftInterval: \(driftInterval)
        webhooks:
          github: {secret: {value: "\(Self.webhookSecret)"}}

      """
    try e.writeConfig(text)
  }

  deinit { daemon.stop() }

  /// Commits and pushes to the served repository.
  @discardableResult
  func push(_ message: String, _ files: [String: String?]) throws -> String {
    let c = try empire.commit(message, files)
    try empire.repo.git("push", "-q", "origin", "main")
    return c
  }

  /// Starts `serve` and waits (bounded) until it logs its address; returns the process and port.
  func start(log: String = "serve", format: String = "text", config: String? = nil) async throws -> (Processes.Child, Int) {
    let p = try empire.spawn(["serve", "--log-format", format], log: log, config: config)
    let deadline = Date().addingTimeInterval(90)
    while Date() < deadline {
      let text = (try? String(contentsOfFile: empire.tmp.sub(log + ".err"), encoding: .utf8)) ?? ""
      if let r = text.range(of: "address=127.0.0.1:") ?? text.range(of: "\"address\":\"127.0.0.1:") {
        let digits = text[r.upperBound...].prefix { $0.isNumber }
        if let port = Int(digits), port > 0 { return (p, port) }
      }
      guard p.isRunning else {
        let all =
          ((try? String(contentsOfFile: empire.tmp.sub(log + ".err"), encoding: .utf8)) ?? "")
          + ((try? String(contentsOfFile: empire.tmp.sub(log + ".out"), encoding: .utf8)) ?? "")
        throw E2EFailure("serve exited \(p.terminationStatus):\n\(all)")
      }
      try await Task.sleep(for: .milliseconds(100))
    }
    p.terminate()
    throw E2EFailure("serve did not start listening")
  }

  func log(_ name: String = "serve") -> String { (try? String(contentsOfFile: empire.tmp.sub(name + ".err"), encoding: .utf8)) ?? "" }

  /// `curl` against the service: (status, body).
  func http(_ port: Int, _ method: String, _ path: String, headers: [String: String] = [:], body: String? = nil) async throws -> (
    Int, String
  ) {
    var args = ["curl", "-sS", "-m", "30", "-X", method, "-o", "-", "-w", "\n%{http_code}"]
    for (k, v) in headers { args += ["-H", "\(k): \(v)"] }
    if let body { args += ["--data-binary", body] }
    args.append("http://127.0.0.1:\(port)\(path)")
    let argv = args
    let r = try await offload { try Processes.run(argv, check: false) }
    var lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    let code = Int(lines.popLast() ?? "") ?? 0
    return (code, lines.joined(separator: "\n"))
  }

  /// Waits (bounded, generously: the machine is shared) until `check` holds.
  func eventually(_ what: String, timeout: TimeInterval = 120, _ check: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      if try await check() { return }
      try await Task.sleep(for: .milliseconds(200))
    }
    throw E2EFailure("\(what) did not happen within \(Int(timeout)) s\n--- serve log\n\(log().suffix(4000))")
  }

  func stop(_ p: Processes.Child) async throws -> Int32 {
    kill(p.processIdentifier, SIGTERM)
    try await waitForExit(p, timeout: 120)
    return p.terminationStatus
  }
}

@Suite("serve: the reconciler as a service", .serialized)
struct ServeTests {
  static let original = "Big ideas from physics, space and biology in ten-minute explainers."
  static func pushBody(_ ref: String = "refs/heads/main") -> String {
    #"{"ref":"\#(ref)","after":"0000000000000000000000000000000000000001"}"#
  }

  @Test("a push to the git daemon's repository is applied by polling; /healthz, /readyz, /metrics and the status page answer")
  func pollingApplies() async throws {
    try await Empire.with { e in
      let s = try Served(e, interval: "2s")
      let (p, port) = try await s.start()
      try await s.eventually("the first revision applied") {
        try await e.description(ofChannel: "science-simplified") == ServeTests.original
      }
      #expect(try await s.http(port, "GET", "/healthz").0 == 200)
      #expect(try await s.http(port, "GET", "/readyz").0 == 200)
      let text = try e.channelFile("science-simplified").replacingOccurrences(of: ServeTests.original, with: "Pushed and polled.")
      let commit = try s.push("polled change", ["channels/science-simplified.yaml": text])
      try await s.eventually("the pushed revision applied by polling") {
        try await e.description(ofChannel: "science-simplified") == "Pushed and polled."
      }
      let (code, metrics) = try await s.http(port, "GET", "/metrics")
      #expect(code == 200)
      for name in [
        "ytempire_reconcile_duration_seconds_count", "ytempire_actions_total{kind=\"Channel\",operation=\"update\",result=\"ok\"}",
        "ytempire_quota_used_units{service=\"youtube\"}", "ytempire_quota_remaining_units{service=\"youtube\"}",
        "ytempire_last_applied_timestamp_seconds", "ytempire_source_errors_total", "ytempire_drifted_resources",
        "ytempire_circuit_state{service=\"youtube\"} 0",
      ] {
        #expect(metrics.contains(name), "missing \(name)")
      }
      try await s.eventually("the status page shows the pushed revision") {
        try await s.http(port, "GET", "/").1.contains(String(commit.prefix(12)))
      }
      let page = try await s.http(port, "GET", "/").1
      #expect(page.contains("data-resource=\"Channel/science-simplified\""))
      #expect(try await s.stop(p) == 0)
      #expect(s.log().contains("serve stopped"))
      // The audit log names serve as the actor of the pushed change.
      let audit = try E2E.object(try await e.run("audit", "--output", "json").stdout)
      let update = (audit["entries"] as? [[String: Any]] ?? []).last {
        $0["call"] as? String == "youtube.channels.update" && $0["resource"] as? String == "Channel/science-simplified"
      }
      #expect(
        update?["actor"] as? String == "serve" && update?["revision"] as? String == "main@sha1:\(commit)", "\(String(describing: update))")
    }
  }

  @Test("a signed GitHub push triggers an immediate reconcile; a forged one gets 401 and changes nothing; a second serve is refused")
  func webhooks() async throws {
    try await Empire.with { e in
      let s = try Served(e, interval: "1h")  // polling would take an hour: only the webhook can bring the change
      let (p, port) = try await s.start()
      try await s.eventually("the first revision applied") {
        try await e.description(ofChannel: "science-simplified") == ServeTests.original
      }
      // One reconciler per state directory.
      let second = try await e.run(["serve"])
      #expect(second.status == 1)
      #expect(second.stderr.contains("is in use by another ytempire (pid \(p.processIdentifier))"), "\(second)")

      let text = try e.channelFile("science-simplified").replacingOccurrences(of: ServeTests.original, with: "Brought by a webhook.")
      try s.push("webhook change", ["channels/science-simplified.yaml": text])
      let body = Self.pushBody()
      let forged = WebhookGate.githubSignature(secret: Array("not the secret".utf8), body: Array(body.utf8))
      let (code, answer) = try await s.http(
        port, "POST", "/hooks/github",
        headers: [
          "X-Hub-Signature-256": forged, "X-GitHub-Event": "push", "X-GitHub-Delivery": "forged-1", "Content-Type": "application/json",
        ], body: body)
      #expect(code == 401, "\(answer)")
      let unsigned = try await s.http(
        port, "POST", "/hooks/github", headers: ["X-GitHub-Event": "push", "X-GitHub-Delivery": "forged-2"], body: body)
      #expect(unsigned.0 == 401)
      // Give a wrongly accepted trigger time to act, then check nothing changed.
      try await Task.sleep(for: .seconds(3))
      #expect(try await e.description(ofChannel: "science-simplified") == ServeTests.original)

      let signed = WebhookGate.githubSignature(secret: Array(Served.webhookSecret.utf8), body: Array(body.utf8))
      let ok = try await s.http(
        port, "POST", "/hooks/github",
        headers: [
          "X-Hub-Signature-256": signed, "X-GitHub-Event": "push", "X-GitHub-Delivery": "real-1",
        ], body: body)
      #expect(ok.0 == 202, "\(ok.1)")
      try await s.eventually("the webhook's revision applied") {
        try await e.description(ofChannel: "science-simplified") == "Brought by a webhook."
      }
      // The same delivery again is a replay.
      let replay = try await s.http(
        port, "POST", "/hooks/github",
        headers: [
          "X-Hub-Signature-256": signed, "X-GitHub-Event": "push", "X-GitHub-Delivery": "real-1",
        ], body: body)
      #expect(replay.0 == 409)
      #expect(try await s.stop(p) == 0)
      #expect(!s.log().contains(Served.webhookSecret))
    }
  }

  @Test("SIGHUP reloads ytempire.yaml: a bad file is reported and the old one kept; a good one takes effect (a new webhook secret)")
  func sighupReload() async throws {
    try await Empire.with { e in
      let s = try Served(e, interval: "1h")
      let (p, port) = try await s.start()
      try await s.eventually("the first reconcile") { s.log().contains("reconciled") }
      let good = e.configText
      try e.writeConfig(good.replacingOccurrences(of: "stateDir:", with: "stateDirectory:"))
      kill(p.processIdentifier, SIGHUP)
      try await s.eventually("the bad file reported") { s.log().contains("configuration not reloaded; the old one stays in use") }
      #expect(try await s.http(port, "GET", "/healthz").0 == 200)
      let body = Self.pushBody()
      let oldSig = WebhookGate.githubSignature(secret: Array(Served.webhookSecret.utf8), body: Array(body.utf8))
      #expect(
        try await s.http(
          port, "POST", "/hooks/github",
          headers: [
            "X-Hub-Signature-256": oldSig, "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "h-1",
          ], body: body
        ).0 == 202)
      try e.writeConfig(good.replacingOccurrences(of: Served.webhookSecret, with: "rotated-webhook-secret"))
      kill(p.processIdentifier, SIGHUP)
      try await s.eventually("the good file reloaded") { s.log().contains("configuration reloaded") }
      #expect(
        try await s.http(
          port, "POST", "/hooks/github",
          headers: [
            "X-Hub-Signature-256": oldSig, "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "h-2",
          ], body: body
        ).0 == 401)
      let newSig = WebhookGate.githubSignature(secret: Array("rotated-webhook-secret".utf8), body: Array(body.utf8))
      #expect(
        try await s.http(
          port, "POST", "/hooks/github",
          headers: [
            "X-Hub-Signature-256": newSig, "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "h-3",
          ], body: body
        ).0 == 202)
      #expect(try await s.stop(p) == 0)
    }
  }

  @Test("SIGTERM during a slow apply exits 0 with the journal complete; the next start creates no duplicate")
  func sigtermDuringApply() async throws {
    try await Empire.with(faults: "youtube:POST /youtube/v3/playlists=latency:1500ms") { e in
      let s = try Served(e, interval: "1h")
      let (p, _) = try await s.start(format: "json")
      try await s.eventually("the first action finished") { s.log().contains("\"message\":\"action ok\"") }
      #expect(try await s.stop(p) == 0)
      let log = s.log()
      #expect(log.contains("shutting down"))
      // Every JSON log line is one object with level, time and message.
      for line in log.split(separator: "\n") where line.hasPrefix("{") {
        let o = try E2E.object(String(line))
        #expect(o["level"] != nil && o["time"] != nil && o["message"] != nil)
      }
      // The journal has no open entry: `apply` finds nothing interrupted.
      let again = try await e.apply()
      #expect(!again.stdout.contains("Recovered"), "\(again)")
      #expect(try await e.duplicatePlaylistTitles() == [])
    }
  }
}

@Suite("serve: drift checks", .serialized)
struct ServeDriftTests {
  @Test("a hand edit in the sandbox is found and corrected within one drift interval, the drift checks spending within their budget")
  func driftCorrected() async throws {
    // 1,000,000 YouTube units a day and a 5% drift budget: a check every minute fits (≈4 units each).
    try await Empire.with(
      dailyUnits: 1_000_000,
      edit: { repo in
        let path = repo.path + "/ratelimits/youtube-api.yaml"
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(
          of: "    units: 10000", with: "    units: 1000000")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
      },
      { e in
        let s = try Served(e, interval: "1h", driftInterval: "1m")
        var cfg = e.configText
        cfg = cfg.replacingOccurrences(of: "  driftInterval: 1m\n", with: "  driftInterval: 1m\n  driftBudget: 5%\n")
        try e.writeConfig(cfg)
        let (p, port) = try await s.start()
        // The whole first apply, not only this channel's update: the other channels' updates
        // would otherwise still land after the count below is taken.
        try await s.eventually("the first revision applied") {
          guard s.log().contains("reconciled: ") else { return false }
          return try await e.description(ofChannel: "science-simplified") == ServeTests.original
        }
        let before = e.sandbox.youtubeQuotaUsed
        let updatesBefore = e.calls(Empire.channelsUpdate)
        let (code, _) = try await e.admin(
          "PATCH", "/state/youtube/channels/\(e.channelId("science-simplified"))",
          ["brandingSettings": ["channel": ["description": "Edited in YouTube Studio"]]])
        #expect(code == 200)
        try await s.eventually("the drift corrected", timeout: 180) {
          try await e.description(ofChannel: "science-simplified") == ServeTests.original
        }
        #expect(e.calls(Empire.channelsUpdate) == updatesBefore + 1)
        try await s.eventually("the status page shows the corrected drift") {
          let page = try await s.http(port, "GET", "/").1
          return page.contains("data-type=\"Drifted\" data-status=\"False\" title=\"corrected fields: branding.description\"")
        }
        #expect(s.log().contains("drifted=Channel/science-simplified"))
        #expect(try await s.stop(p) == 0)
        // What the drift checks spent (all but the one 50-unit correction) is within 5% of the day.
        let spent = e.sandbox.youtubeQuotaUsed - before - 50
        #expect(spent >= 1 && spent <= 50_000, "drift spent \(spent) units")
      })
  }
}

@Suite("serve: /metrics scraped by a real Prometheus", .serialized)
struct ServeMetricsScrapeTests {
  @Test(
    "Debian's Prometheus scrapes /metrics and its query API returns ytempire's series",
    .enabled(if: PrometheusServer.isAvailable, "needs Debian's prometheus package (make test installs it)"))
  func scraped() async throws {
    try await Empire.with { e in
      let s = try Served(e, interval: "1h")
      let (p, port) = try await s.start()
      try await s.eventually("the first revision applied") {
        try await s.http(port, "GET", "/metrics").1.contains("ytempire_actions_total{")
      }
      let prom = try PrometheusServer.start(ruleFiles: [], scrape: ["127.0.0.1:\(port)"])
      defer { prom.stop() }
      for series in [
        "ytempire_actions_total", "ytempire_quota_used_units", "ytempire_quota_remaining_units",
        "ytempire_reconcile_duration_seconds_count", "ytempire_last_applied_timestamp_seconds",
        "ytempire_source_errors_total", "ytempire_drifted_resources", "ytempire_circuit_state",
      ] {
        try await s.eventually("\(series) queryable through Prometheus", timeout: 60) {
          guard let r = prom.get("/api/v1/query?query=\(series)"), r.status == 200 else { return false }
          let o = try E2E.object(r.body)
          let result = ((o["data"] as? [String: Any])?["result"] as? [Any]) ?? []
          return o["status"] as? String == "success" && !result.isEmpty
        }
      }
      // The scrape target is healthy.
      let targets = try #require(prom.get("/api/v1/targets"))
      #expect(targets.body.contains("\"health\":\"up\""), "\(targets.body.prefix(800))")
      #expect(try await s.stop(p) == 0)
    }
  }
}

@Suite("serve: the status page in a real browser", .serialized)
struct StatusPageBrowserTests {
  static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

  /// Headless Chromium (Debian's package) with a deadline; as root it needs --no-sandbox.
  static func chromium(_ args: [String]) async throws -> String {
    let argv =
      [
        "timeout", "120", chromium!, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--user-data-dir=\(NSTemporaryDirectory())ytempire-chromium-\(UUID().uuidString.prefix(8))",
      ] + args
    let r = try await offload { try Processes.run(argv, check: false) }
    guard r.status == 0 else { throw E2EFailure("chromium \(args.last ?? ""): exit \(r.status)\n\(r.stderr.suffix(2000))") }
    return r.stdout
  }

  @Test(
    "headless Chromium loads the page: a row per example resource, and a Drifted one after a hand edit; a screenshot is kept",
    .enabled(if: chromium != nil, "needs Debian's chromium package (make test installs it)"))
  func drifted() async throws {
    try await Empire.with(
      edit: { repo in
        // Drift on this channel is reported, not corrected, so the page can show it.
        let path = repo.path + "/channels/science-simplified.yaml"
        let text = try String(contentsOfFile: path, encoding: .utf8)
          .replacingOccurrences(
            of: "  name: science-simplified\n", with: "  name: science-simplified\n  annotations: {ytempire.io/drift: report}\n")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
      },
      { e in
        let s = try Served(e, interval: "2s")
        // Every poll looks again at what it saw more than a second ago, so the edit is seen at the next poll.
        try e.writeConfig(e.configText.replacingOccurrences(of: "policy: {prune: true,", with: "policy: {observeMaxAge: 1s, prune: true,"))
        let (p, port) = try await s.start()
        try await s.eventually("the first revision applied") {
          try await e.description(ofChannel: "science-simplified") == ServeTests.original
        }
        let url = "http://127.0.0.1:\(port)/"
        try await s.eventually("the status of every resource recorded") {
          try await s.http(port, "GET", "/").1.components(separatedBy: "class=\"resource\"").count - 1 == 26
        }
        let dom = try await Self.chromium(["--dump-dom", url])
        let rows = dom.components(separatedBy: "class=\"resource\"").count - 1
        #expect(rows == 26, "rows: \(rows)")
        for id in [
          "Channel/tech-daily", "Schedule/content-generation", "CDNZone/ytempire-static", "SecurityPolicy/ytempire",
          "Monitor/high-api-latency",
        ] {
          #expect(dom.contains("data-resource=\"\(id)\""), "\(id) missing")
        }
        let (code, _) = try await e.admin(
          "PATCH", "/state/youtube/channels/\(e.channelId("science-simplified"))",
          ["brandingSettings": ["channel": ["description": "Edited in <b>YouTube Studio</b>"]]])
        #expect(code == 200)
        try await s.eventually("the drift reported on the page") {
          try await s.http(port, "GET", "/").1.contains("data-type=\"Drifted\" data-status=\"True\"")
        }
        let after = try await Self.chromium(["--dump-dom", url])
        let row = try #require(after.components(separatedBy: "data-resource=\"Channel/science-simplified\"").dropFirst().first)
        let cells = String(row.prefix { $0 != "\n" })
        #expect(cells.contains("data-type=\"Drifted\" data-status=\"True\""), "\(cells.prefix(600))")
        #expect(cells.contains("fields: branding.description"))
        // The edit stays where it is: drift is only reported.
        #expect(try await e.description(ofChannel: "science-simplified") == "Edited in <b>YouTube Studio</b>")
        // The screenshot is kept as an artifact of the run.
        let artifacts = E2E.packageRoot.appendingPathComponent(".build/test-artifacts").path
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        let shot = artifacts + "/status-page.png"
        try? FileManager.default.removeItem(atPath: shot)
        _ = try await Self.chromium(["--window-size=1400,2400", "--screenshot=\(shot)", url])
        let png = try #require(FileManager.default.contents(atPath: shot))
        #expect(png.count > 10_000 && png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        #expect(try await s.stop(p) == 0)
      })
  }
}
