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

    @inlinable public var isScalar: Bool { if case .scalar = value { return true }; return false }
    @inlinable public var isSequence: Bool { if case .sequence = value { return true }; return false }
    @inlinable public var isMapping: Bool { if case .mapping = value { return true }; return false }

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

    @inlinable
    public init(root: YAMLNode?, index: Int, mark: SourceMark) {
        self.root = root
        self.index = index
        self.mark = mark
    }
}
