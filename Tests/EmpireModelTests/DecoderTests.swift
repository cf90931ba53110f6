import Foundation
import Testing
import YAMLKit

@testable import EmpireModel

@Suite("Scalar decoding by field type")
struct ScalarDecodingTests {
  @Test("country: NO stays the string NO; quoted numbers stay strings; numbers in string fields are text")
  func stringsByFieldType() throws {
    let r = Support.check(
      """
      apiVersion: ytempire.io/v1
      kind: Channel
      metadata: {name: "0123"}
      spec:
        youtube: {channelId: UCabcdefghijklmnopqrstuv, credentials: yt}
        branding: {title: 2024, country: NO, defaultLanguage: no, description: "0.5"}
      """)
    #expect(r.errors.isEmpty, "\(r.diagnostics.map(\.rendered))")
    let c = try #require(r.resources.first?.channel)
    #expect(r.resources.first?.name == "0123")
    #expect(c.branding.title == "2024")
    #expect(c.branding.country == "NO")
    #expect(c.branding.defaultLanguage == "no")
    #expect(c.branding.description == "0.5")
    #expect(c.active == true)
  }

  @Test("YAML 1.1 booleans are errors that say so; true/false/True are booleans", arguments: ["yes", "no", "on", "off", "Yes", "OFF", "y"])
  func yaml11Booleans(_ word: String) {
    let r = Support.check(Support.channel("a").replacingOccurrences(of: "active: true", with: "active: \(word)"))
    #expect(r.codes == ["yaml11-boolean"])
    #expect(r.errors.first?.message.contains("'\(word)' is not a boolean in YAML 1.2") == true)
    #expect(r.errors.first?.line == 7)
  }

  @Test func coreBooleans() throws {
    for (text, value) in [("false", false), ("False", false), ("TRUE", true)] {
      let r = Support.check(Support.channel("a").replacingOccurrences(of: "active: true", with: "active: \(text)"))
      #expect(r.errors.isEmpty)
      #expect(r.resources.first?.channel?.active == value)
    }
  }

  @Test("number fields take plain numbers only")
  func numbers() throws {
    let ok = Support.check(Support.channel("a", share: 0.25))
    #expect(ok.resources.first?.channel?.limits?.quotaShare == 0.25)
    let quoted = Support.check(Support.channel("a").replacingOccurrences(of: "quotaShare: 0.1", with: "quotaShare: \"0.1\""))
    #expect(quoted.codes == ["type-mismatch"])
    #expect(quoted.errors[0].message.contains("remove the quotes"))
    let hex = Support.check(
      Support.channel("a").replacingOccurrences(of: "limits: {quotaShare: 0.1}", with: "limits: {videosPerDay: 0x10}"))
    #expect(hex.errors.isEmpty)
    #expect(hex.resources.first?.channel?.limits?.videosPerDay == 16)
  }

  @Test func coreScalarResolution() {
    #expect(CoreScalar.resolve("") == .null)
    #expect(CoreScalar.resolve("~") == .null)
    #expect(CoreScalar.resolve("12") == .int(12))
    #expect(CoreScalar.resolve("-3") == .int(-3))
    #expect(CoreScalar.resolve("0o17") == .int(15))
    #expect(CoreScalar.resolve("1.5e3") == .float(1500))
    #expect(CoreScalar.resolve(".5") == .float(0.5))
    #expect(CoreScalar.resolve("1h30m") == .string)
    #expect(CoreScalar.resolve("00:00") == .string)
    #expect(CoreScalar.resolve("NO") == .string)
    #expect(CoreScalar.resolve("1_000") == .string)
    #expect(CoreScalar.resolve("99999999999999999999") == .string)
  }
}

@Suite("Durations")
struct DurationTests {
  @Test(
    arguments: [
      ("30s", 30_000), ("5m", 300_000), ("8h", 28_800_000), ("7d", 604_800_000), ("1h30m", 5_400_000),
      ("500ms", 500), ("0s", 0), ("1d2h3m4s5ms", 93_784_005),
    ] as [(String, Int64)])
  func parses(_ text: String, _ ms: Int64) throws {
    let d = try #require(ModelDuration.parse(text))
    #expect(d.milliseconds == ms)
    #expect(ModelDuration.parse(d.description) == d)
  }

