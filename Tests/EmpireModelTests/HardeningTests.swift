import Foundation
import TestSupport
import Testing
import YAMLKit

@testable import EmpireModel

/// Issue 11: inputs that crashed, hung or fooled `ytempire validate`, driven through the built binary.
@Suite struct HardeningTests {
  /// Runs the binary under timeout(1), so a hang fails the test (exit 124/137) instead of hanging the run.
  static func runBounded(_ args: [String], seconds: Int = 30, cwd: URL? = nil) throws -> (Int32, String, String) {
    let r = try Processes.run(["timeout", "-s", "KILL", String(seconds), Support.binary.path] + args, cwd: cwd?.path, check: false)
    return (r.status, r.stdout, r.stderr)
  }

  /// A copy of examples/empire with `edit` applied to ratelimits/youtube-api.yaml.
  static func examplesWithYouTubeQuota(_ edit: (String) -> String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ytempire-hardening-\(UUID().uuidString)")
    try FileManager.default.copyItem(at: Support.examples, to: dir)
    let file = dir.appendingPathComponent("ratelimits/youtube-api.yaml")
    let text = try String(contentsOf: file, encoding: .utf8)
    let edited = edit(text)
    try #require(edited != text)
    try Data(edited.utf8).write(to: file)
    return dir
  }

  // MARK: 1. Arithmetic traps

  static func youtubeLimit(units: String, reserved: String, emergency: String) -> String {
    """
    apiVersion: ytempire.io/v1
    kind: RateLimit
    metadata: {name: youtube-api}
    spec:
      service: youtube
      quota: {units: \(units), reservedPerChannel: \(reserved), emergencyReserve: \(emergency)}
    """
  }

  @Test(
    "emergencyReserve near Int.max: exit 1 with a located range error, no crash",
    arguments: ["9223372036854775000", "9223372036854775807", "99999999999999999999999", "1000000000000001"])
  func hugeEmergencyReserve(_ value: String) throws {
    let dir = try Self.examplesWithYouTubeQuota {
      $0.replacingOccurrences(of: "emergencyReserve: 1000\n", with: "emergencyReserve: \(value)\n")
    }
    defer { Support.cleanup(dir) }
    let (status, _, err) = try Self.runBounded(["validate", dir.path])
    #expect(status == 1, "exit \(status): \(err)")
    #expect(err.contains("ratelimits/youtube-api.yaml:44:23: error: RateLimit.spec.quota.emergencyReserve is "), "\(err)")
    #expect(err.contains("it must be at most 1000000000000000"), "\(err)")
    #expect(!err.contains("Fatal error"))
  }

  @Test("reservedPerChannel and units near Int.max are range errors; in-range extremes sum without trapping")
  func reserveArithmetic() throws {
    for (units, reserved, emergency) in [
      ("9223372036854775807", "9223372036854775807", "9223372036854775807"),
      ("-9223372036854775808", "-1", "0x7fffffffffffffff"),
    ] {
      let r = Support.check(
        Self.youtubeLimit(units: units, reserved: reserved, emergency: emergency)
          + "\n---\n" + Support.channel("a", rateLimit: "youtube-api"), cross: true)
      #expect(r.errors.filter { $0.code == DiagnosticCode.outOfRange.rawValue && $0.line == 6 }.count == 3, "\(r.errors)")
    }
    // All in range: 10^15 reserved for each of 3 channels plus 10^15 is reported, not trapped.
    let limit = NodeDecoder.integerLimit
    let docs =
      [Self.youtubeLimit(units: "\(limit)", reserved: "\(limit)", emergency: "\(limit)")]
      + ["a", "b", "c"].map { Support.channel($0, rateLimit: "youtube-api") }
    let r = Support.check(docs.joined(separator: "\n---\n"), cross: true)
    #expect(r.has(.quotaReserveExceeded))
    #expect(r.errors.first { $0.code == DiagnosticCode.quotaReserveExceeded.rawValue }?.message.contains("4000000000000000 units") == true)
  }

