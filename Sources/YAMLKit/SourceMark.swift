/// A position in a source file. `line` and `column` are 1-based; `column` counts
/// Unicode scalars (code points) from the start of the line, as libyaml does.
public struct SourceMark: Sendable, Hashable, Comparable, CustomStringConvertible {
  public var file: String
  public var line: Int
  public var column: Int

  @inlinable
  public init(file: String, line: Int, column: Int) {
    self.file = file
    self.line = line
    self.column = column
  }

  /// `file:line:col`
  public var description: String { "\(file):\(line):\(column)" }

  public static func < (lhs: SourceMark, rhs: SourceMark) -> Bool {
    if lhs.file != rhs.file { return lhs.file < rhs.file }
    if lhs.line != rhs.line { return lhs.line < rhs.line }
    return lhs.column < rhs.column
  }
}
