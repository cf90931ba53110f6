import Foundation
import Testing
import Workspace
import YAMLKit

@testable import EmpireModel

/// The bad-input corpus: every file must fail with a located diagnostic of the expected
/// code, without crashing, hanging or taking long.
@Suite("Bad-input corpus")
struct BadInputTests {
  struct Case: CustomTestStringConvertible, Sendable {
    var file: String
    var code: String
    var line: Int
    var testDescription: String { file }
  }

  static let corpus: [Case] = {
    let dir = Support.fixtures.appendingPathComponent("bad")
    let text = (try? String(contentsOf: dir.appendingPathComponent("EXPECTED"), encoding: .utf8)) ?? ""
    return text.split(separator: "\n").compactMap { line in
      if line.hasPrefix("#") || line.isEmpty { return nil }
      let p = line.split(separator: " ")
      return Case(file: String(p[0]), code: String(p[1]), line: Int(p[2])!)
    }
  }()

  @Test func corpusIsLargeAndComplete() throws {
    #expect(Self.corpus.count >= 60)
    let files = try FileManager.default.contentsOfDirectory(atPath: Support.fixtures.appendingPathComponent("bad").path)
      .filter { $0.hasSuffix(".yaml") }
    #expect(Set(files) == Set(Self.corpus.map(\.file)), "every corpus file has an expectation and vice versa")
  }

  @Test(arguments: corpus)
  func failsWithLocatedDiagnostic(_ c: Case) throws {
    let path = Support.fixtures.appendingPathComponent("bad/\(c.file)").path
    let start = ContinuousClock.now
    let report = ValidationRun.run(path: path)
    let elapsed = ContinuousClock.now - start
    #expect(!report.isValid, "\(c.file) must be rejected")
    let match = report.errors.contains { $0.code == c.code && (c.line == 0 || $0.line == c.line) }
    #expect(match, "\(c.file): expected \(c.code) at line \(c.line); got \(report.errors.map { "\($0.code)@\($0.line)" })")
    for d in report.diagnostics {
      #expect(d.file == path)
      #expect(d.line >= 1 && d.column >= 1)
    }
    #expect(elapsed < .seconds(60), "\(c.file) took \(elapsed)")  // a hang or a blow-up, not speed (make bench measures that)
  }

  // MARK: Generated cases (too big or too binary to keep as files)

  static func generated(_ name: String, _ bytes: [UInt8], body: (URL) throws -> Void) throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ytempire-bad-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    try body(url)
  }

  static func expectRejected(_ url: URL, code: DiagnosticCode, line: Int? = nil) {
    let start = ContinuousClock.now
    let report = ValidationRun.run(path: url.path)
    let elapsed = ContinuousClock.now - start
    #expect(
      report.errors.contains { $0.code == code.rawValue && (line == nil || $0.line == line) },
      "expected \(code.rawValue); got \(report.errors.map { "\($0.code)@\($0.line): \($0.message)" })")
    #expect(elapsed < .seconds(60), "took \(elapsed)")  // a hang or a blow-up, not speed
  }

  @Test("a 20 MB file is refused before it is parsed")
  func twentyMegabytes() throws {
    var bytes = Array("apiVersion: ytempire.io/v1\nkind: Channel\nmetadata: {name: big}\nspec:\n  branding:\n    description: \"".utf8)
    bytes += [UInt8](repeating: UInt8(ascii: "x"), count: 20 << 20)
    bytes += Array("\"\n".utf8)
    try Self.generated("big.yaml", bytes) { url in
      Self.expectRejected(url, code: .fileTooLarge, line: 1)
    }
  }

  @Test("10,000-deep flow nesting")
  func deepFlow() throws {
    let bytes = Array(("key: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n").utf8)
    try Self.generated("deep-flow.yaml", bytes) { Self.expectRejected($0, code: .depthLimit, line: 1) }
  }

  @Test("deep block mappings (1,000 levels: 10,000 would need 50 MB of indentation, refused by size)")
  func deepBlock() throws {
    var bytes: [UInt8] = []
    for i in 0..<1_000 { bytes += [UInt8](repeating: 0x20, count: i) + Array("k:\n".utf8) }
    try Self.generated("deep-block.yaml", bytes) { Self.expectRejected($0, code: .depthLimit, line: 129) }
    var huge: [UInt8] = []
    huge.reserveCapacity(50_100_000)
    for i in 0..<10_000 { huge += [UInt8](repeating: 0x20, count: i) + Array("k:\n".utf8) }
    try Self.generated("deep-block-10000.yaml", huge) { Self.expectRejected($0, code: .fileTooLarge, line: 1) }
  }

  @Test("10,000-deep block sequences")
  func deepSequence() throws {
    let s = String(repeating: "- ", count: 10_000) + "x\n"
    try Self.generated("deep-seq.yaml", Array(s.utf8)) { Self.expectRejected($0, code: .depthLimit, line: 1) }
  }

  @Test("binary content (a PNG header and NUL bytes)")
  func binary() throws {
    let bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52]
    try Self.generated("image.yaml", bytes) { Self.expectRejected($0, code: .binaryContent) }
    try Self.generated("nul.yaml", Array("apiVersion: ytempire.io/v1\nkind: Chan\0nel\n".utf8)) {
      Self.expectRejected($0, code: .binaryContent, line: 2)
    }
  }

  @Test("invalid UTF-8")
  func invalidUTF8() throws {
    var bytes = Array("apiVersion: ytempire.io/v1\nkind: Channel\nmetadata: {name: ".utf8)
    bytes += [0xC3, 0x28]
    bytes += Array("}\n".utf8)
    try Self.generated("latin1.yaml", bytes) { Self.expectRejected($0, code: .invalidEncoding, line: 3) }
    try Self.generated("overlong.yaml", [0x61, 0x3A, 0x20, 0xC0, 0xAF, 0x0A]) { Self.expectRejected($0, code: .invalidEncoding, line: 1) }
  }

  @Test("random bytes never crash or hang the loader", arguments: 0..<8)
  func randomBytes(_ seed: Int) throws {
    var rng = SplitMix64(seed: UInt64(seed))
    let alphabet = Array("{}[]:,-?&*!|>'\"%@` \n\t#abc123".utf8)
    let bytes = (0..<4096).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
    let start = ContinuousClock.now
    let report = Support.check(String(decoding: bytes, as: UTF8.self))
    #expect(ContinuousClock.now - start < .seconds(60))  // a hang, not speed
    for d in report.diagnostics { #expect(d.line >= 1) }
  }
}

struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
