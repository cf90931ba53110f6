import EmpireModel
import Foundation
import Testing
@testable import GitKit
import TestSupport

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
        do { _ = try m.resolve("refs/pull/7/head"); Issue.record("refs/pull should not be mirrored") } catch { #expect(error.code == .notFound) }
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
        #expect(Redactor.redact("fetch https://x:tok@h/p failed; token abcd1234 leaked", secrets: ["abcd1234"])
                == "fetch https://***@h/p failed; token *** leaked")
    }
}
