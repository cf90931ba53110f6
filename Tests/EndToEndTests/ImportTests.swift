import Foundation
import Sandbox
import TestSupport
import Testing
import YAMLKit

/// `ytempire import` through the built binary: a network that `apply` converged in the sandbox
/// is imported into an empty repository with a fresh state directory, as an operator who
/// already runs channels and workflows would onboard it.
@Suite("end to end: import")
struct ImportTests {
  /// Playlist titles and a description that YAML, markdown and a careless emitter get wrong.
  static let hostileTitles = [
    "*Stars & Stripes: #1", "&anchor --- no", "yes", "0123", "**Bold** [link](https://example.com) 🎬 ✨", "- dash: [x] {y} 'q' \"dq\"",
  ]
  static let longDescription: String = {
    var s = String(repeating: "ab: #c 🎬\n", count: 416)  // 12 bytes each: 4992
    s += "end: #1"  // 7 bytes: 4999
    s += "!"
    precondition(s.utf8.count == 5000)
    return s
  }()

  /// The hostile playlists added to tech-daily before the network is converged.
  static func hostile(_ text: String) -> String {
    var lines = ""
    for (i, t) in hostileTitles.enumerated() {
      let quoted = "\"" + t.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
      lines += "    - name: hostile-\(i)\n      title: \(quoted)\n      privacy: unlisted\n"
      if i == 0 {
        let d = longDescription.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\"", with: "\\\"")
        lines += "      description: \"\(d)\"\n"
      }
    }
    return text.replacingOccurrences(of: "  playlists:\n", with: "  playlists:\n" + lines)
  }

  /// Converges the example (with the hostile playlists), then gives `body` a second
  /// configuration on the same sandbox: an empty repository, a fresh state directory and runtime database.
  static func converged(_ body: (Empire, _ config: String, _ repo: GitFixture) async throws -> Void) async throws {
    try await Empire.with(
      edit: { repo in
        let path = repo.path + "/channels/tech-daily.yaml"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try Data(Self.hostile(text).utf8).write(to: URL(fileURLWithPath: path))
      },
      { e in
        let applied = try await e.apply()
        #expect(applied.stdout.contains(", 0 failed, 0 deferred"), "\(applied)")
        let repo = try GitFixture.create(at: e.tmp.sub("imported"))
        let config = e.tmp.sub("import.yaml")
        let text = e.configText
          .replacingOccurrences(of: e.repo.path, with: repo.path)
          .replacingOccurrences(of: e.stateDir, with: e.tmp.sub("state2"))
        #expect(text != e.configText)
        try Data(text.utf8).write(to: URL(fileURLWithPath: config))
        try await body(e, config, repo)
      })
  }

  @Test(
    "import --adopt onboards a converged network: price first, files validate, plan changes nothing that exists, a removed playlist is one owned delete, a second import refuses"
  )
  func adoptAndPlan() async throws {
    try await Self.converged { e, config, repo in
      // --max-units below the price refuses before anything is read.
      let before = e.sandbox.callCounts
      let poor = try await e.run(["import", "--out", repo.path, "--max-units", "1", "--config", config], config: false)
      #expect(poor.status == 1 && poor.stderr.contains("more than --max-units 1; nothing was read"), "\(poor)")
      #expect(poor.stdout.hasPrefix("Import price: 6 units at least"), "\(poor)")
      #expect(e.sandbox.callCounts == before, "a refused import made calls")

      // A dry run prices, reads and lists, and writes nothing.
      let dry = try await e.run(["import", "--out", repo.path + "/dry", "--dry-run", "--config", config], config: false)
      #expect(dry.status == 0 && dry.stdout.contains("would write \(repo.path)/dry/channels/tech-daily.yaml"), "\(dry)")
      #expect(!FileManager.default.fileExists(atPath: repo.path + "/dry"))

      let r = try await e.run(["import", "--out", repo.path, "--adopt", "--config", config], config: false)
      #expect(r.status == 0, "\(r)")
      let lines = r.stdout.split(separator: "\n").map(String.init)
      #expect(
        lines.first?.hasPrefix(
          "Import price: 6 units at least (cloudflare 1 call, 0 units; n8n 2 calls, 0 units; vault 3 calls, 0 units; youtube 6 calls, 6 units)"
        )
          == true, "\(r)")
      // The empty repository has no commit to read RateLimits from: the published quota prices it, and says why.
      #expect(r.stdout.contains("priced by the APIs' published quotas (the source's RateLimits could not be read: "), "\(r)")
      #expect(r.stdout.contains("wrote \(repo.path)/channels/tech-daily.yaml  Channel/tech-daily"), "\(r)")
      // The example's four schedules are n8n workflows tagged ytempire, each with its JSON beside it.
      for s in ["analytics-daily", "analytics-hourly", "content-generation", "analytics-collection"] {
        #expect(
          r.stdout.contains("wrote \(repo.path)/schedules/\(s).yaml (+ schedules/workflows/\(s).json)  Schedule/\(s)"), "\(s): \(r)")
      }
      // The example's SecurityPolicy: its two service accounts' ACL policies and the audit device.
      #expect(r.stdout.contains("wrote \(repo.path)/security/ytempire.yaml  SecurityPolicy/ytempire"), "\(r)")
      let security = try String(contentsOfFile: repo.path + "/security/ytempire.yaml", encoding: .utf8)
      #expect(security.contains("- name: youtube-publisher") && security.contains("level: comprehensive"), "\(security)")
      // Both zones: the pull zone's rules and workers (their scripts beside them), the push zone's R2 replicas;
      // the rule the sandbox seeded by hand is listed, not dropped.
      #expect(
        r.stdout.contains(
          "wrote \(repo.path)/cdn/ytempire-static.yaml (+ cdn/workers/geo-router.js, cdn/workers/thumbnail-optimizer.js)  CDNZone/ytempire-static"
        ), "\(r)")
      #expect(r.stdout.contains("wrote \(repo.path)/cdn/ytempire-video.yaml  CDNZone/ytempire-video"), "\(r)")
      #expect(r.stdout.contains("not imported: Cloudflare zone ytempire-video.com: rule manual-fonts: ytempire owns only rules"), "\(r)")
      let cdn = try String(contentsOfFile: repo.path + "/cdn/ytempire-static.yaml", encoding: .utf8)
      for rule in ["videos", "images", "api", "static-assets"] { #expect(cdn.contains("- name: \(rule)\n"), "\(rule): \(cdn)") }
      #expect(cdn.contains("polish: lossy") && cdn.contains("webp: true") && cdn.contains("edgeTTL: \"365d\""), "\(cdn)")
      let script = try String(contentsOfFile: repo.path + "/cdn/workers/geo-router.js", encoding: .utf8)
      #expect(script == (try String(contentsOfFile: E2E.examples + "/cdn/workers/geo-router.js", encoding: .utf8)))
      let video = try String(contentsOfFile: repo.path + "/cdn/ytempire-video.yaml", encoding: .utf8)
      #expect(video.contains("type: push") && video.contains("replication: [asia-pacific, eu-west, us-east]"), "\(video)")
      #expect(r.stdout.contains("Import complete: 10 resources, 1 not importable, 0 errors; 6 units spent; 10 adopted"), "\(r)")

      let validate = try await e.run(["validate", repo.path], config: false)
      #expect(validate.status == 0, "\(validate)")
      let tech = try String(contentsOfFile: repo.path + "/channels/tech-daily.yaml", encoding: .utf8)
      #expect(tech.hasPrefix("# yaml-language-server: $schema="), "\(tech)")
      try repo.commit("Imported by ytempire import")

      // Nothing YouTube, n8n, Vault or Cloudflare holds is changed, and no unit is spent observing:
      // only the runtime config database's rows, ytempire's own, are created.
      let plan = try E2E.object(try await e.run(["plan", "--output", "json", "--config", config], config: false).stdout)
      let actions = PlanJSON.actions(plan).compactMap { $0["action"] as? [String: Any] }
      let foreign = actions.filter { $0["driver"] as? String != "configStore" }
      #expect(foreign.isEmpty, "\(foreign)")
      #expect(actions.allSatisfy { $0["operation"] as? String == "create" }, "\(actions)")

      // The first apply writes only those rows (no call changes YouTube, n8n, Cloudflare or Vault);
      // then the plan is empty.
      let writes = e.youtubeWrites
      let otherWrites = e.sandbox.callCounts.filter { k, _ in !k.hasPrefix("youtube") && !k.contains(" GET ") && !k.hasPrefix("oauth") }
      let first = try await e.run(["apply", "--auto-approve", "--config", config], config: false)
      #expect(first.status == 0 && first.stdout.contains(", 0 failed, 0 deferred"), "\(first)")
      #expect(e.youtubeWrites == writes)
      #expect(
        e.sandbox.callCounts.filter { k, _ in !k.hasPrefix("youtube") && !k.contains(" GET ") && !k.hasPrefix("oauth") } == otherWrites)
      let quiet = try await e.run(["plan", "--detailed-exitcode", "--config", config], config: false)
      #expect(quiet.status == 0, "\(quiet)")

      // Removing one imported playlist from git: exactly one owned delete.
      let lines2 = tech.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
      let start = try #require(lines2.firstIndex(of: "  - name: gadget-reviews"))
      let end = lines2[(start + 1)...].firstIndex { $0.hasPrefix("  - ") || !$0.hasPrefix("   ") } ?? lines2.count
      let edited = (lines2[..<start] + lines2[end...]).joined(separator: "\n")
      try repo.commit("Drop a playlist", files: ["channels/tech-daily.yaml": edited])
      let after = try E2E.object(try await e.run(["plan", "--output", "json", "--config", config], config: false).stdout)
      let yt = PlanJSON.actions(after).compactMap { $0["action"] as? [String: Any] }.filter { $0["driver"] as? String == "youtube" }
      #expect(yt.count == 1, "\(yt)")
      #expect(yt.first?["operation"] as? String == "delete" && yt.first?["key"] as? String == "playlist/gadget-reviews", "\(yt)")

      // A second import into the same folder refuses (naming the files), and --force overwrites.
      let again = try await e.run(["import", "--out", repo.path, "--kind", "Channel", "--config", config], config: false)
      #expect(again.status == 1 && again.stderr.contains("already has channels/finance-focus.yaml"), "\(again)")
      #expect(again.stderr.contains("nothing was written (--force overwrites)"), "\(again)")
      #expect(try String(contentsOfFile: repo.path + "/channels/tech-daily.yaml", encoding: .utf8) == edited)
      let forced = try await e.run(["import", "--out", repo.path, "--kind", "Channel", "--force", "--config", config], config: false)
      #expect(forced.status == 0 && forced.stdout.contains("Import complete: 3 resources"), "\(forced)")
      #expect(try String(contentsOfFile: repo.path + "/channels/tech-daily.yaml", encoding: .utf8) == tech)
    }
  }

  @Test("hostile titles and a 5000-byte description round-trip byte for byte through import, validate and plan")
  func hostileRoundTrip() async throws {
    try await Self.converged { e, config, repo in
      let r = try await e.run(["import", "--out", repo.path, "--adopt", "--kind", "Channel", "--config", config], config: false)
      #expect(r.status == 0, "\(r)")
      let loaded = YAMLLoader.load(
        Array(try String(contentsOfFile: repo.path + "/channels/tech-daily.yaml", encoding: .utf8).utf8), file: "t")
      #expect(loaded.errors.isEmpty)
      let playlists = try #require(loaded.documents.first?.root?[path: "spec", "playlists"]?.sequenceItems)
      let titles = playlists.compactMap { $0[path: "title"]?.scalarText }
      for t in Self.hostileTitles { #expect(titles.contains(t), "\(t) not in \(titles)") }
      let long = playlists.first { $0[path: "title"]?.scalarText == Self.hostileTitles[0] }
      #expect(long?[path: "description"]?.scalarText == Self.longDescription)
      #expect(Self.longDescription.utf8.count == 5000)
      try repo.commit("Imported channels")
      let plan = try E2E.object(try await e.run(["plan", "--output", "json", "--config", config], config: false).stdout)
      let yt = PlanJSON.actions(plan).compactMap { $0["action"] as? [String: Any] }.filter { $0["driver"] as? String == "youtube" }
      #expect(yt.isEmpty, "\(yt)")
      // And through a full refresh, observed again from YouTube.
      let refreshed = try E2E.object(
        try await e.run(["plan", "--output", "json", "--refresh", "all", "--config", config], config: false).stdout)
      let yt2 = PlanJSON.actions(refreshed).compactMap { $0["action"] as? [String: Any] }.filter { $0["driver"] as? String == "youtube" }
      #expect(yt2.isEmpty, "\(yt2)")
    }
  }

  /// A Prometheus rule file as an operator's alerting already has it: one rule a Monitor can
  /// say, two it cannot, and a group that is not ytempire's.
  static let rules = """
    groups:
      - name: team-alerts
        rules:
          - alert: DiskFull
            expr: node_filesystem_free_bytes == 0
      - name: ytempire
        rules:
          - alert: quota-usage-warning
            expr: ytempire_quota_used_ratio > 0.8
            for: 10m
            labels: {severity: warning, team: platform}
            annotations:
              summary: "YouTube quota above 80%: #1 cause is uploads"
              runbook_url: https://runbooks.example.com/quota
          - alert: HighLatency
            expr: ytempire_api_latency_seconds > 1
            labels: {severity: critical}
            annotations: {summary: slow}
          - record: job:errors:rate5m
            expr: rate(errors_total[5m])
    """

  @Test(
    "Monitors: the ytempire group's expressible rules are imported and adopted, the others listed with why; a removed Monitor is an owned delete"
  )
  func monitors() async throws {
    try await Empire.with { e in
      let rulesFile = e.tmp.sub("rules/ytempire.yml")
      try FileManager.default.createDirectory(atPath: e.tmp.sub("rules"), withIntermediateDirectories: true)
      try Data(Self.rules.utf8).write(to: URL(fileURLWithPath: rulesFile))
      let repo = try GitFixture.create(at: e.tmp.sub("imported"))
      let config = e.tmp.sub("import.yaml")
      let text = e.configText
        .replacingOccurrences(of: e.repo.path, with: repo.path)
        .replacingOccurrences(of: e.stateDir, with: e.tmp.sub("state2"))
        .replacingOccurrences(
          of: "  configStore:", with: "  prometheus:\n    endpoint: http://127.0.0.1:9\n    rulesFile: \"\(rulesFile)\"\n  configStore:")
      try Data(text.utf8).write(to: URL(fileURLWithPath: config))

      // --out naming a file: refused before anything is read.
      let notDir = try await e.run(["import", "--out", rulesFile, "--kind", "Monitor", "--config", config], config: false)
      #expect(notDir.status == 1 && notDir.stderr.contains("exists and is not a directory; nothing was read"), "\(notDir)")

      // Nothing to import (the group has no rule yet): a clean, empty import, not a validation error.
      try Data("groups: []\n".utf8).write(to: URL(fileURLWithPath: rulesFile))
      let empty = try await e.run(["import", "--out", repo.path, "--kind", "Monitor", "--config", config], config: false)
      #expect(empty.status == 0 && empty.stdout.contains("Import complete: 0 resources, 0 not importable, 0 errors"), "\(empty)")
      try Data(Self.rules.utf8).write(to: URL(fileURLWithPath: rulesFile))

      // A symbolic link where the manifest would go: refused even with --force, its target untouched.
      let outside = e.tmp.sub("outside.yaml")
      try Data("precious\n".utf8).write(to: URL(fileURLWithPath: outside))
      try FileManager.default.createDirectory(atPath: repo.path + "/monitors", withIntermediateDirectories: true)
      try FileManager.default.createSymbolicLink(atPath: repo.path + "/monitors/quota-usage-warning.yaml", withDestinationPath: outside)
      let linked = try await e.run(["import", "--out", repo.path, "--kind", "Monitor", "--force", "--config", config], config: false)
      #expect(linked.status == 1 && linked.stderr.contains("quota-usage-warning.yaml is a symbolic link; nothing was written"), "\(linked)")
      #expect(try String(contentsOfFile: outside, encoding: .utf8) == "precious\n")
      try FileManager.default.removeItem(atPath: repo.path + "/monitors/quota-usage-warning.yaml")

      let r = try await e.run(["import", "--out", repo.path, "--kind", "Monitor", "--adopt", "--config", config], config: false)
      #expect(r.status == 0, "\(r)")
      #expect(r.stdout.hasPrefix("Import price: 0 units at least"), "\(r)")
      #expect(r.stdout.contains("wrote \(repo.path)/monitors/quota-usage-warning.yaml  Monitor/quota-usage-warning"), "\(r)")
      #expect(
        r.stdout.contains(
          "not imported: Prometheus rule HighLatency in group ytempire of \(rulesFile): the alert name is not a resource name"), "\(r)")
      #expect(
        r.stdout.contains("not imported: Prometheus rule job:errors:rate5m in group ytempire of \(rulesFile): a recording rule"), "\(r)")
      #expect(!r.stdout.contains("DiskFull"), "\(r)")
      #expect(r.stdout.contains("Import complete: 1 resource, 2 not importable, 0 errors; 0 units spent; 1 adopted"), "\(r)")
      let validate = try await e.run(["validate", repo.path], config: false)
      #expect(validate.status == 0, "\(validate)")
      try repo.commit("Imported monitors")

      let plan = try E2E.object(try await e.run(["plan", "--output", "json", "--config", config], config: false).stdout)
      let prom = PlanJSON.actions(plan).compactMap { $0["action"] as? [String: Any] }.filter { $0["driver"] as? String == "prometheus" }
      #expect(prom.isEmpty, "\(prom)")

      try repo.remove("monitors/quota-usage-warning.yaml")
      try repo.commit("Drop the monitor")
      let after = try E2E.object(try await e.run(["plan", "--output", "json", "--config", config], config: false).stdout)
      let del = PlanJSON.actions(after).compactMap { $0["action"] as? [String: Any] }.filter { $0["driver"] as? String == "prometheus" }
      #expect(del.count == 1 && del.first?["operation"] as? String == "delete", "\(del)")
      // The file itself is untouched by planning.
      #expect(try String(contentsOfFile: rulesFile, encoding: .utf8) == Self.rules)
    }
  }

  @Test("secret canary: no configured credential or refresh token appears in what import writes, prints or records")
  func noSecretInTheImport() async throws {
    let tag = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    var creds = SandboxCredentials()
    creds.youtubeClientSecret = "CANARY-client-secret-\(tag)"
    creds.n8nAPIKey = "CANARY-n8n-\(tag)"
    creds.cloudflareToken = "CANARY-cloudflare-\(tag)"
    creds.vaultToken = "CANARY-vault-\(tag)"
    let canaries = [creds.youtubeClientSecret, creds.n8nAPIKey, creds.cloudflareToken, creds.vaultToken, "1//sandbox-refresh-"]
    try await Empire.with(credentials: creds) { e in
      try await e.apply()
      let out = e.tmp.sub("imported")
      let config = e.tmp.sub("import.yaml")
      let text = e.configText.replacingOccurrences(of: e.stateDir, with: e.tmp.sub("state2"))
      try Data(text.utf8).write(to: URL(fileURLWithPath: config))
      let r = try await e.run(["import", "--out", out, "--adopt", "--config", config], config: false)
      #expect(r.status == 0 && r.stdout.contains("0 errors"), "\(r)")
      #expect(r.stdout.contains("units), priced by the source's RateLimits."), "\(r)")
      var texts = [("stdout", r.stdout), ("stderr", r.stderr)]
      let files = FileManager.default.enumerator(atPath: out)?.compactMap { $0 as? String } ?? []
      #expect(files.count >= 10, "\(files)")
      for f in files {
        if let d = FileManager.default.contents(atPath: out + "/" + f) { texts.append((f, String(decoding: d, as: UTF8.self))) }
      }
      for f in (try? FileManager.default.contentsOfDirectory(atPath: e.tmp.sub("state2"))) ?? [] {
        if let d = FileManager.default.contents(atPath: e.tmp.sub("state2") + "/" + f) {
          texts.append(("state2/" + f, String(decoding: d, as: UTF8.self)))
        }
      }
      for c in canaries { for (what, t) in texts { #expect(!t.contains(c), "\(c) in \(what)") } }
    }
  }
}
