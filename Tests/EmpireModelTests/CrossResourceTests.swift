import Foundation
import Testing
import Workspace

@testable import EmpireModel

@Suite("Cross-resource rules")
struct CrossResourceTests {
  static let chains = """
    apiVersion: ytempire.io/v1
    kind: ProviderChain
    metadata: {name: llm}
    spec:
      capability: llm
      providers: [{name: openai, endpoint: "https://api.openai.com/v1", weight: 1, rateLimit: openai-api}]
    ---
    apiVersion: ytempire.io/v1
    kind: ProviderChain
    metadata: {name: tts}
    spec:
      capability: tts
      providers: [{name: eleven, endpoint: "https://api.elevenlabs.io/v1", weight: 1}]
    """

  static func youtubeLimit(units: Int = 10000, reserved: Int = 3000, emergency: Int = 1000) -> String {
    """
    apiVersion: ytempire.io/v1
    kind: RateLimit
    metadata: {name: youtube-api}
    spec:
      service: youtube
      quota: {units: \(units), reservedPerChannel: \(reserved), emergencyReserve: \(emergency)}
    """
  }

  func validate(_ files: [String: String]) throws -> ValidationReport {
    let dir = try Support.tempDir(files)
    defer { Support.cleanup(dir) }
    let r = ValidationRun.run(path: dir.path)
    // Diagnostics name files relative to what the user passed (or the directory itself).
    for d in r.diagnostics { #expect(d.file == dir.path || d.file.hasPrefix(dir.path + "/")) }
    return r
  }

  @Test func validRepositoryPasses() throws {
    let r = try validate([
      "chains.yaml": Self.chains,
      "limits/yt.yaml": Self.youtubeLimit(),
      "limits/openai.yaml": "apiVersion: ytempire.io/v1\nkind: RateLimit\nmetadata: {name: openai-api}\nspec: {service: openai}\n",
      "channels/a.yaml": Support.channel("a", share: 0.4, rateLimit: "youtube-api", providers: "{llm: llm, tts: tts}"),
      "channels/b.yaml": Support.channel("b", share: 0.3, rateLimit: "youtube-api"),
      "channels/c.yaml": Support.channel("c", share: 0.3, rateLimit: "youtube-api"),
    ])
    #expect(r.isValid, "\(r.diagnostics.map(\.rendered))")
    #expect(r.resources.count == 7)
  }

  @Test("dangling references are located at the reference, with a suggestion")
  func danglingReferences() throws {
    let r = try validate([
      "chains.yaml": Self.chains,
      "channels/a.yaml": Support.channel("a", rateLimit: "youtube", providers: "{llm: lm}"),
      "schedules/s.yaml":
        "apiVersion: ytempire.io/v1\nkind: Schedule\nmetadata: {name: s}\nspec:\n  workflow: analytics-collection\n  trigger: {every: 5m}\n  channels: [a, b]\n",
    ])
    let refs = r.errors.filter { $0.code == "unresolved-reference" }
    #expect(refs.count == 4, "\(r.errors.map(\.rendered))")  // lm, youtube, b, openai-api
    #expect(
      refs.contains {
        $0.message.contains("ProviderChain 'lm'") && $0.message.contains("did you mean 'llm'?") && $0.file.hasSuffix("channels/a.yaml")
          && $0.line == 13
      })
    #expect(refs.contains { $0.message.contains("Channel 'b'") && $0.line == 7 && $0.column == 17 })
    #expect(refs.contains { $0.message.contains("RateLimit 'openai-api'") && $0.file.hasSuffix("chains.yaml") })
  }

  @Test("duplicate names across files point at both definitions")
  func duplicateNames() throws {
    let r = try validate(["a.yaml": Support.channel("tech"), "b/c.yaml": Support.channel("tech")])
    let d = try #require(r.errors.first { $0.code == "duplicate-name" })
    #expect(d.file.hasSuffix("b/c.yaml"))
    #expect(d.line == 4)
    #expect(d.notes.first?.file.hasSuffix("/a.yaml") == true)
    // The same name in another kind is fine.
    let ok = try validate([
      "a.yaml": Support.channel("tech"),
      "m.yaml": "apiVersion: ytempire.io/v1\nkind: Monitor\nmetadata: {name: tech}\nspec: {expr: up, severity: info, summary: s}\n",
    ])
    #expect(ok.isValid)
  }

