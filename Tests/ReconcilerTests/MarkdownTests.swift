import DriverKit
import EmpireModel
import Foundation
import Reconciler
import TestSupport
import Testing

/// `plan --output markdown` is inert (DESIGN A10): hostile values from the repository or an API,
/// rendered by GitHub's own renderer (Debian's cmark-gfm with GitHub's extensions and raw HTML
/// allowed, the worst case), make no element and no table cell; each shows verbatim as code.
@Suite struct InertMarkdownTests {
  static let hostile: [String] = [
    "[x](https://evil.example/phish)", "https://evil.example/bare", "www.evil.example", "mail@evil.example",
    "<https://evil.example/auto>", "**bold** and _em_ and *em*", "~~struck~~", "# heading", "line\n# heading\n---",
    "![img](https://evil.example/i.png)", "<script>alert(1)</script>", "<a href=\"https://evil.example\">x</a>",
    "<img src=x onerror=alert(1)>", "`", "a``b", "```x```", "````", "`````y`````", "` leading backtick", "trailing backtick `",
    " spaced both sides ", "a|b|c", "|", "x\\|y", "\\", "cell | split\n| x | y |\n|---|---|", "&lt;b&gt; &amp; &#60;i&#62;",
    "two\n\nparagraphs", "<br>", "\r\n", "[ref]: https://evil.example/ref", "> quote", "- item", "1. item", "    indented code",
  ]

  /// cmark-gfm as GitHub runs it, without its sanitiser: `--unsafe` keeps raw HTML.
  static func render(_ markdown: String) throws -> String {
    let r = try Processes.run(
      ["cmark-gfm", "--unsafe", "-e", "table", "-e", "autolink", "-e", "strikethrough", "-e", "tagfilter"],
      stdin: markdown, timeout: 120)
    return r.stdout
  }

  static func html(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
  }

  /// The text of every `<code>` element, and the HTML with those texts emptied.
  static func splitCode(_ html: String) -> (codes: [String], rest: String) {
    var codes: [String] = []
    var rest = ""
    var s = Substring(html)
    while let open = s.range(of: "<code>") {
      rest += s[..<open.upperBound]
      s = s[open.upperBound...]
      guard let close = s.range(of: "</code>") else { break }
      codes.append(String(s[..<close.lowerBound]))
      s = s[close.lowerBound...]
    }
    return (codes, rest + s)
  }

  static func tags(_ html: String) -> [String] {
    var out: [String] = []
    var s = Substring(html)
    while let lt = s.firstIndex(of: "<") {
      s = s[s.index(after: lt)...]
      let name = s.prefix { $0.isLetter || $0.isNumber }
      if !name.isEmpty { out.append(name.lowercased()) }
    }
    return out
  }

  static func plan(_ values: [String]) -> Plan {
    var actions: [Plan.PlannedAction] = []
    var resources: [Plan.ResourceChange] = []
    for (i, v) in values.enumerated() {
      let id = ResourceID(.channel, "c\(i)\(v)")
      let call = PlannedCall(service: "youtube", operation: "playlists.\(v)", units: 50, quota: "q\(v)", channel: nil)
      let a = Action(
        driver: "youtube", resource: id, operation: .update, key: "playlist/\(v)", summary: "playlist \(v)",
        changes: [
          FieldChange(path: "playlists.\(v).title", old: .string(v), new: .string("new " + v)),
          FieldChange(path: v, old: nil, new: .array([.string(v)])),
        ],
        calls: [call])
      actions.append(
        Plan.PlannedAction(
          action: a, deferred: i % 3 == 0 ? Plan.Deferral(reason: .quota, message: "waits: \(v)", eta: nil) : nil,
          fromGit: true))
      resources.append(
        Plan.ResourceChange(
          id: id, change: .update, driftedFields: [v], driftReportOnly: i % 2 == 0, pruneHeld: [],
          drivers: ["youtube"], observationError: nil,
          findings: [Finding(condition: ConditionType("Cond\(v)"), reason: ConditionReason("R"), message: "finding \(v)")]))
    }
    return Plan(
      revision: "main@sha1:\(values.joined())", createdAt: Date(timeIntervalSince1970: 1_780_000_000), actions: actions,
      resources: resources,
      observation: Plan.Observation(observedNow: 1, fromStore: 0, oldestStoredAge: nil, refresh: "changed", calls: [], digest: "d"),
      quotas: [
        Plan.QuotaUse(
          rateLimit: "rl\(values.first ?? "")", service: "svc", units: 10000, observationUnits: 1, actionUnits: 50,
          deferredUnits: 0, available: 9000, resetsAt: nil),
        Plan.QuotaUse(
          rateLimit: "other", service: "svc", units: 10000, observationUnits: 0, actionUnits: 50,
          deferredUnits: 0, available: 9000, resetsAt: nil),
      ],
      unreconciled: values.map { Plan.Unreconciled(id: ResourceID(.monitor, $0), integration: "prometheus", reason: "no entry: \($0)") },
      safety: values.map { Plan.SafetyViolation(rule: "maxDeletePercent", message: "refused: \($0)") },
      targets: [], desiredDigests: [:], adopted: [:])
  }

