internal import CYAML

/// An ordered YAML value to emit.
public indirect enum YAMLValue: Sendable, Equatable {
  case null
  case bool(Bool)
  case int(Int)
  case double(Double)
  case string(String)
  case sequence([YAMLValue], flow: Bool = false)
  /// Keys in the given order. Keys must be unique (compared by their UTF-8 bytes, as the loader does).
  case mapping([(String, YAMLValue)], flow: Bool = false)

  /// Structural equality: same cases, same order of items and keys, same `flow` flags.
  /// Doubles compare with `==` (so `.double(.nan)` is not equal to itself).
  public static func == (lhs: YAMLValue, rhs: YAMLValue) -> Bool {
    switch (lhs, rhs) {
    case (.null, .null): return true
    case (.bool(let a), .bool(let b)): return a == b
    case (.int(let a), .int(let b)): return a == b
    case (.double(let a), .double(let b)): return a == b
    case (.string(let a), .string(let b)): return a == b
    case (.sequence(let a, let fa), .sequence(let b, let fb)): return fa == fb && a == b
    case (.mapping(let a, let fa), .mapping(let b, let fb)):
      guard fa == fb, a.count == b.count else { return false }
      for i in a.indices where a[i].0 != b[i].0 || a[i].1 != b[i].1 { return false }
      return true
    default: return false
    }
  }
}

/// Why a value could not be emitted.
public struct YAMLEmitError: Error, Sendable, CustomStringConvertible {
  public enum Code: String, Sendable {
    /// A mapping has the same key twice (the loader would refuse the file).
    case duplicateKey = "duplicate-key"
    /// Collections nested deeper than the loader's default `maxDepth`.
    case depthLimit = "depth-limit"
    /// The comment contains a control character that YAML does not allow.
    case invalidComment = "invalid-comment"
    /// libyaml's emitter failed.
    case emitter
  }

  public var code: Code
  public var message: String
  /// Where in the value the problem is, e.g. `status.items[3]` (empty for the root).
  public var path: String

  public init(code: Code, message: String, path: String = "") {
    self.code = code
    self.message = message
    self.path = path
  }

  public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Writes `YAMLValue`s as YAML with libyaml's emitter: one document, UTF-8, block style
/// unless a collection asks for flow, 2-space indentation, no line folding. Thread-safe:
/// every call uses its own emitter.
///
/// Everything it writes reads back through ``YAMLLoader`` as the same value (strings as the
/// same strings, numbers as numbers): strings that a YAML 1.2 core-schema reader, or a
/// YAML 1.1 reader, would resolve to something else (`true`, `no`, `null`, `~`, `1.5`,
/// `0x1F`, `2026-01-01`, `<<`, …) and strings that plain style cannot carry (empty, leading
/// or trailing blanks, `: `, ` #`, leading indicators, line breaks, control characters) are
/// written double-quoted; other strings are plain. Duplicate keys and nesting deeper than
/// `YAMLLimits.default.maxDepth` are refused, since the loader would refuse the file.
///
/// Layout is libyaml's: a block sequence that is a mapping value starts at the key's
/// column (`key:` then `- item`, as PyYAML and kubectl write it); items of sequences and
/// values of mappings nested in them are indented by 2; empty collections are `[]` / `{}`.
/// Text is written as UTF-8, except that libyaml 0.2.5 treats characters outside the Basic
/// Multilingual Plane (emoji) as non-printable and writes them as `\U…` escapes in a
/// double-quoted scalar; they read back as the same characters.
public enum YAMLEmitter {
  /// One document, UTF-8, ending in a newline. `comment` becomes leading comment lines:
  /// each of its lines is written as `# line` (an empty line as `#`); nil or empty: none.
  public static func emit(_ value: YAMLValue, comment: String? = nil) throws -> [UInt8] {
    var out = try commentHeader(comment)
    let body = try emitDocument(value)
    out.append(contentsOf: body)
    if out.last != UInt8(ascii: "\n") { out.append(UInt8(ascii: "\n")) }
    return out
  }

  /// `emit` as a `String`.
  public static func emitString(_ value: YAMLValue, comment: String? = nil) throws -> String {
    String(decoding: try emit(value, comment: comment), as: UTF8.self)
  }

  // MARK: - Comment header