  @Test(arguments: ["", "30", "5x", "30m1h", "1h1h", "1.5h", "-5m", "5 m", "m", "99999999999999999999d", "1H"])
  func rejects(_ text: String) {
    #expect(ModelDuration.parse(text) == nil)
  }

  @Test func canonicalSpelling() {
    #expect(ModelDuration(milliseconds: 5_400_000).description == "1h30m")
    #expect(ModelDuration(milliseconds: 600_000).description == "10m")
    #expect(ModelDuration(milliseconds: 0).description == "0s")
  }
}

@Suite("Cron expressions")
struct CronTests {
  @Test func everyEightHours() throws {
    let c = try CronExpression(parsing: "0 */8 * * *")
    #expect(c.minutes == 1)
    #expect(c.hours == (1 << 0) | (1 << 8) | (1 << 16))
    #expect(c.dayOfMonthIsWildcard && c.dayOfWeekIsWildcard)
  }

  @Test func namesRangesListsAndSteps() throws {
    let c = try CronExpression(parsing: "5,10-20/5 9-17 1,15 jan-mar MON-FRI")
    #expect(c.minutes == (1 << 5) | (1 << 10) | (1 << 15) | (1 << 20))
    #expect(c.months == (1 << 1) | (1 << 2) | (1 << 3))
    #expect(c.daysOfWeek == 0b0111110)
    #expect(c.daysOfMonth == (1 << 1) | (1 << 15))
    let sunday = try CronExpression(parsing: "0 0 * * 7")
    #expect(sunday.daysOfWeek == 1)
    let offset = try CronExpression(parsing: "30/15 * * * *")
    #expect(offset.minutes == (1 << 30) | (1 << 45))
  }

  @Test(arguments: [
    "", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
    "*/0 * * * *", "5-1 * * * *", "a * * * *", "* * * foo *", "1,,2 * * * *", "1/2/3 * * * *",
  ])
  func rejects(_ text: String) {
    #expect(throws: CronExpression.ParseError.self) { try CronExpression(parsing: text) }
  }
}

