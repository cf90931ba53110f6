import Foundation
import Sandbox
import Service
import TestSupport
import Testing

/// Issue 16 (items 1, 5, 6, 8) through the built binary: hostile Retry-After values, an
/// oversized plan file, links planted in the state directory, webhook bodies replayed under a
/// new delivery id.
@Suite("end to end: hardening", .serialized)
struct HardeningTests {
  /// A token endpoint on loopback that answers every refresh with 429 and `Retry-After: value`.
  static func hostileTokenEndpoint(_ e: Empire, retryAfter value: String) async throws -> HTTPTestServer {
    let server = try await HTTPTestServer.start()
    server.route(
      "/token", .text(429, #"{"error":"rate_limit_exceeded","error_description":"slow down"}"#, headers: [("Retry-After", value)]))
    let from = "tokenEndpoint: \"\(e.sandbox.baseURL)/token\""
    guard e.configText.contains(from) else { throw E2EFailure("no tokenEndpoint line in \(e.configText)") }
    try e.writeConfig(e.configText.replacingOccurrences(of: from, with: "tokenEndpoint: \"\(server.baseURL)/token\""))
    return server
  }

  @Test(
    "Retry-After: inf and 1e16 from the token endpoint: plan and apply neither crash nor sleep; the channels' work waits for a later run")
  func infiniteRetryAfter() async throws {
    for value in ["inf", "1e16"] {
      try await Empire.with { e in
        let server = try await Self.hostileTokenEndpoint(e, retryAfter: value)
        for args in [["plan"], ["plan", "--output", "json"], ["apply", "--auto-approve"]] {
          let r = try await e.run(args)
          #expect(r.status == 0 || r.status == 1, "\(value) \(args): \(r)")  // never 132 (SIGILL) or another signal
          #expect(
            (r.stdout + r.stderr).contains("asks to wait 1d (Retry-After), at least the 1d ytempire ever waits; deferred to a later run"),
            "\(value) \(args): \(r)")
        }
        #expect(server.hits("/token") >= 3)
        #expect(e.calls(Empire.channelsUpdate) == 0)
        try await server.shutdown()
      }
    }
  }

  @Test("serve meets Retry-After: inf: it keeps running, logs the deferral and stops cleanly on SIGTERM")
  func serveSurvivesInfiniteRetryAfter() async throws {
    try await Empire.with { e in
      let s = try Served(e, interval: "1h")
      let server = try await Self.hostileTokenEndpoint(e, retryAfter: "inf")
      let (p, port) = try await s.start()
      try await s.eventually("a reconcile logged") { s.log().contains("reconciled") }
      // The channels' observation waits for a later run: the status page says why.
      try await s.eventually("the deferral on the status page") {
        try await s.http(port, "GET", "/").1.contains(
          "asks to wait 1d (Retry-After), at least the 1d ytempire ever waits; deferred to a later run")
      }
      #expect(p.isRunning)
      #expect(try await s.http(port, "GET", "/healthz").0 == 200)
      #expect(try await s.stop(p) == 0, "\(s.log())")
      try await server.shutdown()
    }
  }

  @Test("apply: a write answered 429 with a Retry-After of an hour is deferred, not failed and not slept on")
  func longRetryAfterDefersApply() async throws {
    try await Empire.with(faults: "youtube:PUT /youtube/v3/channels=throttle:1:3600") { e in
      let r = try await e.run(["apply", "--auto-approve"])
      #expect(r.status == 0, "\(r)")
      #expect(r.stdout.contains(" 0 failed, "), "\(r)")
      #expect(r.stderr.contains("deferred"), "\(r)")
      // Which limit the hour passes depends on the time of day: the 5m30s a run waits, or,
      // within the last hour before midnight Pacific, the quota's reset.
      #expect(r.stderr.contains("asks to wait 1h (Retry-After), "), "\(r)")
      #expect(
        r.stderr.contains("longer than the 5m30s a run waits for a retry; deferred to a later run")
          || r.stderr.contains("beyond the quota reset in "), "\(r)")
      #expect(e.calls(Empire.channelsUpdate) >= 1)
      // The next plan still has the branding updates to do.
      try await e.clearFaults()
      let again = try await e.run(["plan", "--detailed-exitcode"])
      #expect(again.status == 2, "\(again)")
    }
  }