  static func commentHeader(_ comment: String?) throws -> [UInt8] {
    guard let comment, !comment.isEmpty else { return [] }
    var out: [UInt8] = []
    var line = ""
    func flush() {
      out.append(UInt8(ascii: "#"))
      if !line.isEmpty {
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: line.utf8)
      }
      out.append(UInt8(ascii: "\n"))
      line = ""
    }
    var previousWasCR = false
    var endsWithBreak = false
    for ch in comment.unicodeScalars {
      let v = ch.value
      defer { previousWasCR = v == 0x0D }
      switch v {
      case 0x0A where previousWasCR:
        continue  // CRLF: the CR already ended the line
      case 0x0A, 0x0D, 0x85, 0x2028, 0x2029:
        // Every YAML line break ends a comment line; a NEL left inside would end the comment.
        flush()
        endsWithBreak = true
        continue
      case 0x09, 0x20...0x7E, 0xA0...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF:
        line.unicodeScalars.append(ch)
      default:
        throw YAMLEmitError(
          code: .invalidComment,
          message: "comment contains the control character \(TextPosition.codePointText(Int32(bitPattern: v))), which YAML does not allow")
      }
      endsWithBreak = false
    }
    // A final line break ends the last line; it does not start an empty one.
    if !endsWithBreak { flush() }
    return out
  }

  // MARK: - Document

  /// The emitter's output handler appends here.
  final class OutputBuffer {
    var bytes: [UInt8] = []
  }

  static func emitDocument(_ value: YAMLValue) throws -> [UInt8] {
    let emitter = UnsafeMutablePointer<yaml_emitter_t>.allocate(capacity: 1)
    defer { emitter.deallocate() }
    guard yaml_emitter_initialize(emitter) != 0 else {
      throw YAMLEmitError(code: .emitter, message: "cannot initialise libyaml emitter (out of memory)")
    }
    defer { yaml_emitter_delete(emitter) }
    let output = OutputBuffer()
    // libyaml calls the handler synchronously from yaml_emitter_emit/flush only, so an
    // unretained reference is valid for the emitter's whole use (`output` outlives it).
    yaml_emitter_set_output(
      emitter,
      { data, buffer, size in
        guard let data else { return 0 }
        let box = Unmanaged<OutputBuffer>.fromOpaque(data).takeUnretainedValue()
        if let buffer, size > 0 {
          box.bytes.append(contentsOf: UnsafeBufferPointer(start: buffer, count: size))
        }
        return 1
      }, Unmanaged.passUnretained(output).toOpaque())
    yaml_emitter_set_encoding(emitter, YAML_UTF8_ENCODING)
    yaml_emitter_set_unicode(emitter, 1)
    yaml_emitter_set_indent(emitter, 2)
    yaml_emitter_set_width(emitter, -1)  // negative: unlimited, never fold long lines
    yaml_emitter_set_break(emitter, YAML_LN_BREAK)

    var writer = EventWriter(emitter: emitter)
    try writer.emit { yaml_stream_start_event_initialize(&$0, YAML_UTF8_ENCODING) }
    try writer.emit { yaml_document_start_event_initialize(&$0, nil, nil, nil, 1) }
    try writer.node(value, depth: 0, inFlow: false, path: "")
    try writer.emit { yaml_document_end_event_initialize(&$0, 1) }
    try writer.emit { yaml_stream_end_event_initialize(&$0) }
    guard yaml_emitter_flush(emitter) != 0 else { throw writer.emitterError() }
    withExtendedLifetime(output) {}
    return output.bytes
  }

  /// Feeds events to one emitter.
  struct EventWriter {
    let emitter: UnsafeMutablePointer<yaml_emitter_t>
    /// The loader's default depth limit: deeper output would not read back.
    let maxDepth = YAMLLimits.default.maxDepth

    /// Initialises an event with `make` and hands it to the emitter (which takes ownership).
    func emit(_ make: (inout yaml_event_t) -> Int32) throws {
      var event = yaml_event_t()
      guard make(&event) != 0 else {
        throw YAMLEmitError(code: .emitter, message: "cannot create a libyaml event (out of memory or invalid UTF-8)")
      }
      guard yaml_emitter_emit(emitter, &event) != 0 else { throw emitterError() }
    }