  /// Elements the plan's own words make; nothing else may appear.
  static let skeleton: Set<String> = [
    "h3", "p", "strong", "table", "thead", "tbody", "tr", "th", "td", "code", "br", "ul", "li",
    "details", "summary", "sub", "blockquote",
  ]

  @Test func hostileValuesMakeNoMarkupAndNoCell() throws {
    for v in Self.hostile {
      let md = PlanRenderer.markdown(Self.plan([v]))
      let out = try Self.render(md)
      let (codes, rest) = Self.splitCode(out)
      let tags = Self.tags(rest)
      #expect(Set(tags).isSubset(of: Self.skeleton), "\(v.debugDescription): \(Set(tags).subtracting(Self.skeleton))\n\(md)")
      for bad in ["a", "img", "h1", "h2", "h4", "h5", "h6", "em", "del", "script", "hr", "pre", "ol", "input"] {
        #expect(!tags.contains(bad), "\(v.debugDescription) made <\(bad)>")
      }
      #expect(tags.count { $0 == "h3" } == 1)
      // The only emphasis is the plan's own: the summary line, "deferred", and the two list headings.
      #expect(tags.count { $0 == "strong" } == 4, "\(v.debugDescription)")
      #expect(tags.count { $0 == "ul" } == 3 && tags.count { $0 == "blockquote" } == 1, "\(v.debugDescription)")
      // One header row and one row per action, six cells each.
      #expect(tags.count { $0 == "tr" } == 2, "\(v.debugDescription)")
      #expect(tags.count { $0 == "td" } == 6 && tags.count { $0 == "th" } == 6, "\(v.debugDescription)\n\(md)\n\(out)")
      // Each value shows verbatim (control characters escaped as in text output), as code.
      let shown = Self.html(TextEscape.escape(v))
      for expected in [
        "playlist " + shown, "waits: " + shown, "finding " + shown, "no entry: " + shown, "refused: " + shown, "Monitor/" + shown,
        "Channel/c0" + shown, "youtube.playlists." + shown + ", 50 units", "rl" + shown, "main@sha1:" + shown, "Cond" + shown,
      ] {
        #expect(codes.contains(expected), "\(v.debugDescription): no <code>\(expected)</code> in\n\(out)")
      }
      #expect(codes.contains(Self.html(JSONValue.string(v).canonicalString)), "\(v.debugDescription)")
    }
  }

  @Test func allHostileValuesInOnePlanStillMakeOneRowPerAction() throws {
    let md = PlanRenderer.markdown(Self.plan(Self.hostile))
    let (_, rest) = Self.splitCode(try Self.render(md))
    let tags = Self.tags(rest)
    #expect(Set(tags).isSubset(of: Self.skeleton))
    #expect(tags.count { $0 == "tr" } == Self.hostile.count + 1)
    #expect(tags.count { $0 == "td" } == 6 * Self.hostile.count)
  }

  @Test func codeSpansAreFencedLongerThanAnyBacktickRunAndPaddedWhereCommonMarkStrips() {
    #expect(InertMarkdown.code("plain") == "`plain`")
    #expect(InertMarkdown.code("a``b") == "```a``b```")
    #expect(InertMarkdown.code("```x```") == "```` ```x``` ````")
    #expect(InertMarkdown.code("` leading") == "`` ` leading ``")
    #expect(InertMarkdown.code(" both ") == "`  both  `")
    #expect(InertMarkdown.code("x\ny") == "`x\\ny`")
    #expect(InertMarkdown.code("a|b") == "`a|b`")
    #expect(InertMarkdown.code("a|b", inTable: true) == "`a\\|b`")
    #expect(InertMarkdown.code("") == "`  `")
  }

  @Test func aPlanOfTheEngineShowsADescriptionAsCode() async throws {
    let rig = try Rig()
    let e = rig.engine()
    let summary = "\"see [the docs](https://evil.example) and **act now** | x\""
    let p = try await e.plan(try resources(memoryLimit() + monitor("a", summary: summary)), revision: "main@sha1:abc")
    let md = PlanRenderer.markdown(p)
    #expect(md.contains("| ➕ | `Monitor/a` | `memory` |"))
    let out = try Self.render(md)
    let (codes, rest) = Self.splitCode(out)
    #expect(Set(Self.tags(rest)).isSubset(of: Self.skeleton))
    #expect(codes.contains("&quot;see [the docs](https://evil.example) and **act now** | x&quot;"))
  }
}
