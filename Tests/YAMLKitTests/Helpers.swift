import Testing

@testable import YAMLKit

let testFile = "test.yaml"

func load(_ text: String, limits: YAMLLimits = .default) -> YAMLLoadResult {
  YAMLLoader.load(Array(text.utf8), file: testFile, limits: limits)
}

func loadBytes(_ bytes: [UInt8], limits: YAMLLimits = .default) -> YAMLLoadResult {
  YAMLLoader.load(bytes, file: testFile, limits: limits)
}

/// The root of the only document; records an issue when there are errors or not exactly one document.
func root(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> YAMLNode? {
  let result = load(text)
  #expect(result.errors.isEmpty, "unexpected errors: \(result.errors)", sourceLocation: sourceLocation)
  #expect(result.documents.count == 1, sourceLocation: sourceLocation)
  return result.documents.first?.root
}

func mark(_ line: Int, _ column: Int) -> SourceMark {
  SourceMark(file: testFile, line: line, column: column)
}

/// Keys of a mapping node, in order ("<complex>" for non-scalar keys).
func keys(_ node: YAMLNode?) -> [String] {
  (node?.mappingPairs ?? []).map { $0.key.scalarText ?? "<complex>" }
}

/// Scalar texts of a sequence node.
func texts(_ node: YAMLNode?) -> [String] {
  (node?.sequenceItems ?? []).map { $0.scalarText ?? "<collection>" }
}

func elapsedSeconds(_ body: () -> Void) -> Double {
  let clock = ContinuousClock()
  let d = clock.measure(body)
  return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}