@Suite("Names, time zones, URLs and suggestions")
struct ValueCheckTests {
  @Test func names() {
    for ok in ["a", "tech-daily", "0123", String(repeating: "a", count: 63)] { #expect(Names.isValid(ok)) }
    for bad in ["", "-a", "a-", "A", "a_b", "a/b", "..", "a.b", String(repeating: "a", count: 64), "é"] { #expect(!Names.isValid(bad)) }
  }

  @Test func timezones() {
    #expect(TimeZones.exists("UTC"))
    #expect(TimeZones.exists("America/Los_Angeles"))
    #expect(TimeZones.exists("Europe/Oslo"))
    for bad in ["PST", "Mars/Base", "../../etc/passwd", "America/", "America", "posixrules", "", "Europe/Oslo/x"] {
      #expect(!TimeZones.exists(bad), "\(bad)")
    }
    #expect(TimeZones.hint("PST").contains("America/Los_Angeles"))
  }

  @Test func urls() {
    #expect(URLCheck.problem("https://api.openai.com/v1") == nil)
    #expect(URLCheck.problem("http://localhost:8080") == nil)
    #expect(URLCheck.problem("ftp://x") != nil)
    #expect(URLCheck.problem("http://") != nil)
    #expect(URLCheck.problem("/v1") != nil)
    #expect(URLCheck.problem("http://a b") != nil)
  }

  @Test func didYouMean() {
    #expect(Suggest.closest(to: "titel", in: ["title", "description"]) == "title")
    #expect(Suggest.closest(to: "quotashare", in: ["quotaShare", "videosPerDay"]) == "quotaShare")
    #expect(Suggest.closest(to: "xyz", in: ["title", "description"]) == nil)
    #expect(Suggest.distance("ab", "ba") == 1)
  }

  @Test func keywordsAreOneSpaceSeparatedString() {
    #expect(YouTubeKeywords.join(["tech", "ai news", "gadgets"]) == "tech \"ai news\" gadgets")
    #expect(YouTubeKeywords.split("tech \"ai news\" gadgets") == ["tech", "ai news", "gadgets"])
  }
}

@Suite("Resource decoding")
struct ResourceDecodingTests {
  @Test("every error of a file is reported, sorted by line, with did-you-mean")
  func allErrors() {
    let r = Support.check(
      """
      apiVersion: ytempire.io/v1
      kind: Channel
      metadata: {name: tech}
      spec:
        youtube: {channelId: UCabcdefghijklmnopqrstuv, credentials: yt}
        branding:
          titel: Tech
          title: Tech
        limits: {quotaShare: 2}
        rateLimits: youtube
      """)
    #expect(r.codes == ["unknown-field", "out-of-range", "unknown-field"])
    #expect(r.errors.map(\.line) == [7, 9, 10])
    #expect(r.errors[0].message == "unknown field 'titel' in Channel.spec.branding (did you mean 'title'?)")
    #expect(r.errors[2].message.contains("did you mean 'rateLimit'?"))
    #expect(r.errors[0].rendered.hasPrefix("test.yaml:7:5: error: unknown field 'titel'"))
  }

  @Test("multi-document files, anchors and merge keys decode into resources")
  func multiDocumentAndMerge() throws {
    let r = Support.check(
      """
      apiVersion: ytempire.io/v1
      kind: Monitor
      metadata: {name: a}
      spec:
        expr: up == 0
        severity: warning
        summary: down
      ---
      defaults: &base
        expr: up == 0
        summary: down
      apiVersion: ytempire.io/v1
      kind: Monitor
      metadata: {name: b}
      spec:
        <<: *base
        severity: critical
      """)
    // Anchors are scoped to their document, and "defaults" is not a field of a resource.
    #expect(r.codes == ["unknown-field"], "\(r.diagnostics.map(\.rendered))")
    #expect(r.errors.first?.line == 9)
    #expect(r.resources.map(\.name) == ["a", "b"])
    #expect(r.resources[1].monitor?.severity == .critical)
    #expect(r.resources[1].monitor?.expr == "up == 0")
  }

  @Test("schedules: templates, triggers and parameters")
  func schedule() throws {
    let r = Support.check(
      """
      apiVersion: ytempire.io/v1
      kind: Schedule
      metadata: {name: master}
      spec:
        workflow: content-generation
        trigger: {cron: "0 */8 * * *", timezone: America/Los_Angeles}
        channelSelector: {matchLabels: {niche: tech}}
        parameters: {viralityThreshold: 0.8, style: educational, duration: 600s, voice: professional_male}
        services: {trends: "http://localhost:8001"}
        timeout: 60s
      """)
    #expect(r.errors.isEmpty, "\(r.diagnostics.map(\.rendered))")
    let s = try #require(r.resources.first?.schedule)
    guard case .cron(let c) = s.trigger else {
      Issue.record("expected cron")
      return
    }
    #expect(c.source == "0 */8 * * *")
    #expect(s.timezone == "America/Los_Angeles")
    #expect(s.parameters["viralityThreshold"] == .number(0.8))
    #expect(s.parameters["duration"] == .duration(.seconds(600)))
    #expect(s.timeout == .seconds(60))
    guard case .selector(let labels, _) = s.targets else {
      Issue.record("expected selector")
      return
    }
    #expect(labels == ["niche": "tech"])
  }

  @Test("string fields take plain scalars as text: minTLSVersion 1.3 and \"1.3\" are the same")
  func tlsVersion() throws {
    let doc = { (v: String) in
      "apiVersion: ytempire.io/v1\nkind: SecurityPolicy\nmetadata: {name: p}\nspec:\n  transport: {minTLSVersion: \(v)}\n"
    }
    for v in ["\"1.3\"", "1.3"] {
      let r = Support.check(doc(v))
      #expect(r.errors.isEmpty)
      #expect(r.resources.first?.securityPolicy?.transport?.minTLSVersion == .tls13)
    }
    let bad = Support.check(doc("1.0"))
    #expect(bad.codes == ["invalid-enum"])
    #expect(bad.errors.first?.message.contains("is not one of 1.2, 1.3") == true)
  }
}
