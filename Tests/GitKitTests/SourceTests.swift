import Basics
import EmpireModel
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import GitKit

@Suite("GitKit source: git daemon, status branch, failures")
struct SourceTests {
  /// A bare repository served by a real `git daemon`, seeded from a work repository.
  final class Served: Sendable {
    let scratch: Scratch
    let daemon: GitDaemon
    let bare: GitFixture
    var url: String { daemon.url("empire.git") }

    init() throws {
      scratch = try Scratch()
      bare = try GitFixture.create(at: scratch.dir.sub("served/empire.git"), bare: true)
      try scratch.repo.commit("one", files: ["channels/a.yaml": channelYAML("a")])
      try scratch.repo.git("remote", "add", "origin", bare.path)
      try scratch.repo.git("push", "-q", "origin", "main")
      daemon = try GitDaemon(baseDir: scratch.dir.sub("served"))
    }

    @discardableResult
    func push(_ message: String, files: [String: String], force: Bool = false) throws -> String {
      let c = try scratch.repo.commit(message, files: files)
      try scratch.repo.git(["push", "-q"] + (force ? ["--force"] : []) + ["origin", "main"])
      return c
    }

    deinit { daemon.stop() }
  }

  @Test("git:// through a real git daemon: clone, then fetch one new commit")
  func gitDaemonFetch() async throws {
    let s = try Served()
    let src = try s.scratch.source(s.url)
    let r1 = await src.sync()
    #expect(r1.error == nil, "\(String(describing: r1.error))")
    let first = try #require(r1.revision)
    #expect(first.name == "main")
    let c2 = try s.push("two", files: ["channels/b.yaml": channelYAML("b")])
    let r2 = await src.sync(lastApplied: first)
    #expect(r2.revision?.description == "main@sha1:\(c2)")
    let tree = try await src.manifests(at: r2.revision!)
    #expect(tree.displayPaths == ["channels/a.yaml", "channels/b.yaml"])
    let changes = try await src.changes(from: first, to: r2.revision!)
    #expect(changes.added == ["channels/b.yaml"])
  }

  @Test("status commits go on an orphan ytempire/status branch, only when content changes, and are pushed")
  func statusBranchPush() async throws {
    let s = try Served()
    let src = try s.scratch.source(s.url)
    _ = await src.sync()
    let mainBefore = try s.bare.head("refs/heads/main")

    let w1 = try await src.writeStatus(["channel/a.yaml": Array("ready: true\n".utf8), "summary.yaml": Array("ok: 1\n".utf8)], push: true)
    #expect(w1.committed && w1.pushed)
    let c1 = try #require(w1.commit)
    #expect(try s.bare.head("refs/heads/ytempire/status") == c1)
    #expect(try s.bare.git("rev-list", "--count", c1) == "1", "orphan: no parent")
    #expect(try s.bare.git("ls-tree", "-r", "--name-only", c1) == "status/channel/a.yaml\nstatus/summary.yaml")
    #expect(try s.bare.git("show", "\(c1):status/channel/a.yaml") == "ready: true")

    let same = try await src.writeStatus(
      ["channel/a.yaml": Array("ready: true\n".utf8), "summary.yaml": Array("ok: 1\n".utf8)], push: true)
    #expect(!same.committed)
    #expect(same.commit == c1)

    let w2 = try await src.writeStatus(["channel/a.yaml": Array("ready: false\n".utf8)], push: true)
    #expect(w2.committed && w2.pushed)
    #expect(try s.bare.git("rev-parse", "\(w2.commit!)^") == c1, "parented on the previous status commit")
    #expect(try s.bare.git("ls-tree", "-r", "--name-only", w2.commit!) == "status/channel/a.yaml")
    #expect(try s.bare.head("refs/heads/main") == mainBefore, "never touches another branch")
    #expect(try s.bare.git("for-each-ref", "--format=%(refname)") == "refs/heads/main\nrefs/heads/ytempire/status")
  }

