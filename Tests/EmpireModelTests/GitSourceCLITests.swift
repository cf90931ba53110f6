import Foundation
import TestSupport
import Testing

/// `ytempire validate --repo`: the built binary reading manifests from a git commit.
@Suite("ytempire validate --repo (binary)")
struct GitSourceCLITests {
  static let gitEnv: [String: String] = [
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com",
  ]

  static func git(_ dir: URL, _ args: String...) throws -> String {
    let r = try Processes.run(["git", "-C", dir.path] + args, env: gitEnv, check: false)
    #expect(r.status == 0, "git \(args): \(r.stderr)")
    return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// A temporary directory holding `files`, committed on `main` of a repository there.
  static func committed(_ files: [String: String]) throws -> URL {
    let dir = try Support.tempDir(files)
    _ = try git(dir, "init", "-q", "-b", "main")
    _ = try git(dir, "add", ".")
    _ = try git(dir, "commit", "-q", "-m", "one")
    return dir
  }

  @Test("a commit of a repository is validated; diagnostics are repository-relative; the summary names the revision")
  func validateRepoAtRef() throws {
    let dir = try Support.tempDir([
      "deploy/a.yaml": Support.channel("a"),
      "deploy/b.yaml": Support.channel("b"),
    ])
    defer { Support.cleanup(dir) }
    let state = dir.appendingPathComponent(".state")
    _ = try Self.git(dir, "init", "-q", "-b", "main")
    _ = try Self.git(dir, "add", "deploy")
    _ = try Self.git(dir, "commit", "-q", "-m", "good")
    let good = try Self.git(dir, "rev-parse", "HEAD")
    try Data(Support.channel("b").replacingOccurrences(of: "branding: {title: b}", with: "branding: {titel: b}").utf8)
      .write(to: dir.appendingPathComponent("deploy/b.yaml"))
    _ = try Self.git(dir, "commit", "-q", "-am", "typo")
    let bad = try Self.git(dir, "rev-parse", "HEAD")
    // The work tree changes after the commit are invisible to --repo.
    try Data("broken: [".utf8).write(to: dir.appendingPathComponent("deploy/a.yaml"))

    let (s1, out1, err1) = try Support.run(["validate", "--repo", dir.path, "--state-dir", state.path, "deploy"])
    #expect(s1 == 1)
    #expect(err1.hasPrefix("deploy/b.yaml:"), "\(err1)")
    #expect(err1.contains("unknown field 'titel'"))
    #expect(!err1.contains(dir.path), "paths are relative to the repository")
    #expect(out1.contains("main@sha1:\(bad)"), "\(out1)")
    #expect(out1.hasSuffix(": 2 errors\n"), "unknown titel and missing title")

    let (s2, out2, err2) = try Support.run([
      "validate", "--repo", "file://" + dir.path, "--ref", String(good.prefix(10)),
      "--state-dir", state.path, "deploy",
    ])
    #expect(s2 == 0, "\(err2)")
    #expect(out2.contains("sha1:\(good)"))
    #expect(out2.contains("2 resources in 2 files"))
    #expect(out2.contains(": valid"))
    let mirrors = try FileManager.default.contentsOfDirectory(atPath: state.path + "/git/mirrors")
    #expect(mirrors.contains { $0.hasSuffix(".git") })
  }

  @Test("an unknown ref or unreachable repository is one located error, exit 1")
  func unreadableRepo() throws {
    let dir = try Self.committed(["a.yaml": Support.channel("a")])
    defer { Support.cleanup(dir) }
    let state = dir.appendingPathComponent(".state").path
    let (s, _, err) = try Support.run(["validate", "--repo", dir.path, "--ref", "nope", "--state-dir", state])
    #expect(s == 1)
    #expect(err.contains("error: cannot read the repository: no branch, tag or commit named 'nope'"), "\(err)")
    let (s2, _, err2) = try Support.run(["validate", "--repo", "git://127.0.0.1:1/x.git", "--state-dir", state])
    #expect(s2 == 1)
    #expect(err2.contains("[unreachable]"), "\(err2)")
    let (s3, _, err3) = try Support.run(["validate", "--ref", "main"])
    #expect(s3 != 0)
    #expect(err3.contains("--ref needs --repo"))
  }

  @Test("the example empire committed under a folder validates from git, file references included")
  func exampleRepositoryFromGit() throws {
    let dir = try Support.tempDir([:])
    defer { Support.cleanup(dir) }
    try FileManager.default.copyItem(at: Support.examples, to: dir.appendingPathComponent("deploy"))
    _ = try Self.git(dir, "init", "-q", "-b", "main")
    _ = try Self.git(dir, "add", "-A")
    _ = try Self.git(dir, "commit", "-q", "-m", "example")
    let (direct, directOut, _) = try Support.run(["validate", Support.examples.path])
    #expect(direct == 0)
    let (s, out, err) = try Support.run([
      "validate", "--repo", dir.path, "--state-dir", dir.appendingPathComponent(".state").path, "deploy",
    ])
    #expect(s == 0, "\(err)")
    #expect(err.isEmpty, "\(err)")
    // Same resources and files as reading the directory itself.
    let tail = { (line: String) in line.components(separatedBy: ": ").dropFirst().joined(separator: ": ") }
    #expect(tail(out) == tail(directOut), "\(out) vs \(directOut)")
    #expect(tail(out).contains("resources in"))
    #expect(out.contains(" main@sha1:"))
  }

  @Test("a missing path or a plain directory given as --repo says so, instead of 'unsupported URL protocol' or 'corrupt-mirror'")
  func localPathThatIsNoRepository() throws {
    let dir = try Support.tempDir(["a.yaml": Support.channel("a")])
    defer { Support.cleanup(dir) }
    let state = dir.appendingPathComponent(".state").path
    let (s1, _, e1) = try Support.run(["validate", "--repo", dir.path + "/nonexistent", "--state-dir", state])
    #expect(s1 == 1)
    #expect(e1.contains("no repository at \(dir.path)/nonexistent: the path does not exist"), "\(e1)")
    #expect(!e1.contains("unsupported URL protocol"))
    let (s2, _, e2) = try Support.run(["validate", "--repo", dir.path, "--state-dir", state])
    #expect(s2 == 1)
    #expect(e2.contains("is a directory but not a git repository"), "\(e2)")
    #expect(!e2.contains("corrupt-mirror"))
    let (s3, _, e3) = try Support.run(["validate", "--repo", "file://" + dir.path + "/a.yaml", "--state-dir", state])
    #expect(s3 == 1)
    #expect(e3.contains("it is a file, not a directory"), "\(e3)")
  }

  @Test("a server that accepts and then stays silent is given up at --connect-timeout + --transfer-timeout + 1s, git:// and http:// alike")
  func silentServerDeadline() throws {
    let listener = try SilentListener()
    defer { listener.close() }
    let dir = try Support.tempDir([:])
    defer { Support.cleanup(dir) }
    for url in ["git://127.0.0.1:\(listener.port)/x.git", "http://127.0.0.1:\(listener.port)/x.git"] {
      let state = dir.appendingPathComponent(".state-\(url.prefix(4))").path
      let (s, _, err) = try Support.run([
        "validate", "--repo", url, "--state-dir", state,
        "--connect-timeout", "500ms", "--transfer-timeout", "1s",
      ])
      #expect(s == 1)
      #expect(err.contains("[timeout]"), "\(err)")
      #expect(err.contains("did not finish within 2.5 seconds"), "\(err)")
    }
    let (bad, _, why) = try Support.run(["validate", "--repo", "git://127.0.0.1:1/x.git", "--transfer-timeout", "forever"])
    #expect(bad == 1)
    #expect(why.contains("--transfer-timeout 'forever' is not a duration"), "\(why)")
    let (big, _, why2) = try Support.run(["validate", "--repo", "git://127.0.0.1:1/x.git", "--connect-timeout", "48h"])
    #expect(big == 1)
    #expect(why2.contains("write a deadline between 100ms and"), "\(why2)")
  }

  @Test(
    "an https source behind a private CA validates with SSL_CERT_FILE or GIT_SSL_CAINFO or --ca-file; without, a TLS error naming the host")
  func httpsWithPrivateCA() throws {
    let dir = try Self.committed(["a.yaml": Support.channel("a")])
    defer { Support.cleanup(dir) }
    let served = dir.appendingPathComponent("served").path
    let ca = try TestCA(in: dir.appendingPathComponent("pki").path)
    let token = "tok_\(UUID().uuidString)"
    let server = try GitHTTPServer.serving(dir.path, at: served, token: token, tls: (ca.certificate, ca.key))
    defer { server.stop() }
    let url = server.url("empire.git")
    func validate(_ extra: [String], env: [String: String], state: String) throws -> (Int32, String, String) {
      var e = env
      e["YTEMPIRE_GIT_TOKEN"] = token
      return try Support.run(["validate", "--repo", url, "--state-dir", dir.appendingPathComponent(state).path] + extra, env: e)
    }
    // The environment running the tests may set both variables already: each case says
    // what it wants of both (empty = unset), and the precedence shows: --ca-file, then
    // GIT_SSL_CAINFO, then SSL_CERT_FILE.
    let system = "/etc/ssl/certs/ca-certificates.crt"
    for (name, extra, env) in [
      ("ssl", [String](), ["SSL_CERT_FILE": ca.caFile, "GIT_SSL_CAINFO": ""]),
      ("git", [], ["GIT_SSL_CAINFO": ca.caFile, "SSL_CERT_FILE": system]),
      ("flag", ["--ca-file", ca.caFile], ["GIT_SSL_CAINFO": system, "SSL_CERT_FILE": system]),
    ] {
      let (s, out, err) = try validate(extra, env: env, state: ".state-\(name)")
      #expect(s == 0, "\(name): \(err)")
      #expect(out.contains("1 resource in 1 file"), "\(name): \(out)")
    }
    let (s, _, err) = try validate([], env: ["SSL_CERT_FILE": "", "GIT_SSL_CAINFO": ""], state: ".state-none")
    #expect(s == 1)
    #expect(err.contains("TLS certificate of localhost is not trusted"), "\(err)")
    #expect(err.contains("[tls]"), "\(err)")
    #expect(!err.contains(token))
  }
}
