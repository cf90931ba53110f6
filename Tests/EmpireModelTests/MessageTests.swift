import Foundation
import Testing
import YAMLKit

@testable import EmpireModel

/// Issue item 9: messages that misled (a sum "adds up to 1" that does not, "the number .nan",
/// "write a number with a unit" for a duration that is only too large, a key with an invisible
/// character that reads like the right one), and item 8: YAML tags. Through the loader and decoder.
@Suite struct MessageTests {
  static func channel(_ name: String, limits: String = "{quotaShare: 0.1}", branding: String = "{title: T}") -> String {
    """
    apiVersion: ytempire.io/v1
    kind: Channel
    metadata: {name: \(name)}
    spec:
      youtube: {channelId: UCabcdefghijklmnopqrstuv, credentials: yt-\(name)}
      branding: \(branding)
      limits: \(limits)

    """
  }

  static func errorMessages(_ r: ValidationReport) -> [String] { r.errors.map(\.message) }

  // MARK: quotaShare sum

  @Test("a quotaShare sum of 1.0000001 prints that sum, not 1")
  func shareSumPrecision() throws {
    let r = Support.check(
      Self.channel("a", limits: "{quotaShare: 0.5}") + "---\n" + Self.channel("b", limits: "{quotaShare: 0.5000001}"), cross: true)
    let e = try #require(r.errors.first { $0.code == DiagnosticCode.quotaShareExceeded.rawValue }, "\(r.errors)")
    #expect(e.message.contains("adds up to 1.0000001 over 2 channels"), "\(e.message)")
    #expect(e.line == 15 && e.column == 24, "located at the share that passes 1: \(e.line):\(e.column)")
  }