    func emitterError() -> YAMLEmitError {
      let problem = emitter.pointee.problem.map { String(cString: $0) } ?? "unknown libyaml emitter error"
      if emitter.pointee.error == YAML_MEMORY_ERROR {
        return YAMLEmitError(code: .emitter, message: "libyaml ran out of memory")
      }
      return YAMLEmitError(code: .emitter, message: "libyaml emitter: \(problem)")
    }

    func node(_ value: YAMLValue, depth: Int, inFlow: Bool, path: String) throws {
      switch value {
      case .null:
        try plain("null")
      case .bool(let b):
        try plain(b ? "true" : "false")
      case .int(let i):
        try plain(String(i))
      case .double(let d):
        try plain(YAMLEmitter.doubleText(d))
      case .string(let s):
        try string(s, inFlow: inFlow)
      case .sequence(let items, let flow):
        guard depth < maxDepth else { throw depthError(path) }
        let style = flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE
        try emit { yaml_sequence_start_event_initialize(&$0, nil, nil, 1, style) }
        for (i, item) in items.enumerated() {
          try node(item, depth: depth + 1, inFlow: inFlow || flow, path: "\(path)[\(i)]")
        }
        try emit { yaml_sequence_end_event_initialize(&$0) }
      case .mapping(let pairs, let flow):
        guard depth < maxDepth else { throw depthError(path) }
        try checkUniqueKeys(pairs, path: path)
        let style = flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE
        try emit { yaml_mapping_start_event_initialize(&$0, nil, nil, 1, style) }
        for (key, item) in pairs {
          try string(key, inFlow: inFlow || flow)
          try node(
            item, depth: depth + 1, inFlow: inFlow || flow,
            path: path.isEmpty ? YAMLEmitter.pathComponent(key) : "\(path).\(YAMLEmitter.pathComponent(key))")
        }
        try emit { yaml_mapping_end_event_initialize(&$0) }
      }
    }

    private func depthError(_ path: String) -> YAMLEmitError {
      YAMLEmitError(
        code: .depthLimit,
        message: "collections are nested more than \(maxDepth) levels deep, which the loader refuses",
        path: path)
    }

    /// A plain scalar that resolves to a non-string (null, bool, number).
    private func plain(_ text: String) throws {
      try scalar(text, style: YAML_PLAIN_SCALAR_STYLE, plainImplicit: 1, quotedImplicit: 0)
    }

    /// A string: plain when that reads back as the same string, double-quoted otherwise.
    private func string(_ text: String, inFlow: Bool) throws {
      if YAMLEmitter.isPlainSafe(text, inFlow: inFlow) {
        // libyaml may still choose a quoted style where its own analysis forbids plain.
        try scalar(text, style: YAML_PLAIN_SCALAR_STYLE, plainImplicit: 1, quotedImplicit: 1)
      } else {
        try scalar(text, style: YAML_DOUBLE_QUOTED_SCALAR_STYLE, plainImplicit: 0, quotedImplicit: 1)
      }
    }

    private func scalar(_ text: String, style: yaml_scalar_style_t, plainImplicit: Int32, quotedImplicit: Int32) throws {
      var bytes = Array(text.utf8)
      let length = bytes.count
      guard length <= Int(Int32.max) else {
        throw YAMLEmitError(code: .emitter, message: "scalar of \(length) bytes is too long for libyaml")
      }
      bytes.append(0)  // libyaml requires a non-null value pointer, also for the empty string
      try bytes.withUnsafeMutableBufferPointer { buf in
        try emit {
          yaml_scalar_event_initialize(
            &$0, nil, nil, buf.baseAddress, Int32(length),
            plainImplicit, quotedImplicit, style)
        }
      }
    }

    private func checkUniqueKeys(_ pairs: [(String, YAMLValue)], path: String) throws {
      guard pairs.count > 1 else { return }
      func duplicate(_ key: String) -> YAMLEmitError {
        YAMLEmitError(
          code: .duplicateKey,
          message: "duplicate key '\(Composer.shortText(key))' in mapping, which the loader refuses",
          path: path)
      }
      if pairs.count <= 16 {
        for i in 1..<pairs.count {
          for j in 0..<i where KeyBytes.equal(pairs[i].0, pairs[j].0) { throw duplicate(pairs[i].0) }
        }
        return
      }
      var table = KeyTable(minimumCapacity: pairs.count)
      for (i, pair) in pairs.enumerated() {
        let h = KeyBytes.hash(pair.0)
        if table.find(h, where: { KeyBytes.equal(pairs[$0].0, pair.0) }) != nil { throw duplicate(pair.0) }
        table.insert(h, index: i)
      }
    }
  }