  @Test("a non-fast-forward status push re-fetches and commits on top of the remote's status commit")
  func statusNonFastForward() async throws {
    let s = try Served()
    let src = try s.scratch.source(s.url)
    _ = await src.sync()
    let w1 = try await src.writeStatus(["summary.yaml": Array("n: 1\n".utf8)], push: true)
    // Another writer advances the status branch behind our back.
    let other = try GitFixture.create(at: s.scratch.dir.sub("other"))
    try other.git("fetch", "-q", s.bare.path, "ytempire/status")
    try other.git("checkout", "-q", "-b", "st", "FETCH_HEAD")
    try other.commit("someone else", files: ["status/other.yaml": "x: 1\n"])
    try other.git("push", "-q", s.bare.path, "st:ytempire/status")
    let theirs = try other.head()

    let w2 = try await src.writeStatus(["summary.yaml": Array("n: 2\n".utf8)], push: true)
    #expect(w2.pushed)
    #expect(w2.retries == 1)
    #expect(try s.bare.head("refs/heads/ytempire/status") == w2.commit)
    #expect(try s.bare.git("rev-parse", "\(w2.commit!)^") == theirs, "committed on top of the remote's commit")
    #expect(w1.commit != theirs)
  }

  @Test("without push, status commits stay in the mirror")
  func statusLocalOnly() async throws {
    let s = try Scratch()
    try s.repo.commit("one", files: ["a.yaml": channelYAML("a")])
    let src = try s.source()
    _ = await src.sync()
    let w = try await src.writeStatus(["summary.yaml": Array("n: 1\n".utf8)], push: false)
    #expect(w.committed && !w.pushed)
    #expect(try s.repo.git("branch", "--list", "ytempire/status").isEmpty, "nothing written to the source")
    #expect(throws: GitError.self) { try src.mirror.writeStatus(["../escape": []], push: false) }
  }

  @Test("a ref lock a killed process left in the mirror does not block the next status commit")
  func staleRefLock() async throws {
    let s = try Scratch()
    try s.repo.commit("one", files: ["a.yaml": channelYAML("a")])
    let src = try s.source()
    _ = await src.sync()
    #expect(try await src.writeStatus(["summary.yaml": Array("n: 1\n".utf8)], push: false).committed)
    // What libgit2 leaves when the process dies between writing the lock and renaming it.
    let lock = src.mirror.path + "/refs/ytempire/status/ytempire/status.lock"
    #expect(FileManager.default.createFile(atPath: lock, contents: Data("0000\n".utf8)))
    let w = try await src.writeStatus(["summary.yaml": Array("n: 2\n".utf8)], push: false)
    #expect(w.committed)
    #expect(!FileManager.default.fileExists(atPath: lock))
  }

  @Test("unreachable remote: the error is reported and the last good revision stays in use")
  func unreachable() async throws {
    let s = try Served()
    let src = try s.scratch.source(s.url)
    let good = try #require(await src.sync().revision)
    s.daemon.stop()
    let r = await src.sync(lastApplied: good)
    #expect(r.error?.code == .unreachable)
    #expect(r.revision == good)
    #expect(src.lastGoodRevision == good)
    // Never reachable: a closed port, with no previous revision.
    let port = try Processes.freePort()
    let never = try s.scratch.source("git://127.0.0.1:\(port)/x.git")
    let start = ContinuousClock.now
    let r2 = await never.sync()
    #expect(r2.error?.code == .unreachable)
    #expect(r2.revision == nil)
    #expect(ContinuousClock.now - start < .seconds(60))  // refused, not hung
  }

  @Test("credentials never appear in errors")
  func tokenRedaction() async throws {
    let s = try Scratch()
    let port = try Processes.freePort()
    let token = "ghp_SuperSecretToken123"
    let src = try GitSource(GitSourceConfig(url: "https://bot:\(token)@127.0.0.1:\(port)/x.git", stateDir: s.stateDir, auth: .token(token)))
    let r = await src.sync()
    let e = try #require(r.error)
    #expect(!e.message.contains(token))
    #expect(!"\(e)".contains(token))
    #expect(!src.mirror.path.contains(token))
    #expect(!src.mirror.displayURL.contains(token))
  }

