import Basics
import EmpireModel
import Foundation
import TestSupport
import Testing

@testable import GitKit

@Suite("GitKit mirror: fetch and resolve")
struct MirrorTests {
  @Test("a local path is mirrored bare under the state directory and refs resolve to main@sha1 revisions")
  func fetchLocalAndResolve() throws {
    let s = try Scratch()
    let c1 = try s.repo.commit("one", files: ["channels/a.yaml": channelYAML("a")])
    try s.repo.git("tag", "-a", "v1", "-m", "release 1")
    try s.repo.git("tag", "light")
    let c2 = try s.repo.commit("two", files: ["channels/b.yaml": channelYAML("b")])
    try s.repo.git("update-ref", "refs/pull/7/head", c1)

    let m = try s.mirror()
    let r = try m.fetch()
    #expect(r.remoteHead == "refs/heads/main")
    #expect(!r.recloned)
    #expect(m.path.hasPrefix(s.stateDir + "/git/mirrors/"))
    #expect(m.path.hasSuffix(".git"))
    #expect(FileManager.default.fileExists(atPath: m.path + "/HEAD"))
    #expect(!FileManager.default.fileExists(atPath: m.path + "/.git"), "the mirror is bare")

    #expect(try m.resolve(nil).description == "main@sha1:\(c2)")
    #expect(try m.resolve("main") == Revision(name: "main", reference: "refs/heads/main", commit: c2))
    #expect(try m.resolve("v1").description == "v1@sha1:\(c1)", "annotated tags peel to their commit")
    #expect(try m.resolve("light").commit == c1)
    #expect(try m.resolve("refs/tags/v1").commit == c1)
    #expect(try m.resolve("refs/heads/main").description == "main@sha1:\(c2)")
    #expect(try m.resolve(c1).description == "sha1:\(c1)")
    #expect(try m.resolve(String(c1.prefix(8))).commit == c1)
    #expect(throws: GitError.self) { try m.resolve("nope") }
    do { _ = try m.resolve("no-such-branch") } catch { #expect(error.code == .notFound) }
    // refs/pull/* is not mirrored (only heads and tags are fetched).
    do {
      _ = try m.resolve("refs/pull/7/head")
      Issue.record("refs/pull should not be mirrored")
    } catch { #expect(error.code == .notFound) }
  }

  @Test("fetch follows new commits, force-updates and prunes deleted branches; file:// works")
  func fetchUpdatesAndPrunes() throws {
    let s = try Scratch()
    try s.repo.commit("one", files: ["a.yaml": channelYAML("a")])
    try s.repo.git("branch", "feature")
    let m = try s.mirror("file://" + s.repo.path)
    _ = try m.fetch()
    #expect(try m.resolve("feature").name == "feature")
    try s.repo.git("branch", "-D", "feature")
    let c2 = try s.repo.commit("two", files: ["b.yaml": channelYAML("b")])
    let r = try m.fetch()
    #expect(r.updatedRefs.contains("refs/heads/main"))
    #expect(r.updatedRefs.contains("refs/heads/feature"))
    #expect(try m.resolve("main").commit == c2)
    #expect(throws: GitError.self) { try m.resolve("feature") }
  }

  @Test("the default ref follows the remote's HEAD branch")
  func remoteHeadBranch() throws {
    let s = try Scratch()
    try s.repo.commit("one")
    try s.repo.git("checkout", "-q", "-b", "trunk")
    let c = try s.repo.commit("two")
    let m = try s.mirror()
    _ = try m.fetch()
    #expect(try m.resolve(nil).description == "trunk@sha1:\(c)")
  }

  @Test("a missing local repository is reported, not crashed on")
  func missingRepository() throws {
    let s = try Scratch()
    let m = try s.mirror(s.dir.sub("does-not-exist"))
    #expect(throws: GitError.self) { try m.fetch() }
  }

  @Test("URLs: schemes, hosts, ports; credentials never shown")
  func urlParsing() throws {
    let u = try GitURL("https://user:s3cr3t-token@example.com:8443/acme/empire.git")
    #expect(u.scheme == .https)
    #expect(u.host == "example.com")
    #expect(u.port == 8443)
    #expect(!u.display.contains("s3cr3t"))
    #expect(u.isRemote)
    #expect(try GitURL("git://127.0.0.1/x").port == 9418)
    #expect(try GitURL("ssh://git@[::1]/x").host == "::1")
    #expect(try GitURL("ssh://git@host/x").port == 22)
    #expect(try !GitURL("file:///tmp/x").isRemote)
    #expect(try GitURL("rel/path", relativeTo: "/base").libgit2URL == "/base/rel/path")
    #expect(throws: GitError.self) { try GitURL("ftp://x/y") }
    #expect(throws: GitError.self) { try GitURL("git@github.com:acme/x.git") }
    #expect(
      Redaction.scrub("fetch https://x:tok@h/p failed; token abcd1234 leaked", secrets: ["abcd1234"], urls: true)
        == "fetch https://[redacted]@h/p failed; token [redacted] leaked")
    // A port that is no port is an error, not the scheme's default (it was, for 0 and for numbers too long for Int).
    for bad in ["http://h:0/x", "http://h:65536/x", "http://h:99999999999999999999/x", "http://h:http/x", "ssh://::1/x"] {
      #expect(throws: GitError.self, "\(bad)") { try GitURL(bad) }
    }
    #expect(try GitURL("https://h:/x").port == 443)
  }
}

@Suite("GitKit ssh host keys")
struct HostKeyTests {
  @Test("known_hosts lookup: plain and hashed entries, non-default ports, mismatches and unknown hosts")
  func knownHosts() throws {
    let dir = try TemporaryDirectory("gitkit-kh")
    try Processes.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir.sub("host")])
    try Processes.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir.sub("other")])
    let pub = try String(contentsOfFile: dir.sub("host.pub"), encoding: .utf8).split(separator: " ")
    let other = try String(contentsOfFile: dir.sub("other.pub"), encoding: .utf8).split(separator: " ")
    let kh = dir.sub("known_hosts")
    try "git.example.com \(pub[0]) \(pub[1])\n[git.example.com]:2222 \(pub[0]) \(pub[1])\n".write(
      toFile: kh, atomically: true, encoding: .utf8)
    let key = String(pub[1])
    let wrong = String(other[1])
    #expect(KnownHosts.check(file: kh, host: "git.example.com", port: 22, keyBase64: key) == .match)
    #expect(KnownHosts.check(file: kh, host: "git.example.com", port: 2222, keyBase64: key) == .match)
    #expect(KnownHosts.check(file: kh, host: "git.example.com", port: 22, keyBase64: wrong) == .mismatch)
    #expect(KnownHosts.check(file: kh, host: "evil.example.com", port: 22, keyBase64: key) == .unknown)
    try Processes.run(["ssh-keygen", "-q", "-H", "-f", kh])
    #expect(try !String(contentsOfFile: kh, encoding: .utf8).contains("git.example.com"), "hashed")
    #expect(KnownHosts.check(file: kh, host: "git.example.com", port: 22, keyBase64: key) == .match)
    #expect(KnownHosts.check(file: kh, host: "git.example.com", port: 22, keyBase64: wrong) == .mismatch)
  }

  @Test("the host key policy: known_hosts required unless explicitly skipped; failures become host-key errors")
  func hostKeyPolicy() throws {
    let dir = try TemporaryDirectory("gitkit-kh")
    try Processes.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir.sub("host")])
    let pub = try String(contentsOfFile: dir.sub("host.pub"), encoding: .utf8).split(separator: " ")
    let kh = dir.sub("known_hosts")
    try "[127.0.0.1]:2222 \(pub[0]) \(pub[1])\n".write(toFile: kh, atomically: true, encoding: .utf8)
    let url = try GitURL("ssh://git@127.0.0.1:2222/x.git")
    let key = String(pub[1])
    func ctx(_ auth: GitAuth) -> CallbackContext { CallbackContext(auth: auth, url: url, timeouts: GitTimeouts()) }

    #expect(ctx(.sshKey(privateKey: "k", knownHosts: kh)).checkHostKey(host: "127.0.0.1", keyBase64: key))
    let wrongKey = ctx(.sshKey(privateKey: "k", knownHosts: kh))
    #expect(!wrongKey.checkHostKey(host: "127.0.0.1", keyBase64: "AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOtherKey0"))
    #expect(wrongKey.hostKeyError?.contains("does not match") == true)
    #expect(wrongKey.error(-1, "fetch").code == .hostKey)
    let noFile = ctx(.sshKey(privateKey: "k", knownHosts: nil))
    #expect(!noFile.checkHostKey(host: "127.0.0.1", keyBase64: key))
    #expect(noFile.hostKeyError?.contains("opt out") == true)
    #expect(ctx(.sshKey(privateKey: "k", knownHosts: nil, insecureSkipHostKeyCheck: true)).checkHostKey(host: "127.0.0.1", keyBase64: nil))
    #expect(!ctx(.none).checkHostKey(host: "127.0.0.1", keyBase64: key))
    #expect(LibGit2.features.ssh, "libgit2 built with libssh2")
  }
}
