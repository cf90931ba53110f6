import Foundation
import TestSupport
import Testing
import Workspace
import YAMLKit

@testable import EmpireModel

/// Paths and helpers shared by the model tests.
enum Support {
  static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  static var fixtures: URL { packageRoot.appendingPathComponent("Tests/EmpireModelTests/Fixtures") }
  static var examples: URL { packageRoot.appendingPathComponent("examples/empire") }
  static var binary: URL { packageRoot.appendingPathComponent(".build/debug/ytempire") }

  /// Decodes YAML text as one file, without cross-resource rules unless asked.
  static func check(_ yaml: String, file: String = "test.yaml", cross: Bool = false) -> ValidationReport {
    var o = LoadOptions()
    o.crossResourceRules = cross
    return ManifestLoader.validate([ManifestSource(displayPath: file, relativePath: file, content: .bytes(Array(yaml.utf8)))], options: o)
  }

  /// A fresh temporary directory, removed by the caller with `cleanup`.
  static func tempDir(_ files: [String: String]) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ytempire-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (path, text) in files {
      let url = dir.appendingPathComponent(path)
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try Data(text.utf8).write(to: url)
    }
    return dir
  }

  static func cleanup(_ dir: URL) { try? FileManager.default.removeItem(at: dir) }

  /// Runs the built `ytempire` binary; returns (exit status, stdout, stderr).
  static func run(_ args: [String], env: [String: String] = [:], cwd: URL? = nil) throws -> (Int32, String, String) {
    let r = try Processes.run([binary.path] + args, cwd: cwd?.path, env: env, check: false)
    return (r.status, r.stdout, r.stderr)
  }

  /// A channel document with the given name and extra spec lines.
  static func channel(
    _ name: String, share: Double = 0.1, rateLimit: String? = nil, labels: String = "{}", providers: String? = nil, active: Bool = true
  ) -> String {
    var s = """
      apiVersion: ytempire.io/v1
      kind: Channel
      metadata:
        name: \(name)
        labels: \(labels)
      spec:
        active: \(active)
        youtube: {channelId: UCabcdefghijklmnopqrstuv, credentials: yt-\(name)}
        branding: {title: \(name)}
        limits: {quotaShare: \(share)}

      """
    if let rateLimit { s += "  rateLimit: \(rateLimit)\n" }
    if let providers { s += "  content:\n    providers: \(providers)\n" }
    return s
  }
}

extension ValidationReport {
  var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
  var codes: [String] { errors.map(\.code) }
  func has(_ code: DiagnosticCode, line: Int? = nil) -> Bool {
    diagnostics.contains { $0.code == code.rawValue && (line == nil || $0.line == line) }
  }
}
