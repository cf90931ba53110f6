import Foundation
import TestSupport
import Testing
import Workspace

@testable import EmpireModel

/// The JSON Schemas in schemas/ and `ytempire validate` express the same per-document
/// contract: one shared set of fixtures, fed to both, must get the same verdicts.
@Suite("Schema conformance")
struct ConformanceTests {
  static let dir = Support.fixtures.appendingPathComponent("conformance")

  static func files(_ sub: String) -> [String] {
    let d = dir.appendingPathComponent(sub)
    return ((try? FileManager.default.contentsOfDirectory(atPath: d.path)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
  }

  static func swiftVerdict(_ path: String) -> ValidationReport {
    var o = LoadOptions()
    o.crossResourceRules = false
    let src = ManifestSource(displayPath: path, relativePath: (path as NSString).lastPathComponent, content: .file(path: path))
    return ManifestLoader.validate([src], options: o)
  }

  @Test func fixtureSetIsSubstantial() {
    #expect(Self.files("valid").count >= 20)
    #expect(Self.files("invalid").count >= 40)
  }

  @Test("ytempire accepts every valid fixture", arguments: files("valid"))
  func swiftAcceptsValid(_ name: String) {
    let r = Self.swiftVerdict(Self.dir.appendingPathComponent("valid/\(name)").path)
    #expect(r.isValid, "\(r.diagnostics.map(\.rendered))")
    #expect(r.resources.count >= 1)
  }

  @Test("ytempire rejects every invalid fixture", arguments: files("invalid"))
  func swiftRejectsInvalid(_ name: String) {
    let r = Self.swiftVerdict(Self.dir.appendingPathComponent("invalid/\(name)").path)
    #expect(!r.isValid, "\(name) should be rejected")
  }

  @Test("the JSON Schemas give the same verdicts (python jsonschema)")
  func schemasAgree() throws {
    let r = try Processes.run(
      [
        "python3", Support.packageRoot.appendingPathComponent("scripts/check_schemas.py").path,
        "--expect-valid", Self.dir.appendingPathComponent("valid").path,
        "--expect-invalid", Self.dir.appendingPathComponent("invalid").path,
      ], check: false)
    #expect(r.status == 0, "schemas disagree with the expected verdicts:\n\(r.stdout)\(r.stderr)")
  }
}
