import EmpireModel
import Foundation
import TestSupport
import Testing

@testable import GitKit

@Suite("GitKit tree reads and diffs")
struct TreeTests {
  @Test("manifests are read from the commit's tree under the path, honouring .ytempireignore at every level")
  func readsTreeWithIgnores() throws {
    let s = try Scratch()
    try s.repo.commit(
      "one",
      files: [
        "README.md": "not read",
        "outside.yaml": channelYAML("outside"),
        "deploy/.ytempireignore": "drafts/\n*.tmp.yaml\n",
        "deploy/channels/a.yaml": channelYAML("a"),
        "deploy/channels/b.yml": channelYAML("b"),
        "deploy/channels/x.tmp.yaml": "junk: [",
        "deploy/drafts/c.yaml": channelYAML("c"),
        "deploy/sub/.ytempireignore": "/only-here.yaml\n!keep.tmp.yaml\n",
        "deploy/sub/only-here.yaml": channelYAML("o"),
        "deploy/sub/keep.tmp.yaml": channelYAML("k"),
        "deploy/scripts/w.js": "x",
        "deploy/.hidden.yaml": "hidden",
      ])
    // The work tree has an uncommitted change that must not be seen.
    try s.repo.write(["deploy/channels/a.yaml": "uncommitted: ["])
    let m = try s.mirror()
    _ = try m.fetch()
    let rev = try m.resolve("main")
    let t = try m.readManifests(at: rev, options: TreeReadOptions(path: "./deploy/"))
    #expect(t.displayPaths == ["deploy/channels/a.yaml", "deploy/channels/b.yml", "deploy/sub/keep.tmp.yaml"])
    #expect(t.sources.map(\.relativePath).sorted() == ["channels/a.yaml", "channels/b.yml", "sub/keep.tmp.yaml"])
    #expect(t.text("deploy/channels/a.yaml") == channelYAML("a"))
    #expect(t.files.contains("scripts/w.js"))
    #expect(!t.files.contains("drafts/c.yaml"))
    #expect(t.diagnostics.isEmpty)
    let report = ManifestLoader.validate(t.sources, extraDiagnostics: t.diagnostics)
    #expect(report.resources.count == 3)

    let whole = try m.readManifests(at: rev)
    #expect(whole.displayPaths.contains("outside.yaml"))
    let missing = try m.readManifests(at: rev, options: TreeReadOptions(path: "nope"))
    #expect(missing.sources.isEmpty)
    #expect(missing.diagnostics.first?.code == "file-unreadable")
  }

  @Test("oversized blobs, symlinks and submodules are skipped with a diagnostic")
  func limitsSymlinksSubmodules() throws {
    let s = try Scratch()
    let other = try GitFixture.create(at: s.dir.sub("other"))
    let sub = try other.commit("sub", files: ["x.yaml": channelYAML("x")])
    try s.repo.write(["big.yaml": String(repeating: "# padding\n", count: 500), "ok.yaml": channelYAML("ok")])
    try FileManager.default.createSymbolicLink(atPath: s.repo.path + "/link.yaml", withDestinationPath: "ok.yaml")
    try s.repo.git("add", "-A")
    try s.repo.git("update-index", "--add", "--cacheinfo", "160000,\(sub),vendored")
    try s.repo.git("commit", "-q", "-m", "mixed")
    let m = try s.mirror()
    _ = try m.fetch()
    let t = try m.readManifests(at: try m.resolve(nil), options: TreeReadOptions(maxBlobSize: 1000))
    #expect(t.displayPaths == ["ok.yaml"])
    let byCode = Dictionary(grouping: t.diagnostics, by: \.code)
    #expect(byCode["file-too-large"]?.map(\.file) == ["big.yaml"])
    #expect(byCode["file-too-large"]?.first?.severity == .error)
    #expect(byCode["symlink-skipped"]?.map(\.file) == ["link.yaml"])
    #expect(byCode["submodule-skipped"]?.map(\.file) == ["vendored"])
    #expect(t.diagnostics.filter { $0.severity == .warning }.count == 2)
  }

