import Testing

@testable import YAMLKit

/// Resolves a loaded node with the YAML 1.2 core schema (plain scalars only; quoted scalars
/// are strings), so that emitted values can be compared with what a reader sees.
private func coreValue(_ node: YAMLNode) -> YAMLValue {
  switch node.value {
  case .scalar(let text, let style):
    guard style == .plain, node.tag == nil else { return .string(text) }
    return coreScalar(text)
  case .sequence(let items):
    return .sequence(items.map(coreValue))
  case .mapping(let pairs):
    return .mapping(pairs.map { ($0.key.scalarText ?? "<complex>", coreValue($0.value)) })
  }
}

private func matches(_ pattern: String, _ text: String) -> Bool {
  (try? Regex(pattern).wholeMatch(in: text)) != nil
}

private func coreScalar(_ text: String) -> YAMLValue {
  switch text {
  case "", "~", "null", "Null", "NULL": return .null
  case "true", "True", "TRUE": return .bool(true)
  case "false", "False", "FALSE": return .bool(false)
  case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .double(.infinity)
  case "-.inf", "-.Inf", "-.INF": return .double(-.infinity)
  case ".nan", ".NaN", ".NAN": return .double(.nan)
  default: break
  }
  if matches("[-+]?[0-9]+", text), let i = Int(text) { return .int(i) }
  if matches("0o[0-7]+", text), let i = Int(text.dropFirst(2), radix: 8) { return .int(i) }
  if matches("0x[0-9a-fA-F]+", text), let i = Int(text.dropFirst(2), radix: 16) { return .int(i) }
  if matches("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?", text), let d = Double(text) { return .double(d) }
  return .string(text)
}

/// The same value with every `flow` flag cleared (the loader does not report styles of collections).
private func blockForm(_ v: YAMLValue) -> YAMLValue {
  switch v {
  case .sequence(let items, _): return .sequence(items.map(blockForm))
  case .mapping(let pairs, _): return .mapping(pairs.map { ($0.0, blockForm($0.1)) })
  default: return v
  }
}

/// Emits, checks the output shape, loads it back and returns the root.
private func roundTrip(
  _ value: YAMLValue, comment: String? = nil,
  sourceLocation: SourceLocation = #_sourceLocation
) throws -> (text: String, root: YAMLNode?) {
  let bytes = try YAMLEmitter.emit(value, comment: comment)
  let text = String(decoding: bytes, as: UTF8.self)
  #expect(bytes.last == UInt8(ascii: "\n"), "ends in a newline: \(text)", sourceLocation: sourceLocation)
  let result = YAMLLoader.load(bytes, file: "emitted.yaml")
  #expect(result.errors.isEmpty, "\(result.errors) in:\n\(text)", sourceLocation: sourceLocation)
  #expect(result.documents.count == 1, "one document in:\n\(text)", sourceLocation: sourceLocation)
  return (text, result.documents.first?.root)
}

/// Round-trips and expects the core-schema reading to equal the value.
private func expectRoundTrip(_ value: YAMLValue, sourceLocation: SourceLocation = #_sourceLocation) throws {
  let (text, root) = try roundTrip(value, sourceLocation: sourceLocation)
  let node = try #require(root, "empty document:\n\(text)", sourceLocation: sourceLocation)
  #expect(coreValue(node) == blockForm(value), "emitted:\n\(text)", sourceLocation: sourceLocation)
}

@Suite struct EmitterTests {
  /// Strings a resolver would read as something else, or that plain style cannot carry.
  static let trickyStrings: [String] = [
    "true", "false", "True", "FALSE", "yes", "no", "No", "on", "OFF", "y", "n",
    "null", "Null", "~", "", " ", "  ",
    "1", "-1", "+1", "007", "1.5", "-1.5", ".5", "1e3", "1.0e+20", "0x1F", "0o17", "0b101", "1_000", "1:20",
    ".inf", "-.inf", "+.INF", ".nan", ".NaN",
    "2026-01-01", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
    " leading", "trailing ", "\tlead tab", "trail tab\t",
    "a: b", "key:", ":", "a #b", "#comment", "a#b",
    "- item", "-", "--", "---", "...", "... x", "? q", "?", "*alias", "&anchor", "!tag", "!!str", "%YAML", "@at", "`tick",
    "|", ">", "'single'", "\"double\"", "[a]", "{a: 1}", "a, b", ",", "]", "}",
    "line1\nline2", "trailing newline\n", "\n", "\r\n", "cr\rlf", "nel\u{85}x", "ls\u{2028}ps\u{2029}",
    "nul\u{0}byte", "bell\u{7}", "esc\u{1B}[0m", "del\u{7F}", "c1\u{9B}", "bom\u{FEFF}x", "\u{FEFF}", "nonchar\u{FFFE}",
    "tab\tinside", "<<", "=",
    "back\\slash", "quote\"inside", "it's",
  ]