  @Test("a force-push to a non-descendant is refused unless allowRewrite is set")
  func forcePush() async throws {
    let s = try Served()
    let src = try s.scratch.source(s.url)
    let good = try #require(await src.sync().revision)
    let c2 = try s.push("two", files: ["b.yaml": channelYAML("b")])
    let applied = try #require(await src.sync(lastApplied: good).revision)
    #expect(applied.commit == c2)
    // Rewrite history: reset to the first commit and make a different one.
    try s.scratch.repo.git("reset", "-q", "--hard", good.commit)
    let rewritten = try s.push("rewritten", files: ["c.yaml": channelYAML("c")], force: true)
    let refused = await src.sync(lastApplied: applied)
    #expect(refused.error?.code == .historyRewritten)
    #expect(refused.revision == applied, "the last applied revision stays in use")
    #expect(refused.latest?.commit == rewritten)
    #expect(refused.error?.message.contains("allowRewrite") == true)

    let permissive = try s.scratch.source(s.url, allowRewrite: true)
    let accepted = await permissive.sync(lastApplied: applied)
    #expect(accepted.error == nil)
    #expect(accepted.rewriteAccepted)
    #expect(accepted.revision?.commit == rewritten)
  }

  @Test("a corrupted mirror is detected and cloned again")
  func corruptedMirror() async throws {
    let s = try Scratch()
    let c1 = try s.repo.commit("one", files: ["a.yaml": channelYAML("a")])
    let src = try s.source()
    #expect(await src.sync().revision?.commit == c1)
    // Objects gone, refs intact.
    let objects = src.mirror.path + "/objects"
    for d in try FileManager.default.contentsOfDirectory(atPath: objects) where d != "info" {
      try FileManager.default.removeItem(atPath: objects + "/" + d)
    }
    let r = await src.sync()
    #expect(r.error == nil, "\(String(describing: r.error))")
    #expect(r.recloned)
    #expect(r.revision?.commit == c1)
    #expect(try src.manifestsBlocking(at: r.revision!).displayPaths == ["a.yaml"])
    // Unopenable mirror (garbage HEAD and config).
    try Data("garbage".utf8).write(to: URL(fileURLWithPath: src.mirror.path + "/HEAD"))
    try Data("[[[".utf8).write(to: URL(fileURLWithPath: src.mirror.path + "/config"))
    let r2 = await src.sync()
    #expect(r2.error == nil, "\(String(describing: r2.error))")
    #expect(r2.recloned)
    #expect(r2.revision?.commit == c1)
  }

  @Test("a server that accepts but never answers is cut off at the transfer deadline")
  func stalledServer() async throws {
    let s = try Scratch()
    let listener = try SilentListener()
    defer { listener.close() }
    let port = listener.port
    let src = try s.source("git://127.0.0.1:\(port)/x.git", timeouts: GitTimeouts(connect: .milliseconds(500), transfer: .seconds(1)))
    let start = ContinuousClock.now
    let r = await src.sync()
    let took = ContinuousClock.now - start
    #expect(r.error?.code == .timeout, "\(String(describing: r.error))")
    #expect(r.revision == nil)
    // Deadline: connect 0.5 s + transfer 1 s + 1 s grace = 2.5 s. The bug was a sync still
    // running after 400 s; the bound is generous because the whole suite loads 2 cores.
    #expect(took < .seconds(120), "\(took)")
    #expect(took >= .milliseconds(1400), "cut off by the deadline, not by an early failure")
  }