  @Test func wrongCapability() throws {
    let r = try validate(["chains.yaml": Self.chains, "a.yaml": Support.channel("a", providers: "{llm: tts}")])
    #expect(r.codes.contains("wrong-capability"))
    #expect(r.errors.first { $0.code == "wrong-capability" }?.message.contains("capability is tts, not llm") == true)
  }

  @Test("quotaShare of active channels must add up to at most 1; inactive channels do not count")
  func quotaShare() throws {
    let over = try validate([
      "a.yaml": Support.channel("a", share: 0.4), "b.yaml": Support.channel("b", share: 0.4), "c.yaml": Support.channel("c", share: 0.4),
    ])
    let d = try #require(over.errors.first { $0.code == "quota-share-exceeded" })
    #expect(d.message.contains("adds up to 1.2 over 3 channels"))
    #expect(d.file.hasSuffix("c.yaml") && d.line == 10)
    let inactive = try validate([
      "a.yaml": Support.channel("a", share: 0.4), "b.yaml": Support.channel("b", share: 0.4),
      "c.yaml": Support.channel("c", share: 0.4, active: false),
    ])
    #expect(inactive.isValid)
    // Ten channels of 0.1 add up to exactly 1 despite floating point.
    var files: [String: String] = [:]
    for i in 0..<10 { files["c\(i).yaml"] = Support.channel("c\(i)", share: 0.1) }
    #expect(try validate(files).isValid)
  }

  @Test("reserves per channel plus the emergency reserve must fit the quota")
  func reserves() throws {
    var files = ["yt.yaml": Self.youtubeLimit()]
    for n in ["a", "b", "c"] { files["\(n).yaml"] = Support.channel(n, share: 0.2, rateLimit: "youtube-api") }
    #expect(try validate(files).isValid)  // 3 × 3000 + 1000 = 10000
    files["d.yaml"] = Support.channel("d", share: 0.2, rateLimit: "youtube-api")
    let r = try validate(files)
    let d = try #require(r.errors.first { $0.code == "quota-reserve-exceeded" })
    #expect(d.message.contains("each of its 4 active channels"))
    #expect(d.message.contains("13000 units, more than its quota of 10000"))
    #expect(d.file.hasSuffix("yt.yaml") && d.line == 6)
  }

  @Test("a channel selector that matches nothing is a warning, not an error")
  func selectorWarning() throws {
    let r = try validate([
      "a.yaml": Support.channel("a", labels: "{niche: tech}"),
      "s.yaml":
        "apiVersion: ytempire.io/v1\nkind: Schedule\nmetadata: {name: s}\nspec:\n  workflow: analytics-collection\n  trigger: {every: 5m}\n  channelSelector: {matchLabels: {niche: food}}\n",
      "t.yaml":
        "apiVersion: ytempire.io/v1\nkind: Schedule\nmetadata: {name: t}\nspec:\n  workflow: analytics-collection\n  trigger: {every: 5m}\n  channelSelector: {matchLabels: {niche: tech}}\n",
    ])
    #expect(r.isValid)
    #expect(r.warningCount == 1)
    #expect(r.diagnostics.first { $0.code == "selector-matches-nothing" }?.file.hasSuffix("s.yaml") == true)
  }

  @Test("workflow files and worker scripts must exist; zones are managed once")
  func filesAndZones() throws {
    let zone = { (name: String) in
      "apiVersion: ytempire.io/v1\nkind: CDNZone\nmetadata: {name: \(name)}\nspec:\n  provider: cloudflare\n  zone: example.com\n  type: pull\n  origin: https://o.example.com\n  workers: [{name: w, route: \"example.com/v/*\", scriptFile: workers/w.js}]\n"
    }
    let r = try validate([
      "a.yaml": Support.channel("a"),
      "s.yaml":
        "apiVersion: ytempire.io/v1\nkind: Schedule\nmetadata: {name: s}\nspec:\n  workflowFile: workflows/missing.json\n  trigger: {cron: \"*/5 * * * *\"}\n  channels: [a]\n",
      "z1.yaml": zone("z1"),
      "z2.yaml": zone("z2"),
      "workers/w.js": "addEventListener('fetch', e => {})\n",
    ])
    #expect(r.errors.filter { $0.code == "missing-file" }.count == 1)
    #expect(r.errors.contains { $0.code == "duplicate-zone" && $0.file.hasSuffix("z2.yaml") && $0.line == 6 })
  }

