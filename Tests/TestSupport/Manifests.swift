import EmpireModel
import Foundation

/// The package's folders, from this file's place in it.
public enum Repo {
  public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  /// `examples/empire`.
  public static var examples: String { root.appendingPathComponent("examples/empire").path }
}

/// The example repository, loaded as `ytempire validate` does (once per test process).
public enum ExampleEmpire {
  public static let resources: [Resource] = {
    let loaded = ManifestLoader.loadDirectory(Repo.examples)
    precondition(
      loaded.report.isValid, "examples/empire does not validate: \(loaded.report.diagnostics.map(\.rendered).joined(separator: "\n"))")
    return loaded.report.resources
  }()
}

/// Decodes YAML documents with the real loader, without the cross-resource rules (for made-up
/// resources that reference nothing real).
public func decode(_ yaml: String, file: String = "t.yaml") -> [Resource] {
  var o = LoadOptions()
  o.crossResourceRules = false
  let report = ManifestLoader.validate(
    [ManifestSource(displayPath: file, relativePath: file, content: .bytes(Array(yaml.utf8)))], options: o)
  precondition(report.isValid, report.diagnostics.map(\.rendered).joined(separator: "\n"))
  return report.resources
}
