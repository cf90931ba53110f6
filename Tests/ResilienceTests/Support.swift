import EmpireModel
import Foundation
import Testing

/// Decodes one manifest with the real decoder.
func decode(_ yaml: String) throws -> Spec {
  var options = LoadOptions()
  options.crossResourceRules = false  // one manifest alone: its references point at files not loaded
  let report = ManifestLoader.validate(
    [ManifestSource(displayPath: "t.yaml", relativePath: "t.yaml", content: .bytes(Array(yaml.utf8)))], options: options)
  let r = try #require(report.resources.first, "\(report.diagnostics)")
  #expect(report.isValid, "\(report.diagnostics)")
  return r.spec
}

func rateLimit(_ specYAML: String, name: String = "t") throws -> RateLimitSpec {
  guard case .rateLimit(let s) = try decode("apiVersion: ytempire.io/v1\nkind: RateLimit\nmetadata:\n  name: \(name)\nspec:\n" + specYAML)
  else {
    throw CocoaError(.coderInvalidValue)
  }
  return s
}

/// A RateLimit of the example empire.
func exampleRateLimit(_ name: String) throws -> RateLimitSpec {
  let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  let text = try String(contentsOf: root.appendingPathComponent("examples/empire/ratelimits/\(name).yaml"), encoding: .utf8)
  guard case .rateLimit(let s) = try decode(text) else { throw CocoaError(.coderInvalidValue) }
  return s
}

func exampleProviderChain(_ name: String) throws -> ProviderChainSpec {
  let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  let text = try String(contentsOf: root.appendingPathComponent("examples/empire/providers/\(name).yaml"), encoding: .utf8)
  guard case .providerChain(let s) = try decode(text) else { throw CocoaError(.coderInvalidValue) }
  return s
}

/// 2026-03-07 12:00 in Los Angeles (PST, UTC-8).
func date(_ iso: String) -> Date {
  let f = ISO8601DateFormatter()
  return f.date(from: iso)!
}