  // MARK: - Scalars

  /// `path` component for a key in error messages.
  static func pathComponent(_ key: String) -> String {
    let simple =
      !key.isEmpty
      && key.unicodeScalars.allSatisfy {
        ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" || $0 == "-" || $0 == "/"
      }
    return simple ? key : "\"\(Composer.shortText(key))\""
  }

  /// A double as a YAML float that 1.2 core-schema and 1.1 readers both resolve to the same
  /// number: always with a fraction dot (`1.0`, `1.0e+20`), `.inf`, `-.inf`, `.nan`.
  static func doubleText(_ d: Double) -> String {
    if d.isNaN { return ".nan" }
    if d.isInfinite { return d < 0 ? "-.inf" : ".inf" }
    var s = d.description  // shortest round-tripping form: "1.0", "1e-05", "1.5e+20"
    if !s.contains(".") {
      if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        s.insert(contentsOf: ".0", at: e)
      } else {
        s += ".0"
      }
    }
    return s
  }

  /// Plain scalars that resolve to null, booleans or special floats in YAML 1.2's core
  /// schema or in YAML 1.1, plus the merge key `<<` and 1.1's value key `=`.
  private static let reservedWords: Set<String> = [
    "~", "null", "Null", "NULL",
    "true", "True", "TRUE", "false", "False", "FALSE",
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
    "on", "On", "ON", "off", "Off", "OFF",
    ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
    ".nan", ".NaN", ".NAN",
    "<<", "=",
  ]

  /// Whether `text` written as a plain scalar reads back as the same string. Conservative:
  /// when in doubt it says no (and the string is double-quoted).
  static func isPlainSafe(_ text: String, inFlow: Bool) -> Bool {
    let scalars = Array(text.unicodeScalars)
    guard let first = scalars.first, let last = scalars.last else { return false }  // empty
    if reservedWords.contains(text) { return false }
    // Indicators that cannot (or, for `-`, `?`, `:`, should not) start a plain scalar,
    // and leading blanks.
    if "-?:,[]{}#&*!|>'\"%@`".unicodeScalars.contains(first) || first == " " { return false }
    if last == " " || last == ":" { return false }
    if text.hasPrefix("...") { return false }  // document end marker
    if looksNumeric(scalars) { return false }
    var previous: Unicode.Scalar = " "
    for (i, s) in scalars.enumerated() {
      let v = s.value
      // Printable, no line breaks (NEL, LS, PS), no tab, no BOM, no non-characters.
      let printable =
        (0x20...0x7E).contains(v)
        || (v >= 0xA0 && v != 0x2028 && v != 0x2029 && v != 0xFEFF && v != 0xFFFE && v != 0xFFFF)
      if !printable { return false }
      if s == "#" && previous == " " { return false }  // comment
      if s == ":" {
        let next = i + 1 < scalars.count ? scalars[i + 1] : " "
        if next == " " || inFlow { return false }
      }
      if inFlow && ",[]{}".unicodeScalars.contains(s) { return false }
      previous = s
    }
    return true
  }

  /// Strings that some resolver might read as a number or timestamp: an optional sign,
  /// then a digit or `.digit`, and only characters that occur in YAML 1.1/1.2 ints, floats,
  /// sexagesimals and timestamps (`0x1F`, `0o17`, `0b101`, `1_000`, `1:20`, `1.5e+3`,
  /// `2026-01-01`, `2001-12-14 21:59:43.10 -5`, …). `12 apples` or `1password` stay plain.
  private static func looksNumeric(_ s: [Unicode.Scalar]) -> Bool {
    var i = 0
    if i < s.count && (s[i] == "+" || s[i] == "-") { i += 1 }
    guard i < s.count else { return false }
    func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }
    // `._5` too: PyYAML's YAML 1.1 float pattern allows underscores right after the dot.
    let startsNumber = isDigit(s[i]) || (s[i] == "." && i + 1 < s.count && (isDigit(s[i + 1]) || s[i + 1] == "_"))
    guard startsNumber else { return false }
    let alphabet = "0123456789abcdefABCDEFxXoO._:+- tTzZ".unicodeScalars
    return s[i...].allSatisfy { alphabet.contains($0) }
  }
}