  @Test("the sum is exact over the decimals written: 0.1 + 0.2 + 0.7 is 1 (allowed), 1.0000000001 is not")
  func shareSumIsExact() {
    let ok = Support.check(
      Self.channel("a", limits: "{quotaShare: 0.1}") + "---\n" + Self.channel("b", limits: "{quotaShare: 0.2}")
        + "---\n" + Self.channel("c", limits: "{quotaShare: 0.7}"), cross: true)
    #expect(!ok.has(.quotaShareExceeded), "\(ok.errors)")
    let over = Support.check(
      Self.channel("a", limits: "{quotaShare: 0.5}") + "---\n" + Self.channel("b", limits: "{quotaShare: 0.5000000001}"), cross: true)
    #expect(
      over.errors.contains { $0.code == DiagnosticCode.quotaShareExceeded.rawValue && $0.message.contains("adds up to 1.0000000001 ") },
      "\(over.errors)")
  }

  // MARK: NaN and infinity

  @Test(
    "NaN and infinity where a number is expected say they are not allowed",
    arguments: [
      (".nan", "NaN is not allowed"), (".NaN", "NaN is not allowed"),
      (".inf", "infinity is not allowed"), ("-.inf", "infinity is not allowed"), ("+.Inf", "infinity is not allowed"),
    ])
  func nonFinite(_ value: String, _ expected: String) throws {
    let r = Support.check(Self.channel("a", limits: "{quotaShare: \(value)}"))
    let e = try #require(r.errors.first, "\(value) must be rejected")
    #expect(e.message.contains(expected), "\(e.message)")
    #expect(!e.message.contains("must be a number, found the number"), "\(e.message)")
    #expect(e.line == 7)
  }

  @Test("a float literal beyond a Double (1e400) says it is out of range, not 'found the number'")
  func floatOverflow() throws {
    let r = Support.check(Self.channel("a", limits: "{quotaShare: 1e400}"))
    let e = try #require(r.errors.first)
    #expect(e.code == DiagnosticCode.outOfRange.rawValue)
    #expect(e.message.contains("beyond the range of a 64-bit float"), "\(e.message)")
  }

  @Test("NaN where an integer is expected names it as NaN")
  func nanInteger() throws {
    let r = Support.check(Self.channel("a", limits: "{videosPerDay: .nan}"))
    let e = try #require(r.errors.first)
    #expect(e.message.contains("must be an integer, found .nan (NaN, not a number)"), "\(e.message)")
  }

  @Test("a workflowFile parameter of .nan is an error (it used to be accepted and sent to n8n)")
  func nanParameter() throws {
    let r = Support.check(
      """
      apiVersion: ytempire.io/v1
      kind: Schedule
      metadata: {name: s}
      spec:
        workflowFile: workflows/x.json
        channels: [a]
        trigger: {every: 8h}
        parameters: {threshold: .nan, big: 1e400, ok: 0.5}
      """)
    let errors = r.errors.filter { $0.line == 8 }
    #expect(errors.count == 2, "\(r.errors)")
    #expect(errors.allSatisfy { $0.message.contains("NaN and infinity are not allowed") }, "\(errors)")
  }

  @Test("a ytempire.yaml share (serve.driftBudget) of .nan says NaN is not allowed")
  func nanConfigShare() throws {
    let (config, diags) = ReconcilerConfigTests.load(ReconcilerConfigTests.minimal("serve: {driftBudget: .nan}"))
    #expect(config == nil)
    let e = try #require(ReconcilerConfigTests.errors(diags).first)
    #expect(e.message.contains("NaN and infinity are not allowed"), "\(e.message)")
  }

  // MARK: Durations

  @Test(
    "a duration too large says so and gives the maximum",
    arguments: [
      "99999999999999999999h", "106751991167d8h", "9223372036854775807ms", "36501d", "36500d1ms",
    ])
  func durationTooLarge(_ value: String) throws {
    let r = Support.check(Self.channel("a", limits: "{quotaShare: 0.1}") + "  content: {duration: \(value)}\n")
    let e = try #require(r.errors.first { $0.line == 8 }, "\(value) must be rejected: \(r.errors)")
    #expect(e.code == DiagnosticCode.outOfRange.rawValue)
    #expect(e.message.contains("is too large; a duration is at most 36500d"), "\(e.message)")
    #expect(!e.message.contains("write a number with a unit"), "\(e.message)")
    #expect(e.line == 8)
  }

  @Test("the largest duration is accepted; malformed ones still get the syntax message")
  func durationBounds() {
    #expect(ModelDuration.check("36500d") == .valid(ModelDuration.maximum))
    #expect(ModelDuration.check("36499d23h59m59s999ms") == .valid(ModelDuration(milliseconds: ModelDuration.maximum.milliseconds - 1)))
    #expect(ModelDuration.check("99999999999999999999h") == .tooLarge)
    #expect(ModelDuration.check("99999999999999999999x") == .invalid, "bad syntax wins over size")
    #expect(ModelDuration.check("5m3h") == .invalid)
    #expect(ModelDuration.check(String(repeating: "1", count: 41) + "s") == .tooLong)
    #expect(ModelDuration.parse("99999999999999999999h") == nil)
    let r = Support.check(Self.channel("a") + "  content: {duration: 1x}\n")
    #expect(r.errors.contains { $0.line == 8 && $0.message.contains("write a number with a unit") }, "\(r.errors)")
  }

  @Test("retryAfter and apiKeys retention that are too large say so, not 'must be … or a duration'")
  func keywordDurationTooLarge() {
    let rl = Support.check(
      """
      apiVersion: ytempire.io/v1
      kind: RateLimit
      metadata: {name: r}
      spec:
        service: youtube
        retry: {categories: {quota_exceeded: {strategy: scheduled, retryAfter: 99999999999999999999d}}}
      """)
    #expect(rl.errors.contains { $0.line == 6 && $0.message.contains("is too large; a duration is at most 36500d") }, "\(rl.errors)")
    let sp = Support.check(
      """
      apiVersion: ytempire.io/v1
      kind: SecurityPolicy
      metadata: {name: p}
      spec:
        retention: {apiKeys: 40000d}
      """)
    #expect(sp.errors.contains { $0.line == 5 && $0.message.contains("is too large; a duration is at most 36500d") }, "\(sp.errors)")
  }

  // MARK: Invisible characters

  @Test(
    "a key with a BOM or a zero-width character shows it escaped and says it is there",
    arguments: [
      ("\u{FEFF}", "U+FEFF ZERO WIDTH NO-BREAK SPACE"), ("\u{200B}", "U+200B ZERO WIDTH SPACE"), ("\u{00A0}", "U+00A0 NO-BREAK SPACE"),
    ])
  func invisibleKey(_ char: String, _ name: String) throws {
    let r = Support.check(Self.channel("a", branding: "{title: T, \(char)description: d}"))
    let e = try #require(r.errors.first)
    #expect(e.code == DiagnosticCode.unknownField.rawValue)
    let escaped = "\\u{" + String(char.unicodeScalars.first!.value, radix: 16, uppercase: true) + "}"
    #expect(e.message.contains("unknown field '\(escaped)description'"), "\(e.message)")
    #expect(e.message.contains("the key contains an invisible character (\(name))"), "\(e.message)")
    #expect(e.message.contains("without it the key is 'description'"), "\(e.message)")
    #expect(!e.message.contains(char), "the character itself is not printed")
    #expect(e.rendered.hasPrefix("test.yaml:6:"), "\(e.rendered)")
  }

  @Test("invisible characters in echoed values and map keys are escaped too")
  func invisibleValues() {
    let r = Support.check(
      """
      apiVersion: ytempire.io/v1
      kind: Channel
      metadata: {name: a, labels: {"ni\u{200B}che!": x}}
      spec:
        youtube: {channelId: UCabcdefghijklmnopqrstuv, credentials: yt-a}
        branding: {title: T}
        playlists: [{name: p, title: P, privacy: "public\u{200B}"}]
      """)
    #expect(
      r.errors.contains { $0.line == 3 && $0.message.contains("ni\\u{200B}che!") && $0.message.contains("invisible character (U+200B") },
      "\(r.errors)")
    #expect(r.errors.contains { $0.line == 7 && $0.message.contains("'public\\u{200B}'") }, "\(r.errors)")
    #expect(!r.errors.contains { $0.message.contains("\u{200B}") })
  }

  // MARK: YAML tags (item 8)

  static func quotaShare(_ r: ValidationReport) -> Double? { r.resources.first?.channel?.limits?.quotaShare }

  @Test("!!str 0.4 where a number is expected is a string, and says the tag made it one")
  func strTagOnNumber() throws {
    let r = Support.check(Self.channel("a", limits: "{quotaShare: !!str 0.4}"))
    let e = try #require(r.errors.first)
    #expect(e.code == DiagnosticCode.typeMismatch.rawValue)
    #expect(e.message.contains("must be a number, found the string \"0.4\" (tagged !!str)"), "\(e.message)")
    #expect(e.message.contains("remove the tag"), "\(e.message)")
    #expect(e.line == 7 && e.column == 24)
  }

  @Test("!!str 0.4 where a string is expected is the string \"0.4\"; ! makes a scalar a string too")
  func strTagOnString() throws {
    for title in ["!!str 0.4", "! 0.4", "!<tag:yaml.org,2002:str> 0.4"] {
      let r = Support.check(Self.channel("a", branding: "{title: \(title)}"))
      #expect(r.errors.isEmpty, "\(title): \(r.errors)")
      #expect(r.resources.first?.channel?.branding.title == "0.4", "\(title)")
    }
    let r = Support.check(Self.channel("a", limits: "{quotaShare: ! 0.4}"))
    #expect(r.has(.typeMismatch, line: 7), "\(r.errors)")
  }

  @Test("!!int \"12\" is the integer 12; !!float, !!bool and !!null read their content")
  func coreTagsRead() throws {
    let r = Support.check(
      Self.channel("a", limits: "{videosPerDay: !!int \"12\", uploadsPerHour: !!int '0x3', quotaShare: !!float \"0.25\"}")
        + "  active: !!bool \"true\"\n  rateLimit: !!null\n")
    #expect(r.errors.isEmpty, "\(r.errors)")
    let limits = try #require(r.resources.first?.channel?.limits)
    #expect(limits.videosPerDay == 12)
    #expect(limits.uploadsPerHour == 3)
    #expect(limits.quotaShare == 0.25)
    #expect(r.resources.first?.channel?.active == true)
    #expect(r.resources.first?.channel?.rateLimit == nil)
  }

  @Test("!!map and !!seq on collections of that kind are accepted")
  func collectionTags() {
    let r = Support.check(
      """
      apiVersion: ytempire.io/v1
      kind: Channel
      metadata: !!map {name: a}
      spec: !!map
        youtube: {channelId: UCabcdefghijklmnopqrstuv, credentials: yt-a}
        branding: {title: T, keywords: !!seq [a, b]}
      """)
    #expect(r.errors.isEmpty, "\(r.errors)")
    #expect(r.resources.first?.channel?.branding.keywords == ["a", "b"])
  }

  @Test(
    "a tag whose content does not fit is one located error",
    arguments: [
      ("{videosPerDay: !!int abc}", 26, "the value tagged !!int is not an integer"),
      ("{videosPerDay: !!int 1.5}", 26, "the value tagged !!int is not an integer"),
      ("{quotaShare: !!float abc}", 24, "the value tagged !!float is not a number"),
      ("{videosPerDay: !!bool yes}", 26, "the value tagged !!bool is not a boolean"),
      ("{videosPerDay: !!null 0}", 26, "the value tagged !!null is not null"),
      ("{videosPerDay: !!map 3}", 26, "!!map tags a mapping, but this is a scalar"),
      ("!!seq {videosPerDay: 3}", 11, "!!seq tags a list, but this is a mapping"),
      ("{videosPerDay: !!str [1]}", 26, "!!str tags a scalar"),
    ])
  func tagMismatch(_ limits: String, _ column: Int, _ expected: String) throws {
    let r = Support.check(Self.channel("a", limits: limits))
    #expect(r.errors.count == 1, "one error, not a second one from the field: \(r.errors)")
    let e = try #require(r.errors.first)
    #expect(e.code == DiagnosticCode.tagMismatch.rawValue)
    #expect(e.message.contains(expected), "\(e.message)")
    #expect(e.line == 7 && e.column == column, "\(e.line):\(e.column)")
  }

  @Test("!!float 1 where an integer is expected is not an integer")
  func floatTagOnInt() {
    let r = Support.check(Self.channel("a", limits: "{videosPerDay: !!float 1}"))
    #expect(r.errors.contains { $0.code == DiagnosticCode.typeMismatch.rawValue && $0.message.contains("tagged !!float") }, "\(r.errors)")
  }

  @Test(
    "every other tag is refused with a located error",
    arguments: [
      ("!custom T", "'!custom'"), ("!!binary aGVsbG8=", "'!!binary'"), ("!!timestamp 2001-12-14", "'!!timestamp'"),
      ("!<tag:example.com,2000:app/foo> T", "'!<tag:example.com,2000:app/foo>'"), ("!!set {a: ~}", "'!!set'"),
    ])
  func unsupportedTag(_ title: String, _ shown: String) throws {
    let r = Support.check(Self.channel("a", branding: "{title: \(title)}"))
    let e = try #require(r.errors.first, "\(title) must be rejected")
    #expect(r.errors.count == 1, "\(r.errors)")
    #expect(e.code == DiagnosticCode.unsupportedTag.rawValue)
    #expect(e.message.contains("YAML tag \(shown) is not supported"), "\(e.message)")
    #expect(e.line == 6 && e.column == 21, "\(e.line):\(e.column)")
  }

  @Test("a tag on a key, or deep inside a list, is checked too; anchors carry their tag to aliases")
  func tagsEverywhere() {
    let r = Support.check(
      """
      apiVersion: ytempire.io/v1
      kind: Channel
      metadata: {name: a}
      spec:
        youtube: {channelId: UCabcdefghijklmnopqrstuv, credentials: yt-a}
        branding: {!x title: T, keywords: [a, [!y b]]}
        limits: {quotaShare: &s !!str 0.1, videosPerDay: *s}
      """)
    #expect(r.errors.contains { $0.code == DiagnosticCode.unsupportedTag.rawValue && $0.line == 6 && $0.column == 14 }, "\(r.errors)")
    #expect(r.errors.contains { $0.code == DiagnosticCode.unsupportedTag.rawValue && $0.line == 6 && $0.column == 42 }, "\(r.errors)")
    #expect(
      r.errors.contains { $0.code == DiagnosticCode.typeMismatch.rawValue && $0.line == 7 && $0.message.contains("tagged !!str") },
      "\(r.errors)")
    #expect(
      r.errors.contains { $0.code == DiagnosticCode.typeMismatch.rawValue && $0.line == 7 && $0.column == 52 },
      "the alias is a string too: \(r.errors)")
  }

  @Test("ytempire.yaml goes through the same tag rules")
  func configTags() throws {
    let ok = ReconcilerConfigTests.load(ReconcilerConfigTests.minimal("policy: {maxDeletePercent: !!int \"20\", prune: !!bool true}"))
    #expect(ReconcilerConfigTests.errors(ok.diagnostics).isEmpty, "\(ok.diagnostics)")
    #expect(ok.config?.policy.maxDeletePercent == 20)

    let bad = ReconcilerConfigTests.load(ReconcilerConfigTests.minimal("policy: {maxDeletePercent: !!str 20, prune: !custom true}"))
    #expect(bad.config == nil)
    let errors = ReconcilerConfigTests.errors(bad.diagnostics)
    #expect(
      errors.contains { $0.code == DiagnosticCode.typeMismatch.rawValue && $0.line == 6 && $0.message.contains("tagged !!str") },
      "\(errors)")
    #expect(
      errors.contains { $0.code == DiagnosticCode.unsupportedTag.rawValue && $0.line == 6 && $0.message.contains("'!custom'") }, "\(errors)"
    )

    // A secret's value in a wrong tag is refused without being repeated.
    let secret = ReconcilerConfigTests.load(ReconcilerConfigTests.minimal("secrets: {yt: {value: !!int hunter2}}"))
    let se = try #require(ReconcilerConfigTests.errors(secret.diagnostics).first)
    #expect(se.code == DiagnosticCode.tagMismatch.rawValue)
    #expect(!se.message.contains("hunter2"))
  }
}

