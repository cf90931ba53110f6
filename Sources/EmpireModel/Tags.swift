import YAMLKit

/// YAML tags. ytempire reads the YAML 1.2 core schema and honours its tags: `!!str` makes any
/// scalar a string (`!!str 0.4` is the text "0.4", not a number), `!!int`, `!!float`, `!!bool` and
/// `!!null` make a scalar of that type when its content is written as one (`!!int "12"` is 12,
/// `!!int abc` is an error), `!!map` and `!!seq` only confirm a collection's kind, and the
/// non-specific `!` makes a scalar a string. Every other tag (`!custom`, `!!binary`,
/// `!!timestamp`, `!<tag:example.com,2000:x>`) is a located `unsupported-tag` error.
extension NodeDecoder {
  /// Put on a node whose tag was reported: the decoders skip it, so it gets one error, not two.
  static let rejectedTag = "!ytempire/rejected-tag"

  /// The root of a document with its tags checked and resolved: afterwards a node's tag is nil,
  /// `!!str` (the scalar's style is then quoted, so it reads as a string everywhere),
  /// `!!int`/`!!float`/`!!bool` (a plain scalar of that type), or `rejectedTag`.
  func tagsResolved(_ doc: YAMLDocument) -> YAMLNode? {
    guard let root = doc.root else { return nil }
    return doc.hasTags ? resolveTags(root) : root
  }

  func resolveTags(_ node: YAMLNode) -> YAMLNode {
    var n = node
    switch node.value {
    case .scalar: break
    case .sequence(let items):
      if items.contains(where: Self.mayHaveTags) { n.value = .sequence(items.map(resolveTags)) }
    case .mapping(let pairs):
      if pairs.contains(where: { Self.mayHaveTags($0.key) || Self.mayHaveTags($0.value) }) {
        n.value = .mapping(pairs.map { YAMLPair(key: resolveTags($0.key), value: resolveTags($0.value)) })
      }
    }
    guard let tag = node.tag else { return n }
    let core = CoreTag(resolved: tag)
    if tag == CoreTag.nonSpecific || core == .str {
      guard case .scalar(let s, let style) = n.value else {
        if tag == CoreTag.nonSpecific {
          n.tag = nil
          return n
        }
        return mismatch(n, "!!str tags a scalar (a string), but this is a \(n.kindName)")
      }
      if style == .plain { n.value = .scalar(s, .doubleQuoted) }
      n.tag = CoreTag.str.resolved
      return n
    }
    switch core {
    case .map?:
      guard n.isMapping else { return mismatch(n, "!!map tags a mapping, but this is a \(n.kindName)") }
      n.tag = nil
    case .seq?:
      guard n.isSequence else { return mismatch(n, "!!seq tags a list, but this is a \(n.kindName)") }
      n.tag = nil
    case .int?, .float?, .bool?, .null?:
      let core = core!
      guard case .scalar(let s, _) = n.value else {
        return mismatch(n, "\(core.shorthand) tags a scalar, but this is a \(n.kindName)")
      }
      let fits: Bool
      switch (core, CoreScalar.resolve(s)) {
      case (.int, .int): fits = true
      case (.int, _): fits = CoreScalar.isIntegerSpelling(s)  // beyond 64 bits: the field reports the range
      case (.float, .int), (.float, .float): fits = true
      case (.bool, .bool), (.null, .null): fits = true
      default: fits = false
      }
      // The content is not repeated: it may be a secret's value.
      guard fits else {
        return mismatch(
          n, "the value tagged \(core.shorthand) is not \(Self.article(core)) as YAML 1.2 writes one (\(Self.spelling(core)))")
      }
      if core == .null {
        n.value = .scalar("", .plain)
        n.tag = nil
      } else {
        n.value = .scalar(s, .plain)
        n.tag = core.resolved
      }
    default:
      diags.error(
        .unsupportedTag,
        "YAML tag '\(CoreTag.display(tag))' is not supported; ytempire reads YAML 1.2 with the core schema's tags only (!!str, !!int, !!float, !!bool, !!null, !!map, !!seq)",
        at: n.mark)
      n.tag = Self.rejectedTag
    }
    return n
  }

  private func mismatch(_ n: YAMLNode, _ message: String) -> YAMLNode {
    diags.error(.tagMismatch, message, at: n.mark)
    var r = n
    r.tag = Self.rejectedTag
    return r
  }

  /// A collection may hold tagged nodes anywhere below; a scalar only if it is tagged itself.
  private static func mayHaveTags(_ n: YAMLNode) -> Bool { n.tag != nil || !n.isScalar }

  private static func article(_ t: CoreTag) -> String {
    switch t {
    case .int: "an integer"
    case .float: "a number"
    case .bool: "a boolean"
    default: "null"
    }
  }

  private static func spelling(_ t: CoreTag) -> String {
    switch t {
    case .int: "digits with an optional sign, 0o… or 0x…"
    case .float: "such as 1, 0.5, 1e3, .inf or .nan"
    case .bool: "true or false"
    default: "empty, ~ or null"
    }
  }

  /// True for a node whose tag was reported (decoders return nil for it without a second error).
  func isRejected(_ n: YAMLNode) -> Bool { n.tag == Self.rejectedTag }

  /// " (tagged !!str)" for a scalar made a string by its tag, "" otherwise: messages that say a
  /// value is a string say why when it does not look like one.
  func tagNote(_ n: YAMLNode) -> String {
    n.tag == CoreTag.str.resolved ? " (tagged !!str)" : ""
  }
}