  @Test("sandbox --seed-from a repository with a huge emergencyReserve exits 1 with the located error")
  func sandboxSeedFromHugeReserve() throws {
    let dir = try Self.examplesWithYouTubeQuota {
      $0.replacingOccurrences(of: "emergencyReserve: 1000\n", with: "emergencyReserve: 9223372036854775000\n")
    }
    defer { Support.cleanup(dir) }
    let (status, out, err) = try Self.runBounded(["sandbox", "--listen", "127.0.0.1:0", "--seed-from", dir.path], seconds: 60)
    #expect(status == 1, "exit \(status): \(out) \(err)")
    #expect((out + err).contains("emergencyReserve"), "\(out) \(err)")
    #expect(!(out + err).contains("Fatal error"))
  }

  // MARK: 2. Only regular files are read

  @Test("validate FIFO, --config FIFO and a FIFO manifest or ignore file in a directory return at once with located errors")
  func fifos() throws {
    let dir = try Support.tempDir(["ok/channel.yaml": Support.channel("a")])
    defer { Support.cleanup(dir) }
    for p in ["top.yaml", "ok/x.yaml", "ok/.ytempireignore", "ok/sub/y.yml"] {
      let url = dir.appendingPathComponent(p)
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try Processes.run(["mkfifo", url.path])
    }
    let start = Date()
    let single = try Self.runBounded(["validate", dir.appendingPathComponent("top.yaml").path])
    #expect(single.0 == 1, "exit \(single.0): \(single.2)")
    #expect(
      single.2.contains("top.yaml:1:1: error: cannot read file: it is a FIFO; only regular files are read [file-unreadable]"), "\(single.2)"
    )

    let config = try Self.runBounded(["validate", "--config", dir.appendingPathComponent("top.yaml").path])
    #expect(config.0 == 1, "exit \(config.0): \(config.2)")
    #expect(config.2.contains("top.yaml:1:1: error:") && config.2.contains("FIFO"), "\(config.2)")