/// The same messages through the built binary: `ytempire validate` prints them located, exit 1.
@Suite struct MessageBinaryTests {
  @Test("validate prints the exact sum, NaN, too-large, invisible-key and tag messages at their nodes")
  func throughTheBinary() throws {
    let bad = Support.fixtures.appendingPathComponent("bad")
    let cases: [(String, String)] = [
      (
        "channel-quota-share-sum.yaml",
        "channel-quota-share-sum.yaml:25:17: error: the quotaShare of active channels adds up to 1.0000001 over 2 channels"
      ),
      (
        "channel-quota-share-nan.yaml",
        "channel-quota-share-nan.yaml:12:17: error: Channel.spec.limits.quotaShare is .nan (NaN); NaN is not allowed"
      ),
      (
        "schedule-timeout-too-large.yaml",
        "schedule-timeout-too-large.yaml:8:12: error: Schedule.spec.timeout '99999999999999999999h' is too large; a duration is at most 36500d"
      ),
      (
        "channel-bom-in-key.yaml",
        "channel-bom-in-key.yaml:11:5: error: unknown field '\\u{FEFF}description' in Channel.spec.branding: the key contains an invisible character (U+FEFF ZERO WIDTH NO-BREAK SPACE)"
      ),
      ("yaml-tag-unsupported.yaml", "yaml-tag-unsupported.yaml:10:12: error: YAML tag '!custom' is not supported"),
      (
        "yaml-tag-str-number.yaml",
        "yaml-tag-str-number.yaml:12:17: error: Channel.spec.limits.quotaShare must be a number, found the string \"0.4\" (tagged !!str)"
      ),
    ]
    for (file, line) in cases {
      let (status, _, err) = try HardeningTests.runBounded(["validate", bad.appendingPathComponent(file).path])
      #expect(status == 1, "\(file): exit \(status)")
      #expect(err.contains(line), "\(file): \(err)")
      #expect(!err.contains("\u{FEFF}"), "the BOM itself is not printed")
    }
  }
}