  @Test("apply of a 3 GB sparse plan file is refused from its size, without reading it; a FIFO is refused without waiting")
  func hugePlanFile() async throws {
    try await Empire.with { e in
      let big = e.tmp.sub("big-plan.json")
      #expect(FileManager.default.createFile(atPath: big, contents: nil))
      let h = try FileHandle(forWritingTo: URL(fileURLWithPath: big))
      try h.truncate(atOffset: 3 << 30)
      try h.close()
      let argv = ["/usr/bin/time", "-f", "maxrss-kb=%M", E2E.binary, "apply", big, "--auto-approve", "--config", e.configPath]
      let r = try await offload { try Processes.run(argv, cwd: e.tmp.path, check: false) }
      #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
      #expect(
        r.stderr.contains("\(big): plan file of 3221225472 bytes, larger than the 64 MiB a plan may have; nothing was read"), "\(r.stderr)")
      let rss = r.stderr.range(of: "maxrss-kb=").map { Int(r.stderr[$0.upperBound...].prefix { $0.isNumber }) ?? 0 } ?? 0
      #expect(rss > 0 && rss < 400_000, "peak RSS \(rss) KiB")
      let fifo = e.tmp.sub("fifo-plan.json")
      #expect(mkfifo(fifo, 0o600) == 0)
      let f = try await e.run(["apply", fifo, "--auto-approve"])
      #expect(f.status == 1)
      #expect(f.stderr.contains("\(fifo): is a FIFO, not a plan file; only a regular file is read"), "\(f)")
      #expect(e.youtubeWrites == 0)
    }
  }

  @Test("a symbolic link planted in the state directory is refused by name; its target is neither chmod'ed nor written")
  func linksInTheStateDirectory() async throws {
    try await Empire.with { e in
      let victim = e.tmp.sub("victim")
      try Data("do not touch\n".utf8).write(to: URL(fileURLWithPath: victim))
      #expect(chmod(victim, 0o644) == 0)
      try FileManager.default.createDirectory(atPath: e.stateDir, withIntermediateDirectories: true)
      func mode() -> mode_t {
        var st = stat()
        _ = stat(victim, &st)
        return st.st_mode & 0o7777
      }
      for (file, what) in [
        ("state.sqlite", "the state store"), ("state.sqlite-wal", "the state store's journal"),
        ("lock", "the state directory lock"),
      ] {
        let link = e.stateDir + "/" + file
        try? FileManager.default.removeItem(atPath: link)  // the lock file the earlier runs made
        #expect(symlink(victim, link) == 0)
        // `status` reads without taking the lock: it is refused for the store's files only.
        for args in [["plan"], ["apply", "--auto-approve"]] + (file == "lock" ? [] : [["status"]]) {
          let r = try await e.run(args)
          #expect(r.status == 1, "\(file) \(args): \(r)")
          #expect(
            r.stderr.contains(
              "\(what) \(link) is a symbolic link (to \(victim)); ytempire does not follow links for its own files: remove the link"),
            "\(file) \(args): \(r)")
        }
        #expect(mode() == 0o644, "\(file): the link's target was chmod'ed")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "do not touch\n")
        #expect(unlink(link) == 0)
      }
      // The runtime config store (SQLite in the state directory) is checked the same way.
      let runtime = e.stateDir + "/runtime.sqlite"
      try? FileManager.default.removeItem(atPath: runtime)
      #expect(symlink(victim, runtime) == 0)
      let r = try await e.run(["plan", "--refresh", "all"])
      #expect((r.stdout + r.stderr).contains("the runtime config store \(runtime) is a symbolic link (to \(victim))"), "\(r)")
      #expect(mode() == 0o644)
      #expect(try String(contentsOfFile: victim, encoding: .utf8) == "do not touch\n")
      #expect(e.youtubeWrites == 0)
    }
  }

  @Test("serve: the same signed body under a new X-GitHub-Delivery is a replay (409); a GitLab push body sent twice too")
  func webhookBodyReplay() async throws {
    try await Empire.with { e in
      let s = try Served(e, interval: "1h")
      try e.writeConfig(
        e.configText.replacingOccurrences(
          of: "github: {secret: {value: \"\(Served.webhookSecret)\"}}",
          with: "github: {secret: {value: \"\(Served.webhookSecret)\"}}\n    gitlab: {token: {value: \"gitlab-test-token\"}}"))
      let (p, port) = try await s.start()
      try await s.eventually("the first reconcile") { s.log().contains("reconciled") }
      let body = ServeTests.pushBody()
      let sig = WebhookGate.githubSignature(secret: Array(Served.webhookSecret.utf8), body: Array(body.utf8))
      func github(_ delivery: String) async throws -> (Int, String) {
        try await s.http(
          port, "POST", "/hooks/github",
          headers: [
            "X-Hub-Signature-256": sig, "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
          ], body: body)
      }
      #expect(try await github("first").0 == 202)
      let replay = try await github("second")
      #expect(replay.0 == 409, "\(replay)")
      #expect(
        replay.1.contains("this signed body was already received in an earlier delivery (replay under a new X-GitHub-Delivery)"),
        "\(replay)")
      let gl = ["X-Gitlab-Token": "gitlab-test-token", "X-Gitlab-Event": "Push Hook"]
      let glBody = #"{"object_kind":"push","ref":"refs/heads/main","checkout_sha":"0000000000000000000000000000000000000002"}"#
      #expect(try await s.http(port, "POST", "/hooks/gitlab", headers: gl, body: glBody).0 == 202)
      let glReplay = try await s.http(port, "POST", "/hooks/gitlab", headers: gl, body: glBody)
      #expect(glReplay.0 == 409, "\(glReplay)")
      #expect(try await s.stop(p) == 0)
    }
  }
}