  @Test func trickyStringsReadBackAsTheSameStrings() throws {
    for s in Self.trickyStrings {
      try expectRoundTrip(.string(s))
      try expectRoundTrip(.sequence([.string(s)]))
      try expectRoundTrip(.mapping([("k", .string(s))]))
      try expectRoundTrip(.sequence([.string(s), .string("x")], flow: true))
      try expectRoundTrip(.mapping([("k", .string(s)), ("j", .int(1))], flow: true))
    }
  }

  @Test func keysThatNeedQuoting() throws {
    var pairs: [(String, YAMLValue)] = []
    for (i, s) in Self.trickyStrings.enumerated() { pairs.append((s, .int(i))) }
    pairs.append((String(repeating: "long key ", count: 40), .string("v")))  // > 128 chars: not a simple key
    try expectRoundTrip(.mapping(pairs))
    try expectRoundTrip(.mapping(pairs, flow: true))
    // `<<` quoted is an ordinary key, not a merge.
    let (text, root) = try roundTrip(.mapping([("<<", .mapping([("a", .int(1))]))]))
    #expect(text.hasPrefix("\"<<\":"), "\(text)")
    #expect(keys(root) == ["<<"])
  }

  @Test func plainWhereSafeAndDoubleQuotedOtherwise() throws {
    let value: YAMLValue = .mapping([
      ("name", .string("hello world")),
      ("version", .string("1.2.3")),
      ("count", .string("12 apples")),
      ("word", .string("1password")),
      ("url", .string("https://example.com/a?b=c#frag")),
      ("colon", .string("a:b")),
      ("unicode", .string("héllo wörld ✓ 日本")),
      ("bool", .string("true")),
      ("empty", .string("")),
      ("multi", .string("a\nb")),
      ("date", .string("2026-01-01")),
    ])
    let text = try YAMLEmitter.emitString(value)
    #expect(
      text == """
        name: hello world
        version: "1.2.3"
        count: 12 apples
        word: 1password
        url: https://example.com/a?b=c#frag
        colon: a:b
        unicode: héllo wörld ✓ 日本
        bool: "true"
        empty: ""
        multi: "a\\nb"
        date: "2026-01-01"

        """)
    try expectRoundTrip(value)
  }

  @Test func scalarsOfOtherTypes() throws {
    let value: YAMLValue = .mapping([
      ("null", .null), ("yes", .bool(true)), ("no", .bool(false)),
      ("zero", .int(0)), ("neg", .int(-42)), ("max", .int(.max)), ("min", .int(.min)),
      ("one", .double(1)), ("half", .double(0.5)), ("negzero", .double(-0.0)), ("tiny", .double(1e-5)),
      ("huge", .double(1.5e300)), ("least", .double(.leastNonzeroMagnitude)), ("third", .double(1.0 / 3)),
      ("inf", .double(.infinity)), ("ninf", .double(-.infinity)),
    ])
    let text = try YAMLEmitter.emitString(value)
    #expect(text.contains("\"null\": null\n"), "a key that reads as null is quoted")
    #expect(text.contains("\"yes\": true\n"))
    #expect(text.contains("one: 1.0\n"))
    #expect(text.contains("tiny: 1.0e-05\n"))
    #expect(text.contains("inf: .inf\n"))
    #expect(text.contains("ninf: -.inf\n"))
    try expectRoundTrip(value)
    let nan = try roundTrip(.mapping([("nan", .double(.nan))]))
    #expect(nan.text == "nan: .nan\n")
    if case .double(let d) = try coreValue(#require(nan.root?["nan"])) { #expect(d.isNaN) } else { Issue.record("not a double") }
  }

  @Test func nestedBlockCollections() throws {
    let value: YAMLValue = .mapping([
      ("apiVersion", .string("ytempire.io/v1")),
      (
        "status",
        .mapping([
          (
            "conditions",
            .sequence([
              .mapping([("type", .string("Ready")), ("status", .string("True")), ("reason", .string("Applied"))]),
              .mapping([("type", .string("Quota")), ("remaining", .int(9500))]),
            ])
          ),
          ("matrix", .sequence([.sequence([.int(1), .int(2)]), .sequence([]), .mapping([])])),
          ("tags", .sequence([.string("a"), .string("b")])),
          ("empty", .mapping([])),
          ("none", .sequence([])),
        ])
      ),
    ])
    let text = try YAMLEmitter.emitString(value)
    #expect(
      text == """
        apiVersion: ytempire.io/v1
        status:
          conditions:
          - type: Ready
            status: "True"
            reason: Applied
          - type: Quota
            remaining: 9500
          matrix:
          - - 1
            - 2
          - []
          - {}
          tags:
          - a
          - b
          empty: {}
          none: []

        """)
    try expectRoundTrip(value)
  }

  @Test func flowStyle() throws {
    let value: YAMLValue = .mapping([
      ("point", .mapping([("x", .int(1)), ("z", .double(2.5)), ("y", .int(3))], flow: true)),
      ("list", .sequence([.string("a"), .string("b, c"), .null, .bool(true)], flow: true)),
      ("nested", .sequence([.mapping([("k", .sequence([.int(1)]))])], flow: true)),
    ])
    let text = try YAMLEmitter.emitString(value)
    #expect(
      text == """
        point: {x: 1, z: 2.5, "y": 3}
        list: [a, "b, c", null, true]
        nested: [{k: [1]}]

        """)
    try expectRoundTrip(value)
  }

  @Test func emptyCollectionsAndRootScalars() throws {
    #expect(try YAMLEmitter.emitString(.mapping([])) == "{}\n")
    #expect(try YAMLEmitter.emitString(.sequence([])) == "[]\n")
    try expectRoundTrip(.mapping([]))
    try expectRoundTrip(.sequence([]))
    for v: YAMLValue in [.null, .bool(false), .int(7), .double(2), .string("plain"), .string("no"), .string("")] {
      try expectRoundTrip(v)
    }
  }

  @Test func unicode() throws {
    let value: YAMLValue = .mapping([
      ("ключ", .string("значение")),
      ("emoji 🎬", .string("👍🏽 ok")),
      ("combining", .string("e\u{301}")),
      ("precomposed", .string("\u{E9}")),
      ("cjk", .sequence([.string("日本語"), .string("中文")])),
      ("nbsp", .string("\u{A0}x\u{A0}")),
    ])
    let text = try YAMLEmitter.emitString(value)
    #expect(text.contains("ключ: значение\n"), "written as UTF-8, not escaped")
    // libyaml 0.2.5 counts only BMP characters as printable: others are written escaped
    // (double-quoted), which still reads back as the same text.
    #expect(text.contains("\"emoji \\U0001F3AC\": \"\\U0001F44D\\U0001F3FD ok\"\n"), "\(text)")
    try expectRoundTrip(value)
    // `é` and `e` + combining acute are different keys for the loader: both survive.
    let (_, root) = try roundTrip(.mapping([("\u{E9}", .int(1)), ("e\u{301}", .int(2))]))
    #expect(root?.mappingPairs?.count == 2)
  }

  @Test func longLinesAreNotFolded() throws {
    let long = Array(repeating: "word", count: 200).joined(separator: " ")
    let value: YAMLValue = .mapping([("plain", .string(long)), ("quoted", .string(long + "\n"))])
    let text = try YAMLEmitter.emitString(value)
    #expect(text.split(separator: "\n").count == 2, "\(text)")
    try expectRoundTrip(value)
  }

  @Test func tenThousandElements() throws {
    let items = (0..<10_000).map { i -> YAMLValue in i % 2 == 0 ? .int(i) : .string("item-\(i)") }
    let value: YAMLValue = .mapping([("items", .sequence(items))])
    let (text, root) = try roundTrip(value)
    #expect(root?["items"]?.sequenceItems?.count == 10_000)
    #expect(try coreValue(#require(root)) == value)
    #expect(text.hasPrefix("items:\n- 0\n- item-1\n"))
  }

  @Test func commentHeader() throws {
    let value: YAMLValue = .mapping([("ready", .bool(true))])
    let text = try YAMLEmitter.emitString(value, comment: "Written by ytempire; do not edit.\n\nrevision: main@abc")
    #expect(
      text == """
        # Written by ytempire; do not edit.
        #
        # revision: main@abc
        ready: true

        """)
    try expectRoundTrip(value)
    #expect(try roundTrip(value, comment: "x").root?["ready"]?.scalarText == "true")
    // Every kind of line break starts a new comment line (a NEL left inside would end the comment).
    let breaks = try YAMLEmitter.emitString(.int(1), comment: "a\r\nb\rc\u{85}d\u{2028}e\n")
    #expect(breaks == "# a\n# b\n# c\n# d\n# e\n1\n")
    let (_, root) = try roundTrip(.int(1), comment: "a\u{85}b: c")
    #expect(root?.scalarText == "1")
    #expect(try YAMLEmitter.emitString(.int(1), comment: "") == "1\n")
    #expect(try YAMLEmitter.emitString(.int(1), comment: "tab\there") == "# tab\there\n1\n")
    #expect(throws: YAMLEmitError.self) { try YAMLEmitter.emit(.null, comment: "bell\u{7}") }
  }

  @Test func refusesWhatTheLoaderWouldRefuse() throws {
    do {
      _ = try YAMLEmitter.emit(.mapping([("a", .mapping([("x", .int(1)), ("y", .int(2)), ("x", .int(3))]))]))
      Issue.record("duplicate key accepted")
    } catch let e as YAMLEmitError {
      #expect(e.code == .duplicateKey)
      #expect(e.path == "a")
    }
    // Many keys (hash table path).
    var pairs = (0..<100).map { ("k\($0)", YAMLValue.int($0)) }
    try expectRoundTrip(.mapping(pairs))
    pairs.append(("k42", .null))
    #expect(throws: YAMLEmitError.self) { try YAMLEmitter.emit(.mapping(pairs)) }
    // Nesting: exactly the loader's limit is fine, one more is refused.
    func nested(_ n: Int) -> YAMLValue { n == 0 ? .int(0) : .sequence([nested(n - 1)]) }
    try expectRoundTrip(nested(YAMLLimits.default.maxDepth))
    do {
      _ = try YAMLEmitter.emit(nested(YAMLLimits.default.maxDepth + 1))
      Issue.record("too deep accepted")
    } catch let e as YAMLEmitError {
      #expect(e.code == .depthLimit)
    }
  }

  /// YAML 1.1 resolvers (PyYAML's patterns): a string left plain must not match any.
  private static let yaml11NonString: [String] = [
    "y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
    "~|null|Null|NULL|",
    "[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+",
    "[-+]?([0-9][0-9_]*)\\.[0-9_]*([eE][-+][0-9]+)?|\\.[0-9_]+([eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)",
    "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?([Tt]|[ \\t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](\\.[0-9]*)?(([ \\t]*)Z|[-+][0-9][0-9]?(:[0-9][0-9])?)?",
    "<<|=",
  ]

  @Test func randomStringsRoundTrip() throws {
    // Deterministic (SplitMix64), over an alphabet of indicators, digits, blanks, breaks,
    // controls and non-ASCII.
    var state: UInt64 = 0x5EED_1234_ABCD_0001
    func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    let alphabet = Array(
      "abcxyzEeTtZzYyNnOo0123456789.+-_:#?!&*%@`'\",[]{}|>~= \t\n\r\u{0}\u{7}\u{85}\u{A0}\u{2028}\u{FEFF}é日🎬".unicodeScalars)
    var strings: [String] = []
    for _ in 0..<3000 {
      let n = Int(next() % 7)
      var s = String.UnicodeScalarView()
      for _ in 0..<n { s.append(alphabet[Int(next() % UInt64(alphabet.count))]) }
      strings.append(String(s))
    }
    let value: YAMLValue = .mapping([
      ("block", .sequence(strings.map { .string($0) })),
      ("flow", .sequence(strings.map { .string($0) }, flow: true)),
      ("keys", .mapping(strings.enumerated().map { ("\($0.element)\u{1}\($0.offset)", .int($0.offset)) })),
      ("bare keys", .mapping(Array(Set(strings)).sorted().map { ($0, .null) }, flow: true)),
    ])
    try expectRoundTrip(value)
    // Whatever was left plain is a string for YAML 1.1 readers too.
    let root = try #require(try roundTrip(value).root)
    var plain: [String] = []
    for node in (root["block"]?.sequenceItems ?? []) + (root["flow"]?.sequenceItems ?? []) where node.scalarStyle == .plain {
      plain.append(node.scalarText ?? "")
    }
    for pair in root["bare keys"]?.mappingPairs ?? [] where pair.key.scalarStyle == .plain {
      plain.append(pair.key.scalarText ?? "")
    }
    #expect(plain.count > 500, "most short strings are plain: \(plain.count)")
    for text in plain {
      for pattern in Self.yaml11NonString {
        #expect(!matches(pattern, text), "'\(text)' left plain but YAML 1.1 reads it as a non-string")
      }
    }
  }

  @Test func equality() {
    #expect(YAMLValue.mapping([("a", .int(1)), ("b", .null)]) == .mapping([("a", .int(1)), ("b", .null)]))
    #expect(YAMLValue.mapping([("a", .int(1)), ("b", .null)]) != .mapping([("b", .null), ("a", .int(1))]))
    #expect(YAMLValue.sequence([.int(1)]) != .sequence([.int(1)], flow: true))
    #expect(YAMLValue.int(1) != .double(1))
    #expect(YAMLValue.string("1") != .int(1))
  }
}
