import Foundation
import Testing
import Workspace

@testable import EmpireModel

/// examples/empire must be valid and carry the seed's concrete values.
@Suite("examples/empire")
struct ExampleRepositoryTests {
  static let report = ValidationRun.run(path: Support.examples.path)

  func one(_ kind: Kind, _ name: String) throws -> Resource {
    try #require(Self.report.resources.first { $0.kind == kind && $0.name == name }, "\(kind.rawValue)/\(name) missing")
  }

  @Test func isValidWithEveryKind() {
    #expect(Self.report.isValid, "\(Self.report.diagnostics.map(\.rendered))")
    #expect(Self.report.warningCount == 0, "\(Self.report.diagnostics.map(\.rendered))")
    let kinds = Set(Self.report.resources.map(\.kind))
    #expect(kinds == Set(Kind.allCases))
    #expect(Self.report.resources.filter { $0.kind == .channel }.count >= 3)
  }

  @Test func youtubeQuota() throws {
    let rl = try #require(try one(.rateLimit, "youtube-api").rateLimit)
    let q = try #require(rl.quota)
    #expect(q.units == 10000 && q.reservedPerChannel == 3000 && q.emergencyReserve == 1000)
    #expect(q.timezone == "America/Los_Angeles" && q.resetAt == 0)
    #expect(
      q.costs == [
        "videos.insert": 1600, "videos.update": 50, "videos.list": 1, "channels.list": 1, "channels.update": 50,
        "search.list": 100, "comments.insert": 50, "thumbnails.set": 50, "playlists.list": 1, "playlists.insert": 50,
        "playlists.update": 50, "playlists.delete": 50, "playlistItems.insert": 50,
      ])
    let retry = try #require(rl.retry)
    #expect(
      retry.maxRetries == 5 && retry.initialDelay == .seconds(1) && retry.maxDelay == .seconds(60) && retry.multiplier == 2
        && retry.jitter == true)
    #expect(retry.retryOnStatuses == [429, 500, 502, 503, 504])
    #expect(retry.retryOnReasons == ["quotaExceeded", "backendError", "internalError"])
    #expect(retry.categories[.rateLimit]?.baseDelay == .seconds(60) && retry.categories[.rateLimit]?.fallback == .queueForLater)
    #expect(retry.categories[.apiError]?.maxRetries == 3 && retry.categories[.apiError]?.baseDelay == .seconds(5))
    #expect(retry.categories[.networkError]?.strategy == .linear && retry.categories[.networkError]?.fallback == .circuitBreaker)
    #expect(retry.categories[.validationError]?.strategy == RetryStrategy.none)
    #expect(retry.categories[.quotaExceeded]?.retryAfter == .nextQuotaReset)
    let cb = try #require(rl.circuitBreaker)
    #expect(cb.failureThreshold == 3 && cb.timeout == .seconds(300) && cb.monitoredErrors == ["quota_exceeded", "rate_limit_exceeded"])
  }

  @Test func chains() throws {
    let llm = try #require(try one(.providerChain, "llm").providerChain)
    #expect(llm.providers.map(\.weight) == [1.0, 0.8, 0.6, 0.4])
    #expect(
      llm.providers[0].model == "gpt-4-turbo" && llm.providers[0].cost?.inputPer1kTokens == 0.01
        && llm.providers[0].cost?.outputPer1kTokens == 0.03)
    #expect(llm.providers[1].model == "claude-3-opus" && llm.providers[1].cost?.outputPer1kTokens == 0.075)
    #expect(llm.cacheTTL == .seconds(3600))
    let tts = try #require(try one(.providerChain, "tts").providerChain)
    #expect(tts.providers.map(\.weight) == [1.0, 0.9, 0.7, 0.5])
    #expect(tts.providers[0].voices?[.professionalMale] == "Adam" && tts.providers[0].cost?.per1kChars == 0.30)
    #expect(tts.providers[1].voices?[.casualFemale] == "en-US-AriaNeural" && tts.providers[1].cost?.per1kChars == 0.16)
    let image = try #require(try one(.providerChain, "image").providerChain)
    #expect(image.providers.map(\.weight) == [1.0, 0.9, 0.8, 0.6])
    #expect(image.providers[0].cost?.perImage == ["1024x1024": 0.04, "1792x1024": 0.08, "1024x1792": 0.08])
  }

  @Test func schedulesCdnSecurityMonitors() throws {
    let schedules = Self.report.resources.compactMap(\.schedule)
    let content = try #require(schedules.first { if case .template(.contentGeneration) = $0.workflow { true } else { false } })
    guard case .every(let every) = content.trigger else {
      Issue.record("content trigger")
      return
    }
    #expect(every == .seconds(8 * 3600))
    #expect(content.parameters["viralityThreshold"] == .number(0.8))
    #expect(content.parameters["duration"] == .duration(.seconds(600)))
    #expect(content.parameters["voice"] == .string("professional_male"))
    let analytics = try #require(schedules.first { if case .template(.analyticsCollection) = $0.workflow { true } else { false } })
    guard case .every(let a) = analytics.trigger else {
      Issue.record("analytics trigger")
      return
    }
    #expect(a == .seconds(300))

    let zones = Self.report.resources.compactMap(\.cdnZone)
    #expect(zones.count == 2)
    let pull = try #require(zones.first { $0.type == .pull })
    #expect(pull.rules.prefix(3).map(\.edgeTTL) == [.seconds(86400), .seconds(604800), .seconds(0)])
    #expect(pull.rules.prefix(3).map(\.cacheLevel) == [.aggressive, .standard, .bypass])
    let push = try #require(zones.first { $0.type == .push })
    #expect(push.replication == ["us-east", "eu-west", "asia-pacific"])

    let sec = try #require(Self.report.resources.compactMap(\.securityPolicy).first)
    #expect(sec.transport?.minTLSVersion == .tls13)
    let day: Int64 = 86400
    let expectedAges: [String: ModelDuration] = [
      "youtube": .seconds(90 * day), "openai": .seconds(60 * day),
      "anthropic": .seconds(60 * day), "elevenlabs": .seconds(90 * day),
    ]
    #expect(sec.keyRotation?.maxAge == expectedAges)
    let retention = try #require(sec.retention)
    #expect(retention.userData == .seconds(90 * day))
    #expect(retention.analytics == .seconds(365 * day))
    #expect(retention.logs == .seconds(30 * day))
    #expect(Set(sec.serviceAccounts.map(\.name)) == ["youtube-publisher", "content-generator"])

    let monitors = Set(Self.report.resources.filter { $0.kind == .monitor }.map(\.name))
    #expect(monitors.isSuperset(of: ["high-api-latency", "workflow-failure-rate", "quota-usage-warning"]))
  }

  @Test("every example file names its schema for editors")
  func schemaComments() throws {
    let fm = FileManager.default
    let root = Support.examples.path
    let listing = DirectorySource.list(root: root, displayRoot: "")
    #expect(!listing.sources.isEmpty)
    for s in listing.sources {
      let text = try String(contentsOfFile: root + "/" + s.relativePath, encoding: .utf8)
      let first = text.split(separator: "\n").first.map(String.init) ?? ""
      #expect(first.hasPrefix("# yaml-language-server: $schema="), "\(s.relativePath)")
      let rel = first.replacingOccurrences(of: "# yaml-language-server: $schema=", with: "")
      let target = URL(fileURLWithPath: root + "/" + s.relativePath).deletingLastPathComponent().appendingPathComponent(rel)
        .standardizedFileURL.path
      #expect(fm.fileExists(atPath: target), "\(s.relativePath) points at \(rel)")
    }
  }
}