    let (status, _, err) = try Self.runBounded(["validate", "ok"], cwd: dir)
    #expect(status == 1, "exit \(status): \(err)")
    #expect(
      err.contains("ok/x.yaml:1:1: error: not read: it is a FIFO; only regular files are read as manifests [file-unreadable]"), "\(err)")
    #expect(err.contains("ok/sub/y.yml:1:1: error: not read: it is a FIFO"), "\(err)")
    #expect(err.contains("ok/.ytempireignore:1:1: error: not read: it is a FIFO; an ignore file must be a regular file"), "\(err)")
    #expect(!err.contains("channel.yaml"), "the regular manifest is still read and valid: \(err)")
    // Each used to block forever in open(2); the bound is generous for a loaded machine.
    #expect(Date().timeIntervalSince(start) < 90)
  }

  // MARK: 3. Terminal injection

  @Test("a file name and a value with newline, CR and ESC cannot forge a diagnostic line in text output")
  func controlCharactersAreEscaped() throws {
    let forged = "x.yaml:1:1: error: forged"
    let evil = "evil\n\(forged)\r\u{1B}[2J\u{9B}.yaml"
    // A value with the same characters, in a double-quoted YAML string (escapes decoded by YAML).
    let doc = """
      apiVersion: ytempire.io/v1
      kind: Channel
      metadata: {name: "bad\\n\(forged)\\e[31m"}
      spec: {}
      """
    let dir = try Support.tempDir([evil: doc])
    defer { Support.cleanup(dir) }
    for args in [["validate", "."], ["validate", evil]] {
      let (status, out, err) = try Self.runBounded(args, cwd: dir)
      #expect(status == 1, "exit \(status): \(err)")
      for line in (err + out).split(separator: "\n", omittingEmptySubsequences: false) {
        #expect(!line.hasPrefix("x.yaml"), "a forged line: \(line)")
        #expect(
          !line.contains("\u{1B}") && !line.contains("\r") && !line.contains("\u{9B}"), "a raw control character: \(line.debugDescription)")
      }
      #expect(err.contains("evil\\nx.yaml:1:1: error: forged\\r\\u{1B}[2J\\u{9B}.yaml:"), "\(err)")
      #expect(err.contains("bad\\nx.yaml:1:1: error: forged\\u{1B}[31m"), "the value is escaped too: \(err)")
      #expect(out.hasPrefix(args[1] == "." ? ".:" : "evil\\nx.yaml"), "the summary names the path escaped: \(out)")
      #expect(out.split(separator: "\n").count == 1)
    }
    // JSON keeps the exact text (its own escaping).
    let (_, json, _) = try Self.runBounded(["validate", "--output", "json", "."], cwd: dir)
    let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    let files = (obj["diagnostics"] as? [[String: Any]] ?? []).compactMap { $0["file"] as? String }
    #expect(files.contains(evil))
  }

  // MARK: 4. Wrong verdicts

  static let notAManifest = "name: CI\non: [push]\njobs: {build: {runs-on: ubuntu-latest}}\n"

  @Test("hidden directories (.github, .vscode, nested .x) are skipped by the directory walk, as .git is")
  func hiddenDirectoriesAreSkipped() throws {
    let dir = try Support.tempDir([
      "channels/a.yaml": Support.channel("a"), ".github/workflows/ci.yml": Self.notAManifest,
      ".vscode/settings.yaml": Self.notAManifest, "channels/.drafts/b.yaml": Self.notAManifest,
    ])
    defer { Support.cleanup(dir) }
    let (status, out, err) = try Self.runBounded(["validate", "."], cwd: dir)
    #expect(status == 0, "exit \(status): \(err)")
    #expect(out.hasPrefix(".: 1 resource in 1 file (1 Channel): valid"), "\(out)")
    #expect(err.isEmpty, "\(err)")
  }

  @Test("hidden directories are skipped by the git tree walk of validate --repo")
  func hiddenDirectoriesAreSkippedInGit() throws {
    let dir = try Support.tempDir([:])
    defer { Support.cleanup(dir) }
    let repo = try GitFixture.create(at: dir.appendingPathComponent("repo").path)
    _ = try repo.commit(
      "init",
      files: [
        "channels/a.yaml": Support.channel("a"), ".github/workflows/ci.yml": Self.notAManifest,
        "channels/.drafts/b.yaml": Self.notAManifest,
      ])
    let (status, out, err) = try Self.runBounded(
      ["validate", "--repo", repo.path, "--state-dir", dir.appendingPathComponent("state").path], seconds: 120)
    #expect(status == 0, "exit \(status): \(err)")
    #expect(out.contains("1 resource in 1 file (1 Channel): valid"), "\(out)")
    #expect(!err.contains("ci.yml") && !err.contains("b.yaml"), "\(err)")
  }

  @Test(
    "usage errors exit 1, not ArgumentParser's 64; --help still exits 0",
    arguments: [
      ["validate", "--ref", "main"], ["validate", "--output", "xml"], ["--no-such-flag"], ["validate", "--state-dir"],
      ["no-such-command"], ["plan", "--refresh", "sometimes"],
    ])
  func usageErrorsExitOne(_ args: [String]) throws {
    let (status, _, err) = try Self.runBounded(args)
    #expect(status == 1, "\(args): exit \(status): \(err)")
    #expect(err.contains("Error:") || err.contains("error:"), "\(err)")
    let help = try Self.runBounded(["validate", "--help"])
    #expect(help.0 == 0)
  }

  @Test("a workflowFile that is not valid JSON (or not an object) is an error located at the field")
  func workflowFileMustBeJSON() throws {
    let schedule = { (file: String) in
      "apiVersion: ytempire.io/v1\nkind: Schedule\nmetadata: {name: s}\nspec:\n  workflowFile: \(file)\n  trigger: {cron: \"*/5 * * * *\"}\n  channels: [a]\n"
    }
    let dir = try Support.tempDir([
      "a.yaml": Support.channel("a"), "s.yaml": schedule("workflows/bad.json"),
      "workflows/bad.json": "{\"name\": \"x\", \"nodes\": [", "workflows/list.json": "[1, 2]",
      "workflows/ok.json": "{\"name\": \"ok\", \"nodes\": [], \"connections\": {}}",
    ])
    defer { Support.cleanup(dir) }
    var (status, _, err) = try Self.runBounded(["validate", "."], cwd: dir)
    #expect(status == 1, "exit \(status): \(err)")
    #expect(
      err.contains("s.yaml:5:17: error: workflowFile 'workflows/bad.json' of Schedule 's' is not valid JSON [invalid-workflow-file]"),
      "\(err)")

    try Data(schedule("workflows/list.json").utf8).write(to: dir.appendingPathComponent("s.yaml"))
    (status, _, err) = try Self.runBounded(["validate", "."], cwd: dir)
    #expect(status == 1, "exit \(status): \(err)")
    #expect(err.contains("s.yaml:5:17: error: workflowFile 'workflows/list.json' of Schedule 's' must hold a JSON object"), "\(err)")

    try Data(schedule("workflows/ok.json").utf8).write(to: dir.appendingPathComponent("s.yaml"))
    (status, _, err) = try Self.runBounded(["validate", "."], cwd: dir)
    #expect(status == 0, "exit \(status): \(err)")
    // Other spellings of the same existing file name it too (they said "does not exist").
    for spelling in ["./workflows/ok.json", "workflows//ok.json", "./workflows/./ok.json"] {
      try Data(schedule(spelling).utf8).write(to: dir.appendingPathComponent("s.yaml"))
      (status, _, err) = try Self.runBounded(["validate", "."], cwd: dir)
      #expect(status == 0, "\(spelling): exit \(status): \(err)")
    }

    // A missing file is located at the field too, not at 1:1.
    try Data(schedule("workflows/none.json").utf8).write(to: dir.appendingPathComponent("s.yaml"))
    (status, _, err) = try Self.runBounded(["validate", "."], cwd: dir)
    #expect(err.contains("s.yaml:5:17: error: workflowFile 'workflows/none.json' of Schedule 's' does not exist"), "\(err)")
  }

  @Test("a cron that can never fire is a warning at the field; valid exit 0")
  func cronThatNeverFires() throws {
    for (cron, never) in [
      ("0 0 31 2 *", true), ("0 0 30,31 2 *", true), ("0 0 31 4,6,9,11 *", true), ("0 0 31 2,4 *", true),
      ("0 0 29 2 *", false), ("0 0 31 2 1", false), ("0 0 31 1-2 *", false), ("0 0 */5 2 *", false), ("0 0 * 2 *", false),
    ] {
      #expect(try CronExpression(parsing: cron).canNeverFire == never, "\(cron)")
    }
    let dir = try Support.tempDir([
      "a.yaml": Support.channel("a"),
      "s.yaml":
        "apiVersion: ytempire.io/v1\nkind: Schedule\nmetadata: {name: s}\nspec:\n  workflow: analytics-collection\n  trigger: {cron: \"0 0 31 2 *\"}\n  channels: [a]\n",
    ])
    defer { Support.cleanup(dir) }
    let (status, out, err) = try Self.runBounded(["validate", "."], cwd: dir)
    #expect(status == 0, "exit \(status): \(err)")
    #expect(err.contains("s.yaml:6:19: warning: Schedule.spec.trigger.cron '0 0 31 2 *' can never fire"), "\(err)")
    #expect(out.contains("valid, 1 warning"), "\(out)")
  }

  @Test("validate --repo reads a referenced workflowFile from the commit: not JSON is the same located error")
  func workflowFileMustBeJSONInGit() throws {
    let dir = try Support.tempDir([:])
    defer { Support.cleanup(dir) }
    let repo = try GitFixture.create(at: dir.appendingPathComponent("repo").path)
    let schedule =
      "apiVersion: ytempire.io/v1\nkind: Schedule\nmetadata: {name: s}\nspec:\n  workflowFile: workflows/bad.json\n  trigger: {cron: \"*/5 * * * *\"}\n  channels: [a]\n"
    _ = try repo.commit(
      "init",
      files: [
        "a.yaml": Support.channel("a"), "s.yaml": schedule, "workflows/bad.json": "{\"nodes\": [",
        "workflows/other.json": "not json, but nothing names it",
      ])
    let state = dir.appendingPathComponent("state").path
    var (status, _, err) = try Self.runBounded(["validate", "--repo", repo.path, "--state-dir", state], seconds: 120)
    #expect(status == 1, "exit \(status): \(err)")
    #expect(
      err.contains("s.yaml:5:17: error: workflowFile 'workflows/bad.json' of Schedule 's' is not valid JSON [invalid-workflow-file]"),
      "\(err)")
    #expect(!err.contains("other.json"))
    _ = try repo.commit("fix", files: ["workflows/bad.json": "{\"name\": \"ok\", \"nodes\": [], \"connections\": {}}"])
    (status, _, err) = try Self.runBounded(["validate", "--repo", repo.path, "--state-dir", state], seconds: 120)
    #expect(status == 0, "exit \(status): \(err)")
  }

  @Test("folders nested 200 deep: one located depth-limit error, no crash; the shallow manifests are still read")
  func deepDirectories() throws {
    let dir = try Support.tempDir(["channels/a.yaml": Support.channel("a")])
    defer { Support.cleanup(dir) }
    var deep = dir.appendingPathComponent("deep").path
    for _ in 0..<200 { deep += "/d" }
    try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
    try Support.channel("b").write(toFile: deep + "/b.yaml", atomically: true, encoding: .utf8)
    let (status, _, err) = try Self.runBounded(["validate", dir.path])
    #expect(status == 1, "\(err)")
    #expect(
      err.contains("error: directories nested more than \(DirectorySource.maxDepth) levels deep are not read [depth-limit]"), "\(err)")
    #expect(err.components(separatedBy: "[depth-limit]").count == 2)
  }

  @Test("a commit whose tree is 5,000 directories deep: validate --repo reports the depth limit, no stack overflow")
  func deepGitTree() throws {
    let dir = try Support.tempDir([:])
    defer { Support.cleanup(dir) }
    let repo = try GitFixture.create(at: dir.appendingPathComponent("repo").path)
    _ = try repo.commit("init", files: ["channels/a.yaml": Support.channel("a")])
    // Tree objects written directly (no path on disk could be this long), then committed on top of HEAD.
    let script = """
      import hashlib, os, subprocess, sys, zlib
      git = sys.argv[1]
      def write(kind, body):
          data = kind.encode() + b" " + str(len(body)).encode() + b"\\0" + body
          sha = hashlib.sha1(data).hexdigest()
          path = os.path.join(git, "objects", sha[:2], sha[2:])
          os.makedirs(os.path.dirname(path), exist_ok=True)
          if not os.path.exists(path):
              open(path, "wb").write(zlib.compress(data))
          return sha
      blob = write("blob", b"apiVersion: ytempire.io/v1\\nkind: Nope\\n")
      tree = write("tree", b"100644 x.yaml\\0" + bytes.fromhex(blob))
      for _ in range(5000):
          tree = write("tree", b"40000 d\\0" + bytes.fromhex(tree))
      root = write("tree", b"40000 channels\\0" + bytes.fromhex(sys.argv[2]) + b"40000 deep\\0" + bytes.fromhex(tree))
      print(root)
      """
    let py = dir.appendingPathComponent("deep.py").path
    try script.write(toFile: py, atomically: true, encoding: .utf8)
    let channels = try repo.git("rev-parse", "HEAD:channels").trimmingCharacters(in: .whitespacesAndNewlines)
    let root = try Processes.run(["python3", py, repo.path + "/.git", channels]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    // (git's own read-tree overflows its stack on this tree: the commit is made from the object.)
    let commit = try repo.git("commit-tree", root, "-p", "HEAD", "-m", "deep").trimmingCharacters(in: .whitespacesAndNewlines)
    try repo.git("update-ref", "refs/heads/main", commit)
    let (status, _, err) = try Self.runBounded(
      ["validate", "--repo", repo.path, "--state-dir", dir.appendingPathComponent("state").path], seconds: 120)
    #expect(status == 1, "exit \(status): \(err.prefix(2000))")
    #expect(err.contains("[depth-limit]"), "\(err.prefix(2000))")
  }

  @Test("a million documents with errors: at most 100 per file are listed, the rest counted (text and JSON); memory stays bounded")
  func diagnosticsAreCapped() throws {
    let dir = try Support.tempDir(["many.yaml": String(repeating: "--- {}\n", count: 200_000), "channels/a.yaml": Support.channel("a")])
    defer { Support.cleanup(dir) }
    let (status, out, err) = try Self.runBounded(["validate", dir.path], seconds: 120)
    #expect(status == 1)
    let listed = err.split(separator: "\n").filter { $0.contains(": error: ") }.count
    #expect(listed == DiagnosticBag.perFileLimit)
    #expect(
      err.contains("… and 799900 more diagnostics not shown (at most 100 per file and 1000 per run are listed)"), "\(err.suffix(400))")
    #expect(out.contains("800000 errors"), "\(out)")
    let (js, jout, _) = try Self.runBounded(["validate", dir.path, "--output", "json"], seconds: 120)
    #expect(js == 1)
    let o = try #require(try JSONSerialization.jsonObject(with: Data(jout.utf8)) as? [String: Any])
    #expect(o["errors"] as? Int == 800_000 && o["omitted"] as? Int == 799_900 && (o["diagnostics"] as? [Any])?.count == 100)
  }

  @Test("the per-run cap: 30 bad files list 1000 diagnostics in all and count the rest")
  func perRunCap() throws {
    var files: [String: String] = [:]
    for i in 0..<30 { files["bad\(i).yaml"] = String(repeating: "--- {}\n", count: 50) }
    let dir = try Support.tempDir(files)
    defer { Support.cleanup(dir) }
    let (_, jout, _) = try Self.runBounded(["validate", dir.path, "--output", "json"], seconds: 120)
    let o = try #require(try JSONSerialization.jsonObject(with: Data(jout.utf8)) as? [String: Any])
    // 50 documents × 4 errors = 200 per file, capped to 100; 30 files → 3000 kept per file, 1000 listed.
    #expect((o["diagnostics"] as? [Any])?.count == DiagnosticBag.perRunLimit)
    #expect(o["errors"] as? Int == 6000 && o["omitted"] as? Int == 5000)
  }

  @Test(
    "a token pasted into a field that names a secret is not echoed; references to a resource with errors say it is invalid, not missing")
  func pastedTokenAndInvalidReferences() throws {
    let token = "ya29.A0ARrdaM-CANARY\(UUID().uuidString.prefix(8))SECRETPART"
    let dir = try Support.tempDir([:])
    defer { Support.cleanup(dir) }
    let repo = dir.appendingPathComponent("empire")
    try FileManager.default.copyItem(atPath: Support.examples.path, toPath: repo.path)
    let path = repo.appendingPathComponent("channels/tech-daily.yaml").path
    let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(
      of: "credentials: youtube-tech-daily", with: "credentials: \(token)")
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    for output in ["text", "json"] {
      let (status, out, err) = try Self.runBounded(["validate", repo.path, "--output", output])
      #expect(status == 1)
      #expect(!(out + err).contains(token.dropFirst(4).prefix(10)), "\(out)\(err)")
      if output == "text" {
        #expect(
          err.contains("credentials 'ya29…' (\(token.count) characters, not shown: it may be a credential) is not a secret name"), "\(err)")
        #expect(err.contains("refers to Channel 'tech-daily', which is invalid (see its errors)"), "\(err)")
        #expect(!err.contains("'tech-daily', which does not exist"))
      }
    }
  }
}