  /// One run of the recovery scenario; false when the port was taken from under it.
  static func recoveryScenario(s: Scratch, served: String, c1: String) async throws -> Bool {
    let silent = try SilentListener()
    let (listener, port) = (silent.fd, silent.port)
    var accepted: [Int32] = []
    defer { for fd in accepted { close(fd) } }
    // Generous: the second sync is a real fetch, on a machine the rest of the suite loads.
    let timeouts = GitTimeouts(connect: .seconds(2), transfer: .seconds(8))
    let deadline = timeouts.connect + timeouts.transfer + .seconds(1)  // sync's own deadline
    let src = try s.source("git://127.0.0.1:\(port)/empire.git", timeouts: timeouts)
    let r1 = await src.sync()
    #expect(r1.error?.code == .timeout, "\(String(describing: r1.error))")
    #expect(r1.revision == nil)

    // Take the stuck connections off the listener and keep them open and silent (closing
    // the listener with them still queued would reset them and unblock the client), then
    // serve the port with a real git daemon.
    _ = fcntl(listener, F_SETFL, fcntl(listener, F_GETFL, 0) | O_NONBLOCK)
    while true {
      let fd = accept(listener, nil, nil)
      if fd < 0 { break }
      accepted.append(fd)
    }
    close(listener)
    let execPath = try Processes.run(["git", "--exec-path"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    let daemon = try Processes.start([
      execPath + "/git-daemon", "--reuseaddr", "--base-path=\(served)", "--export-all",
      "--listen=127.0.0.1", "--port=\(port)", served,
    ])
    defer { daemon.stop(grace: 1) }
    let up = ContinuousClock.now + .seconds(20)
    while ContinuousClock.now < up && daemon.isRunning && !Processes.accepts(port: port) { try await Task.sleep(for: .milliseconds(20)) }
    if !daemon.isRunning { return false }  // it could not bind: someone else has the port
    try #require(Processes.accepts(port: port), "git daemon did not start on port \(port)")

    // The source is not wedged: the next sync is not a timeout. (A freshly started git
    // daemon on a loaded machine may reset the very first connection; a reconciler polls
    // again, and so does the test, at most twice more.)
    var attempts: [(SyncResult, Duration)] = []
    for _ in 0..<3 {
      let start = ContinuousClock.now
      let r = await src.sync()
      attempts.append((r, ContinuousClock.now - start))
      #expect(r.error?.code != .timeout, "\(String(describing: r.error))")
      if r.error == nil { break }
    }
    let (r2, took) = try #require(attempts.last)
    if r2.error != nil && !daemon.isRunning { return false }
    #expect(r2.error == nil, "\(String(describing: r2.error))")
    #expect(r2.revision?.description == "main@sha1:\(c1)")
    #expect(src.lastGoodRevision?.commit == c1)
    // Finished on its own, not cut off at (or queued behind) anything: well before 3× its deadline.
    #expect(took < deadline * 3, "\(took)")
    let tree = try await src.manifests(at: try #require(r2.revision))
    #expect(tree.displayPaths == ["channels/a.yaml"])
    return true
  }

  @Test("blocking work abandoned at its deadline is interrupted, so the queue serves the next call")
  func abandonedWorkIsInterrupted() async throws {
    let queue = DispatchQueue(label: "test.interrupt")
    var fds: [Int32] = [0, 0]
    #expect(pipe(&fds) == 0)
    defer {
      close(fds[0])
      close(fds[1])
    }
    let readFD = fds[0]
    let outcome = Mutex<(returned: Bool, errno: Int32)>((false, 0))
    let start = ContinuousClock.now
    // A read from a pipe nobody writes to blocks forever unless interrupted.
    let r = await GitSource.run(on: queue, timeout: .milliseconds(300)) { (_) throws(GitError) -> Int in
      var byte: UInt8 = 0
      let n = read(readFD, &byte, 1)
      let e = errno
      outcome.withLock { $0 = (true, n < 0 ? e : 0) }
      return n
    }
    guard case .failure(let e) = r else {
      Issue.record("finished instead of timing out: \(r)")
      return
    }
    #expect(e.code == .timeout)
    // The next call on the same queue runs as soon as the interrupted one has unwound.
    let next = await GitSource.run(on: queue, timeout: .seconds(30)) { (_) throws(GitError) -> String in "next" }
    #expect(try next.get() == "next")
    #expect(ContinuousClock.now - start < .seconds(60), "interrupted and unwound, not left blocked")
    let o = outcome.withLock { $0 }
    #expect(o.returned)
    #expect(o.errno == EINTR, "the blocking read failed with EINTR: \(o.errno)")

    // Work that had not started when it was abandoned is skipped.
    let gate = DispatchSemaphore(value: 0)
    let ran = Mutex(false)
    queue.async { gate.wait() }
    let skipped = await GitSource.run(on: queue, timeout: .milliseconds(100)) { (_) throws(GitError) -> Int in
      ran.withLock { $0 = true }
      return 1
    }
    #expect((try? skipped.get()) == nil)
    gate.signal()
    let after = await GitSource.run(on: queue, timeout: .seconds(30)) { (_) throws(GitError) -> Int in 2 }
    #expect(try after.get() == 2)
    #expect(!ran.withLock { $0 }, "abandoned before it started: never run")
  }

  @Test("http(s): the token goes through the credentials callback; a wrong or missing token is an authentication error")
  func httpToken() async throws {
    let s = try Scratch()
    let c1 = try s.repo.commit("one", files: ["a.yaml": channelYAML("a")])
    let served = s.dir.sub("http")
    let token = "tok_\(UUID().uuidString)"
    let server = try GitHTTPServer.serving(s.repo.path, at: served, token: token)
    defer { server.stop() }
    func source(_ auth: GitAuth, state: String) throws -> GitSource {
      try GitSource(GitSourceConfig(url: server.url("empire.git"), stateDir: s.dir.sub(state), auth: auth))
    }
    let ok = try source(.token(token), state: "ok")
    let r = await ok.sync()
    #expect(r.error == nil, "\(String(describing: r.error))")
    #expect(r.revision?.description == "main@sha1:\(c1)")
    let w = try await ok.writeStatus(["summary.yaml": Array("ok: true\n".utf8)], push: true)
    #expect(w.pushed)
    #expect(try GitFixture(path: served + "/empire.git").head("refs/heads/ytempire/status") == w.commit)

    let wrong = await (try source(.token("tok_wrong_value"), state: "wrong")).sync()
    #expect(wrong.error?.code == .authentication, "\(String(describing: wrong.error))")
    #expect(wrong.error?.message.contains("tok_wrong_value") == false)
    let none = await (try source(.none, state: "none")).sync()
    #expect(none.error?.code == .authentication, "\(String(describing: none.error))")
  }

  @Test("credentials go only to the configured host, and a token only over TLS unless the host is loopback")
  func credentialsStayWithTheirHost() throws {
    let origin = try GitURL("https://git.example.com/acme/empire.git")
    let ctx = CallbackContext(auth: .token("tok_secret"), url: origin, timeouts: GitTimeouts())
    #expect(ctx.refusal(try GitURL("https://git.example.com/acme/empire.git/info/refs")) == nil)
    #expect(
      ctx.refusal(try GitURL("https://evil.example.net/empire.git"))?.contains("is not the configured host git.example.com:443") == true)
    #expect(ctx.refusal(try GitURL("https://git.example.com:8443/empire.git")) != nil)
    let plain = CallbackContext(auth: .token("tok_secret"), url: try GitURL("http://git.example.com/empire.git"), timeouts: GitTimeouts())
    #expect(plain.refusal(try GitURL("http://git.example.com/empire.git"))?.contains("not sent over plain http://") == true)
    let local = CallbackContext(auth: .token("tok_secret"), url: try GitURL("http://127.0.0.1:8080/empire.git"), timeouts: GitTimeouts())
    #expect(local.refusal(try GitURL("http://127.0.0.1:8080/empire.git")) == nil)
    // Secrets in a URL's query, fragment or userinfo never reach messages (nor mirror names, which use the display form).
    #expect(
      Redaction.scrub("fetch https://u:pw@h.example/x.git?token=abc#f failed", urls: true)
        == "fetch https://[redacted]@h.example/x.git?[redacted] failed")
    #expect(try GitURL("http://h.example/x.git?token=abc").display == "http://h.example/x.git?[redacted]")
    // Loopback is an address, not a prefix: a name starting with "127." gets no token over http://.
    let lookalike = CallbackContext(
      auth: .token("tok_secret"), url: try GitURL("http://127.0.0.1.evil.example/empire.git"), timeouts: GitTimeouts())
    #expect(lookalike.refusal(try GitURL("http://127.0.0.1.evil.example/empire.git"))?.contains("not sent over plain http://") == true)
  }

  @Test("a redirect to another host (here: another port) gets no token: authentication refused, the token never printed")
  func noTokenAfterRedirect() async throws {
    let s = try Scratch()
    _ = try s.repo.commit("one", files: ["a.yaml": channelYAML("a")])
    let served = s.dir.sub("http")
    let token = "tok_\(UUID().uuidString)"
    let target = try GitHTTPServer.serving(s.repo.path, at: served, token: token)
    defer { target.stop() }
    let redirector = try await HTTPTestServer.start()
    redirector.route(
      "/empire.git/info/refs", .text(302, "", headers: [("Location", target.url("empire.git") + "/info/refs?service=git-upload-pack")]))
    let src = try GitSource(GitSourceConfig(url: redirector.baseURL + "/empire.git", stateDir: s.dir.sub("state"), auth: .token(token)))
    let r = await src.sync()
    try await redirector.shutdown()
    #expect(r.revision == nil)
    let e = try #require(r.error)
    #expect(e.code == .authentication, "\(e)")
    #expect(e.message.contains("is not the configured host"), "\(e.message)")
    #expect(!e.message.contains(token))
    #expect(redirector.hits("/empire.git/info/refs") >= 1)
  }

  @Test("a damaged pack found while reading blobs triggers a fresh clone and the read succeeds")
  func damagedPackOnRead() async throws {
    let s = try Scratch()
    var files: [String: String] = [:]
    for i in 0..<50 { files["c\(i).yaml"] = channelYAML("c\(i)") }
    try s.repo.commit("one", files: files)
    try s.repo.git("gc", "-q")
    let src = try s.source()
    let rev = try #require(await src.sync().revision)
    let packDir = src.mirror.path + "/objects/pack"
    let pack = try #require(try FileManager.default.contentsOfDirectory(atPath: packDir).first { $0.hasSuffix(".pack") })
    // Overwrite the body of the pack (same size) with zeros: every object fails to inflate.
    let h = try FileHandle(forUpdating: URL(fileURLWithPath: packDir + "/" + pack))
    let size = try h.seekToEnd()
    try h.seek(toOffset: 12)
    try h.write(contentsOf: Data(count: Int(size) - 12 - 20))
    try h.close()
    let tree = try await src.manifests(at: rev)
    #expect(tree.sources.count == 50)
    #expect(tree.text("c7.yaml") == channelYAML("c7"))
    #expect(FileManager.default.fileExists(atPath: src.mirror.path + ".corrupt"), "the damaged mirror is kept aside")
  }

  @Test(
    "ssh://: key authentication and known_hosts checking against a real sshd; unknown host refused; explicit opt-out",
    .enabled(if: SSHServer.isAvailable, "needs /usr/sbin/sshd (openssh-server; make test installs it)"))
  func sshTransport() async throws {
    let s = try Scratch()
    let c1 = try s.repo.commit("one", files: ["a.yaml": channelYAML("a")])
    let bare = s.dir.sub("ssh/empire.git")
    try Processes.run(["git", "clone", "-q", "--bare", s.repo.path, bare])
    let keys = s.dir.sub("keys")
    try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
    try Processes.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keys + "/id"])
    try Processes.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keys + "/stranger"])
    let server = try SSHServer(directory: keys, authorizedKey: try String(contentsOfFile: keys + "/id.pub", encoding: .utf8))
    defer { server.stop() }
    let knownHosts = keys + "/known_hosts"
    try (server.knownHostsLine + "\n").write(toFile: knownHosts, atomically: true, encoding: .utf8)
    func source(_ auth: GitAuth, _ state: String) throws -> GitSource {
      try GitSource(GitSourceConfig(url: server.url(bare), stateDir: s.dir.sub(state), auth: auth))
    }

    let ok = await (try source(.sshKey(privateKey: keys + "/id", knownHosts: knownHosts), "ok")).sync()
    #expect(ok.error == nil, "\(String(describing: ok.error))")
    #expect(ok.revision?.description == "main@sha1:\(c1)")

    let emptyKnown = keys + "/empty_known_hosts"
    try "".write(toFile: emptyKnown, atomically: true, encoding: .utf8)
    let unknown = await (try source(.sshKey(privateKey: keys + "/id", knownHosts: emptyKnown), "unknown")).sync()
    #expect(unknown.error?.code == .hostKey, "\(String(describing: unknown.error))")
    #expect(unknown.revision == nil)

    let optOut = await (try source(.sshKey(privateKey: keys + "/id", knownHosts: nil, insecureSkipHostKeyCheck: true), "optout")).sync()
    #expect(optOut.error == nil, "\(String(describing: optOut.error))")

    let stranger = await (try source(.sshKey(privateKey: keys + "/stranger", knownHosts: knownHosts), "stranger")).sync()
    #expect(stranger.error?.code == .authentication, "\(String(describing: stranger.error))")
  }
}
