/// How a scalar was written in the source.
public enum ScalarStyle: Sendable, Hashable {
  case plain, singleQuoted, doubleQuoted, literal, folded
}

/// One `key: value` entry of a mapping, in source order.
public struct YAMLPair: Sendable {
  public var key: YAMLNode
  public var value: YAMLNode

  @inlinable
  public init(key: YAMLNode, value: YAMLNode) {
    self.key = key
    self.value = value
  }
}

/// A node of the loaded tree. Aliases are resolved (an alias yields a copy of the
/// anchored node whose `mark`/`endMark` are those of the alias use site) and merge
/// keys (`<<`) are applied, so consumers never see either.
public struct YAMLNode: Sendable {
  public enum Value: Sendable {
    case scalar(String, ScalarStyle)
    case sequence([YAMLNode])
    case mapping([YAMLPair])
  }

  public var value: Value
  /// Explicit tag as resolved by libyaml (`!!str` → `tag:yaml.org,2002:str`,
  /// `!` → `!`, `!foo` → `!foo`); nil when the node has no tag.
  public var tag: String?

  // Both marks share one file string and store line/column compactly: this halves
  // the reference counting per node and keeps nodes small (see `mark`/`endMark`).
  @usableFromInline var file: String
  @usableFromInline var line: Int32
  @usableFromInline var column: Int32
  @usableFromInline var endLine: Int32
  @usableFromInline var endColumn: Int32

  /// Start of the node (including its anchor/tag properties); for an alias, the alias use site.
  @inlinable
  public var mark: SourceMark {
    get { SourceMark(file: file, line: Int(line), column: Int(column)) }
    set {
      file = newValue.file
      line = Self.clamp(newValue.line)
      column = Self.clamp(newValue.column)
    }
  }

  /// End of the node (the position just after it, as reported by libyaml). It always
  /// has the same file as `mark`; setting it only changes line and column.
  @inlinable
  public var endMark: SourceMark {
    get { SourceMark(file: file, line: Int(endLine), column: Int(endColumn)) }
    set {
      endLine = Self.clamp(newValue.line)
      endColumn = Self.clamp(newValue.column)
    }
  }

  @inlinable
  public init(value: Value, tag: String? = nil, mark: SourceMark, endMark: SourceMark) {
    self.value = value
    self.tag = tag
    self.file = mark.file
    self.line = Self.clamp(mark.line)
    self.column = Self.clamp(mark.column)
    self.endLine = Self.clamp(endMark.line)
    self.endColumn = Self.clamp(endMark.column)
  }

  @inlinable
  init(value: Value, tag: String?, file: String, line: Int, column: Int, endLine: Int, endColumn: Int) {
    self.value = value
    self.tag = tag
    self.file = file
    self.line = Self.clamp(line)
    self.column = Self.clamp(column)
    self.endLine = Self.clamp(endLine)
    self.endColumn = Self.clamp(endColumn)
  }

  @inlinable
  static func clamp(_ n: Int) -> Int32 {
    Int32(truncatingIfNeeded: min(max(n, Int(Int32.min)), Int(Int32.max)))
  }

  /// Moves the node to another location (used for alias use sites).
  @inlinable
  mutating func relocate(line: Int, column: Int, endLine: Int, endColumn: Int) {
    self.line = Self.clamp(line)
    self.column = Self.clamp(column)
    self.endLine = Self.clamp(endLine)
    self.endColumn = Self.clamp(endColumn)
  }

  /// The scalar text, nil unless this node is a scalar.
  @inlinable
  public var scalarText: String? {
    if case .scalar(let text, _) = value { return text }
    return nil
  }

  /// The scalar style, nil unless this node is a scalar.
  @inlinable
  public var scalarStyle: ScalarStyle? {
    if case .scalar(_, let style) = value { return style }
    return nil
  }

  /// The items, nil unless this node is a sequence.
  @inlinable
  public var sequenceItems: [YAMLNode]? {
    if case .sequence(let items) = value { return items }
    return nil
  }

  /// The pairs, nil unless this node is a mapping.
  @inlinable
  public var mappingPairs: [YAMLPair]? {
    if case .mapping(let pairs) = value { return pairs }
    return nil
  }

  @inlinable public var isScalar: Bool {
    if case .scalar = value { return true }
    return false
  }
  @inlinable public var isSequence: Bool {
    if case .sequence = value { return true }
    return false
  }
  @inlinable public var isMapping: Bool {
    if case .mapping = value { return true }
    return false
  }

  /// True for an untagged plain scalar that YAML resolves to null:
  /// empty, `~`, `null`, `Null`, `NULL`.
  @inlinable
  public var isPlainNull: Bool {
    guard tag == nil, case .scalar(let text, .plain) = value else { return false }
    switch text {
    case "", "~", "null", "Null", "NULL": return true
    default: return false
    }
  }

  /// "scalar", "sequence" or "mapping" — for messages.
  public var kindName: String {
    switch value {
    case .scalar: return "scalar"
    case .sequence: return "sequence"
    case .mapping: return "mapping"
    }
  }