  @Test("an active schedule that targets an inactive channel is a warning")
  func inactiveTarget() throws {
    let schedule =
      "apiVersion: ytempire.io/v1\nkind: Schedule\nmetadata: {name: s}\nspec:\n  workflow: analytics-collection\n  trigger: {every: 5m}\n  channels: [a, b]\n"
    let r = try validate(["a.yaml": Support.channel("a"), "b.yaml": Support.channel("b", active: false), "s.yaml": schedule])
    #expect(r.isValid)
    let w = try #require(r.diagnostics.first { $0.code == "inactive-reference" })
    #expect(w.severity == .warning)
    #expect(w.message.contains("Channel 'b', which is not active"))
    #expect(w.file.hasSuffix("s.yaml") && w.line == 7 && w.column == 17)
    // An inactive schedule may target inactive channels without a warning.
    let quiet = try validate([
      "b.yaml": Support.channel("b", active: false),
      "s.yaml": schedule.replacingOccurrences(of: "channels: [a, b]", with: "channels: [b]\n  active: false"),
    ])
    #expect(quiet.diagnostics.isEmpty, "\(quiet.diagnostics.map(\.rendered))")
  }

  @Test("a directory without manifests is a warning, not a silent success")
  func emptyDirectory() throws {
    let r = try validate(["README.md": "# nothing here\n"])
    #expect(r.isValid)
    #expect(r.diagnostics.map(\.code) == ["no-resources"])
    #expect(r.diagnostics.first?.severity == .warning)
  }

  @Test("more manifests than the limit is an error naming the first one left out")
  func tooManyFiles() throws {
    let dir = try Support.tempDir(["a.yaml": Support.channel("a"), "b.yaml": Support.channel("b"), "c.yaml": Support.channel("c")])
    defer { Support.cleanup(dir) }
    let listing = DirectorySource.list(root: dir.path, displayRoot: "", maxFiles: 2)
    #expect(listing.sources.map(\.relativePath) == ["a.yaml", "b.yaml"])
    #expect(listing.diagnostics.map(\.code) == ["too-many-files"])
    #expect(listing.diagnostics.first?.file == "c.yaml")
  }

  @Test(".ytempireignore uses gitignore syntax, at any level")
  func ignoreFiles() throws {
    let bad = "this: is: not yaml\n"
    let r = try validate([
      ".ytempireignore": "# drafts are not applied\ndrafts/\n*.tmp.yaml\n!keep.tmp.yaml\n/rooted.yaml\n",
      "drafts/x.yaml": bad,
      "a/b.tmp.yaml": bad,
      "keep.tmp.yaml": Support.channel("keep", share: 0.1),
      "rooted.yaml": bad,
      "sub/rooted.yaml": Support.channel("sub", share: 0.1),
      "sub/.ytempireignore": "local-*.yaml\n",
      "sub/local-1.yaml": bad,
    ])
    #expect(r.isValid, "\(r.diagnostics.map(\.rendered))")
    #expect(Set(r.resources.map(\.name)) == ["keep", "sub"])
  }

  @Test func ignoreRuleMatching() {
    let rules = IgnoreRules(parsing: "**/gen/**\nbuild/\n*.bak\n!important.bak\ndocs/*.yaml\n[abc]?.yaml\n")
    #expect(rules.isIgnored("x/gen/y/z.yaml", isDirectory: false))
    #expect(rules.isIgnored("gen/z.yaml", isDirectory: false))
    #expect(rules.isIgnored("build", isDirectory: true))
    #expect(!rules.isIgnored("build", isDirectory: false))
    #expect(rules.isIgnored("deep/a.bak", isDirectory: false))
    #expect(!rules.isIgnored("important.bak", isDirectory: false))
    #expect(rules.isIgnored("docs/x.yaml", isDirectory: false))
    #expect(!rules.isIgnored("docs/sub/x.yaml", isDirectory: false))
    #expect(rules.isIgnored("b1.yaml", isDirectory: false))
    #expect(!rules.isIgnored("d1.yaml", isDirectory: false))
  }
}