  @Test("tree diff reports added, modified and deleted manifests under the path")
  func diffs() throws {
    let s = try Scratch()
    let c1 = try s.repo.commit(
      "one",
      files: [
        "deploy/a.yaml": channelYAML("a"), "deploy/b.yaml": channelYAML("b"), "deploy/c.yaml": channelYAML("c"),
        "elsewhere/z.yaml": channelYAML("z"), "deploy/notes.txt": "n",
      ])
    try s.repo.remove("deploy/b.yaml")
    let c2 = try s.repo.commit(
      "two",
      files: [
        "deploy/a.yaml": channelYAML("a", title: "A2"), "deploy/new/d.yaml": channelYAML("d"),
        "elsewhere/z.yaml": channelYAML("z", title: "Z2"), "deploy/notes.txt": "n2",
      ])
    let m = try s.mirror()
    _ = try m.fetch()
    let ch = try m.changes(from: c1, to: c2, options: TreeReadOptions(path: "deploy"))
    #expect(ch.added == ["deploy/new/d.yaml"])
    #expect(ch.modified == ["deploy/a.yaml"])
    #expect(ch.deleted == ["deploy/b.yaml"])
    #expect(ch.otherFilesChanged == ["deploy/notes.txt"])
    #expect(!ch.ignoreRulesChanged)
    #expect(try m.changes(from: c2, to: c2).isEmpty)
    let whole = try m.changes(from: c1, to: c2)
    #expect(whole.modified == ["deploy/a.yaml", "elsewhere/z.yaml"])

    // Ignored files do not count; an ignore-file change asks for a full read.
    let c3 = try s.repo.commit("three", files: ["deploy/.ytempireignore": "new/\n"])
    _ = try m.fetch()
    let ch3 = try m.changes(from: c2, to: c3, options: TreeReadOptions(path: "deploy"))
    #expect(ch3.ignoreRulesChanged)
    let c4 = try s.repo.commit("four", files: ["deploy/new/e.yaml": channelYAML("e"), "deploy/c.yaml": channelYAML("c", title: "C2")])
    _ = try m.fetch()
    let ch4 = try m.changes(from: c3, to: c4, options: TreeReadOptions(path: "deploy"))
    #expect(ch4.added.isEmpty, "deploy/new/ is ignored")
    #expect(ch4.modified == ["deploy/c.yaml"])
    // A manifest replaced by a symlink is deleted.
    try s.repo.remove("deploy/c.yaml")
    try FileManager.default.createSymbolicLink(atPath: s.repo.path + "/deploy/c.yaml", withDestinationPath: "a.yaml")
    let c5 = try s.repo.commit("five")
    _ = try m.fetch()
    #expect(try m.changes(from: c4, to: c5, options: TreeReadOptions(path: "deploy")).deleted == ["deploy/c.yaml"])
  }

  @Test("large trees are read in parallel, in tree order, with limits applied per blob")
  func parallelRead() throws {
    let s = try Scratch()
    var files: [String: String] = [:]
    for i in 0..<700 { files[String(format: "channels/ch-%04d.yaml", i)] = channelYAML(String(format: "ch-%04d", i)) }
    files["channels/ch-0350.yaml"] = String(repeating: "# big\n", count: 400)
    try s.repo.commit("many", files: files)
    let m = try s.mirror()
    _ = try m.fetch()
    let t = try m.readManifests(at: try m.resolve(nil), options: TreeReadOptions(maxBlobSize: 2000))
    #expect(t.sources.count == 699)
    #expect(t.sources.map(\.displayPath) == t.sources.map(\.displayPath).sorted(), "tree order is kept")
    #expect(t.diagnostics.map(\.file) == ["channels/ch-0350.yaml"])
    #expect(t.text("channels/ch-0699.yaml") == channelYAML("ch-0699"))
    #expect(t.text("channels/ch-0000.yaml") == channelYAML("ch-0000"))
  }
}