  /// For a mapping: the value of the first pair whose key is a scalar with this text
  /// (any scalar style, so `a` and `"a"` both match "a"). Nil otherwise.
  public subscript(key: String) -> YAMLNode? {
    guard case .mapping(let pairs) = value else { return nil }
    for pair in pairs {
      if case .scalar(let text, _) = pair.key.value, text == key { return pair.value }
    }
    return nil
  }

  /// For a mapping: the first pair whose key is a scalar with this text.
  public func pair(forKey key: String) -> YAMLPair? {
    guard case .mapping(let pairs) = value else { return nil }
    for pair in pairs {
      if case .scalar(let text, _) = pair.key.value, text == key { return pair }
    }
    return nil
  }
}

/// One document of a stream.
public struct YAMLDocument: Sendable {
  /// Nil for an empty document (`---` followed by nothing, or only comments).
  public var root: YAMLNode?
  /// 0-based position of the document within its file.
  public var index: Int
  /// Start of the document (the `---` if explicit, otherwise its first token).
  public var mark: SourceMark
  /// Whether any node of the document carries an explicit tag (`!!str`, `!foo`, …), so a
  /// consumer that checks tags can skip the walk for the common, untagged document.
  public var hasTags: Bool

  @inlinable
  public init(root: YAMLNode?, index: Int, mark: SourceMark, hasTags: Bool = false) {
    self.root = root
    self.index = index
    self.mark = mark
    self.hasTags = hasTags
  }
}

/// The tags of the YAML 1.2 core schema, as libyaml resolves them (`!!str` is
/// `tag:yaml.org,2002:str`), and how messages show a tag.
public enum CoreTag: String, Sendable, CaseIterable {
  case str, int, float, bool, null, map, seq

  public static let prefix = "tag:yaml.org,2002:"
  /// The non-specific tag `!`: a scalar written with it is a string, a collection keeps its kind.
  public static let nonSpecific = "!"

  /// The core-schema tag of a resolved tag string; nil for any other tag (`!!binary`, `!foo`, `tag:example.com,2000:x`).
  public init?(resolved tag: String) {
    guard tag.hasPrefix(Self.prefix) else { return nil }
    self.init(rawValue: String(tag.dropFirst(Self.prefix.utf8.count)))
  }

  public var resolved: String { Self.prefix + rawValue }
  public var shorthand: String { "!!" + rawValue }

  /// `!!name` for a tag under `tag:yaml.org,2002:`, `!<…>` for another URI, the tag as written
  /// otherwise; invisible characters escaped (see `InvisibleText`).
  public static func display(_ tag: String) -> String {
    let shown: String
    if tag.hasPrefix(prefix) {
      shown = "!!" + tag.dropFirst(prefix.utf8.count)
    } else if tag.hasPrefix("!") {
      shown = tag
    } else {
      shown = "!<\(tag)>"
    }
    return InvisibleText.escaped(shown.count > 60 ? String(shown.prefix(57)) + "..." : shown)
  }
}

/// Characters that do not show on a terminal, or show as an ordinary space: zero-width and
/// format characters (U+200B, U+FEFF byte order mark, bidirectional controls), default-ignorable
/// code points, line and paragraph separators, and spaces other than U+0020. Messages that echo
/// a key or a value write them as `\u{FEFF}`, so `summary` and `\u{FEFF}summary` look different.
public enum InvisibleText {
  public static func isInvisible(_ u: Unicode.Scalar) -> Bool {
    if u.value < 0x80 { return false }
    let p = u.properties
    if p.isDefaultIgnorableCodePoint { return true }
    switch p.generalCategory {
    case .format, .lineSeparator, .paragraphSeparator, .spaceSeparator, .control: return true
    default: return false
    }
  }

  public static func contains(_ s: String) -> Bool {
    s.unicodeScalars.contains(where: isInvisible)
  }

  /// `s` with each invisible character written as `\u{XXXX}`.
  public static func escaped(_ s: String) -> String {
    guard contains(s) else { return s }
    var out = ""
    for u in s.unicodeScalars {
      if isInvisible(u) { out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}" } else { out.unicodeScalars.append(u) }
    }
    return out
  }

  /// `s` without its invisible characters (for did-you-mean suggestions).
  public static func removed(_ s: String) -> String {
    var out = ""
    for u in s.unicodeScalars where !isInvisible(u) { out.unicodeScalars.append(u) }
    return out
  }

  /// "U+FEFF ZERO WIDTH NO-BREAK SPACE" for the first invisible character of `s` ("and N more"
  /// when there are several), nil when there is none.
  public static func describeFirst(_ s: String) -> String? {
    let found = s.unicodeScalars.filter(isInvisible)
    guard let u = found.first else { return nil }
    let hex = String(u.value, radix: 16, uppercase: true)
    var text = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    if let name = u.properties.name { text += " " + name }
    if found.count > 1 { text += " and \(found.count - 1) more" }
    return text
  }
}
