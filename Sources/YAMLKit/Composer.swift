internal import CYAML

private let mergeTag = "tag:yaml.org,2002:merge"
/// Mappings with more keys than this get a hash table (`KeyTable`) for duplicate detection.
private let linearKeyScanLimit = 16

/// An anchored node with its materialised size and height, so that an alias costs O(1).
struct AnchorEntry {
  var node: YAMLNode
  /// Number of nodes in the subtree (aliases inside counted with their full expansion).
  var count: Int
  /// 0 for a scalar, 1 + max child height for a collection.
  var height: Int
}

/// Merge sources recorded while a mapping is open, applied when it ends.
struct PendingMerge {
  /// Number of explicit pairs before the `<<` key: merged pairs are inserted here.
  var position: Int
  /// Maps in precedence order (earlier wins).
  var maps: [[YAMLPair]]
}

enum MappingState: UInt8 {
  case key, value, skipValue, mergeValue
}

/// An open collection. Its children live in `Composer.buffer[start...]`
/// (alternating key, value for mappings).
struct Frame {
  var isMapping: Bool
  var state: MappingState = .key
  var start: Int
  var anchor: String?
  var tag: String?
  var line: Int
  var column: Int
  var count: Int = 1
  var childHeight: Int = 0
  /// Key hash → buffer index of the key; built once a mapping has more than 16 keys.
  var keyTable: KeyTable? = nil
  var merges: [PendingMerge]? = nil
  var mergeKeyMark: SourceMark? = nil

  init(isMapping: Bool, start: Int, anchor: String?, tag: String?, line: Int, column: Int) {
    self.isMapping = isMapping
    self.start = start
    self.anchor = anchor
    self.tag = tag
    self.line = line
    self.column = column
  }
}

/// Builds node trees from libyaml events, one event at a time, with an explicit stack.
struct Composer: ~Copyable {
  let file: String
  let limits: YAMLLimits
  let checkDocumentSize: Bool

  var documents: [YAMLDocument] = []
  var errors: [YAMLError] = []
  var fatal = false

  private var buffer = NodeStack(capacity: 64)
  /// The innermost open collection (meaningful when `depth > 0`); kept out of `frames`
  /// so that the hot path updates it without array uniqueness checks.
  private var top = Frame(isMapping: false, start: 0, anchor: nil, tag: nil, line: 0, column: 0)
  /// The enclosing open collections, outermost first.
  private var frames: [Frame] = []
  /// Number of open collections (`frames.count + 1` when inside a collection).
  private var depth = 0
  private var anchors: [String: AnchorEntry] = [:]
  private var openAnchors = 0
  private var expansion = 0
  private var nodeCount = 0
  private var documentIndex = 0
  private var documentMark: SourceMark
  private var documentStart = 0
  private var inDocument = false
  /// Whether a node of the current document has an explicit tag.
  private var documentHasTags = false
  private var root: YAMLNode? = nil
  /// Alias sites that referred to undefined anchors (their placeholder must not cause follow-up errors).
  private var undefinedAliasSites: Set<SourceMark> = []

  init(file: String, limits: YAMLLimits, checkDocumentSize: Bool) {
    self.file = file
    self.limits = limits
    self.checkDocumentSize = checkDocumentSize
    self.documentMark = SourceMark(file: file, line: 1, column: 1)
    frames.reserveCapacity(16)
  }

  @inline(__always)
  private func sourceMark(_ m: yaml_mark_t) -> SourceMark {
    SourceMark(file: file, line: m.line &+ 1, column: m.column &+ 1)
  }

  private mutating func fail(_ code: YAMLError.Code, _ message: String, at mark: SourceMark) {
    errors.append(YAMLError(code: code, message: message, mark: mark))
    fatal = true
  }

  // MARK: Events

  mutating func handle(_ event: inout yaml_event_t) {
    // Measured at scalars, aliases and collection starts: the marks of block collection
    // ends and implicit document ends lie at the next token, past any trailing comments.
    if checkDocumentSize && inDocument
      && (event.type == YAML_SCALAR_EVENT || event.type == YAML_ALIAS_EVENT
        || event.type == YAML_MAPPING_START_EVENT || event.type == YAML_SEQUENCE_START_EVENT)
      && event.end_mark.index &- documentStart > limits.maxDocumentBytes
    {
      fail(
        .documentTooLarge,
        "document \(documentIndex + 1) is larger than the limit of \(YAMLLoader.byteCountText(limits.maxDocumentBytes))",
        at: documentMark)
      return
    }
    switch event.type {
    case YAML_SCALAR_EVENT:
      scalar(&event)
    case YAML_MAPPING_START_EVENT:
      let data = event.data.mapping_start
      startCollection(isMapping: true, anchor: data.anchor, tag: data.tag, mark: event.start_mark)
    case YAML_SEQUENCE_START_EVENT:
      let data = event.data.sequence_start
      startCollection(isMapping: false, anchor: data.anchor, tag: data.tag, mark: event.start_mark)
    case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT:
      endCollection(endMark: event.end_mark)
    case YAML_ALIAS_EVENT:
      alias(&event)
    case YAML_DOCUMENT_START_EVENT:
      documentMark = sourceMark(event.start_mark)
      documentStart = event.start_mark.index
      inDocument = true
      anchors.removeAll(keepingCapacity: true)
      if !undefinedAliasSites.isEmpty { undefinedAliasSites.removeAll() }
      expansion = 0
      root = nil
    case YAML_DOCUMENT_END_EVENT:
      documents.append(YAMLDocument(root: root, index: documentIndex, mark: documentMark, hasTags: documentHasTags))
      documentIndex += 1
      documentHasTags = false
      root = nil
      inDocument = false
    default:
      break
    }
  }

  @inline(__always)
  private mutating func countNode(at mark: yaml_mark_t) -> Bool {
    nodeCount &+= 1
    if nodeCount > limits.maxNodes {
      fail(.nodeLimit, "file has more than \(limits.maxNodes) nodes", at: sourceMark(mark))
      return false
    }
    return true
  }

  private mutating func scalar(_ event: inout yaml_event_t) {
    guard countNode(at: event.start_mark) else { return }
    let data = event.data.scalar
    let text: String
    if data.length == 0 {
      text = ""
    } else {
      text = String(decoding: UnsafeBufferPointer(start: data.value, count: data.length), as: UTF8.self)
    }
    let style: ScalarStyle
    switch data.style {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = .singleQuoted
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = .doubleQuoted
    case YAML_LITERAL_SCALAR_STYLE: style = .literal
    case YAML_FOLDED_SCALAR_STYLE: style = .folded
    default: style = .plain
    }
    let tag = data.tag.map { String(cString: $0) }
    if tag != nil { documentHasTags = true }
    if depth == 0 && text.isEmpty && style == .plain && tag == nil && data.anchor == nil {
      return  // empty document: root stays nil
    }
    let line = event.start_mark.line &+ 1
    let column = event.start_mark.column &+ 1
    let endLine = event.end_mark.line &+ 1
    let endColumn = event.end_mark.column &+ 1
    if let anchor = data.anchor {
      let node = YAMLNode(
        value: .scalar(text, style), tag: tag, file: file,
        line: line, column: column, endLine: endLine, endColumn: endColumn)
      anchors[String(cString: anchor)] = AnchorEntry(node: node, count: 1, height: 0)
      add(node, count: 1, height: 0)
    } else {
      // `consume` ends the bindings' lifetimes here, saving a retain/release pair per scalar.
      add(
        YAMLNode(
          value: .scalar(consume text, style), tag: consume tag, file: file,
          line: line, column: column, endLine: endLine, endColumn: endColumn),
        count: 1, height: 0)
    }
  }

  private mutating func startCollection(
    isMapping: Bool, anchor: UnsafeMutablePointer<yaml_char_t>?,
    tag: UnsafeMutablePointer<yaml_char_t>?, mark: yaml_mark_t
  ) {
    guard countNode(at: mark) else { return }
    if depth >= limits.maxDepth {
      fail(.depthLimit, "collections are nested more than \(limits.maxDepth) levels deep", at: sourceMark(mark))
      return
    }
    let anchorName = anchor.map { String(cString: $0) }
    if anchorName != nil { openAnchors += 1 }
    if tag != nil { documentHasTags = true }
    let frame = Frame(
      isMapping: isMapping, start: buffer.count, anchor: anchorName,
      tag: tag.map { String(cString: $0) }, line: mark.line &+ 1, column: mark.column &+ 1)
    if depth > 0 { frames.append(top) }
    top = frame
    depth += 1
  }

  private mutating func endCollection(endMark: yaml_mark_t) {
    let frame = top
    depth -= 1
    if depth > 0 { top = frames.removeLast() }
    let value: YAMLNode.Value
    if !frame.isMapping {
      value = .sequence(buffer.popNodes(from: frame.start))
    } else if let merges = frame.merges {
      guard
        let pairs = applyMerges(
          merges, start: frame.start,
          mark: SourceMark(file: file, line: frame.line, column: frame.column))
      else { return }
      value = .mapping(pairs)
    } else {
      value = .mapping(buffer.popPairs(from: frame.start))
    }
    let node = YAMLNode(
      value: value, tag: frame.tag, file: file,
      line: frame.line, column: frame.column,
      endLine: endMark.line &+ 1, endColumn: endMark.column &+ 1)
    let height = frame.childHeight + 1
    if let anchor = frame.anchor {
      openAnchors -= 1
      anchors[anchor] = AnchorEntry(node: node, count: frame.count, height: height)
    }
    add(node, count: frame.count, height: height)
  }

  private mutating func alias(_ event: inout yaml_event_t) {
    guard countNode(at: event.start_mark) else { return }
    let name = String(cString: event.data.alias.anchor)
    let mark = sourceMark(event.start_mark)
    let endMark = sourceMark(event.end_mark)
    guard let entry = anchors[name] else {
      let message: String
      if openAnchors > 0 && (top.anchor == name || frames.contains(where: { $0.anchor == name })) {
        message = "alias '*\(name)' refers to the node that contains it (recursive aliases are not supported)"
      } else {
        message = "alias '*\(name)' refers to an undefined anchor '&\(name)'"
      }
      errors.append(YAMLError(code: .undefinedAlias, message: message, mark: mark))
      undefinedAliasSites.insert(mark)
      add(YAMLNode(value: .scalar("", .plain), tag: nil, mark: mark, endMark: endMark), count: 1, height: 0)
      return
    }
    if depth + entry.height > limits.maxDepth {
      fail(
        .depthLimit,
        "alias '*\(name)' nests collections more than \(limits.maxDepth) levels deep", at: mark)
      return
    }
    expansion += entry.count
    if expansion > limits.maxAliasExpansion {
      fail(
        .aliasLimit,
        "document expands more than \(limits.maxAliasExpansion) nodes through aliases (billion-laughs protection)",
        at: mark)
      return
    }
    var node = entry.node
    node.relocate(
      line: event.start_mark.line &+ 1, column: event.start_mark.column &+ 1,
      endLine: event.end_mark.line &+ 1, endColumn: event.end_mark.column &+ 1)
    add(node, count: entry.count, height: entry.height)
  }

  // MARK: Tree building

  @inline(__always)
  private mutating func add(_ node: consuming YAMLNode, count: Int, height: Int) {
    if depth == 0 {
      root = node
      return
    }
    if top.isMapping {
      switch top.state {
      case .key:
        addKey(node, count: count, height: height)
        return
      case .value:
        top.state = .key
      case .skipValue:
        top.state = .key
        return
      case .mergeValue:
        top.state = .key
        addMergeValue(node, count: count, height: height)
        return
      }
    }
    buffer.append(node)
    top.count &+= count
    if height > top.childHeight { top.childHeight = height }
  }

  private mutating func addKey(_ node: consuming YAMLNode, count: Int, height: Int) {
    top.state = .value
    guard case .scalar(let text, let style) = node.value else {
      errors.append(
        YAMLError(
          code: .complexKey,
          message: "mapping key must be a scalar, found a \(node.kindName)",
          mark: node.mark))
      buffer.append(node)
      top.count &+= count
      if height > top.childHeight { top.childHeight = height }
      return
    }
    let isMergeKey = node.tag.map { $0 == mergeTag } ?? (style == .plain && text == "<<")
    if isMergeKey {
      if let first = top.mergeKeyMark {
        duplicateKey(text, at: node.mark, first: first)
        top.state = .skipValue
      } else {
        top.mergeKeyMark = node.mark
        top.state = .mergeValue
      }
      return
    }
    let start = top.start
    let hash = top.keyTable != nil ? KeyBytes.hash(text) : 0
    if let firstIndex = findKey(text, hash: hash, start: start) {
      duplicateKey(text, at: node.mark, first: buffer[firstIndex].mark)
      top.state = .skipValue
      return
    }
    buffer.append(node)
    top.count &+= count
    let keyIndex = buffer.count - 1
    if top.keyTable != nil {
      top.keyTable!.insert(hash, index: keyIndex)
    } else if (keyIndex - start) / 2 + 1 > linearKeyScanLimit {
      var table = KeyTable(minimumCapacity: 4 * linearKeyScanLimit)
      var i = start
      while i < buffer.count {
        if case .scalar(let t, _) = buffer[i].value { table.insert(KeyBytes.hash(t), index: i) }
        i += 2
      }
      top.keyTable = table
    }
  }

  /// Buffer index of an earlier key of the innermost mapping with the same text.
  @inline(__always)
  private func findKey(_ text: String, hash: UInt64, start: Int) -> Int? {
    if let table = top.keyTable {
      return table.find(hash) { i in
        if case .scalar(let t, _) = buffer[i].value { return KeyBytes.equal(t, text) }
        return false
      }
    }
    var i = start
    let end = buffer.count
    while i < end {
      if case .scalar(let t, _) = buffer[i].value, KeyBytes.equal(t, text) { return i }
      i += 2
    }
    return nil
  }

  private mutating func duplicateKey(_ text: String, at mark: SourceMark, first: SourceMark) {
    let shown = InvisibleText.escaped(Self.shortText(text))
    errors.append(
      YAMLError(
        code: .duplicateKey, message: "duplicate key '\(shown)' in mapping", mark: mark,
        notes: [YAMLNote(message: "'\(shown)' first defined here", mark: first)]))
  }

  private mutating func addMergeValue(_ node: YAMLNode, count: Int, height: Int) {
    if !undefinedAliasSites.isEmpty && undefinedAliasSites.contains(node.mark) { return }
    let position = (buffer.count - top.start) / 2
    var maps: [[YAMLPair]] = []
    var childHeight = 0
    switch node.value {
    case .mapping(let pairs):
      maps.append(pairs)
      childHeight = height - 1
    case .sequence(let items):
      maps.reserveCapacity(items.count)
      for item in items {
        if case .mapping(let pairs) = item.value {
          maps.append(pairs)
        } else if !(undefinedAliasSites.contains(item.mark)) {
          errors.append(
            YAMLError(
              code: .invalidMerge,
              message: "merge key '<<' takes a mapping or a sequence of mappings, but this sequence item is a \(item.kindName)",
              mark: item.mark))
        }
      }
      childHeight = height - 2
    case .scalar:
      errors.append(
        YAMLError(
          code: .invalidMerge,
          message: "merge key '<<' takes a mapping or a sequence of mappings, found a scalar",
          mark: node.mark))
      return
    }
    if maps.isEmpty { return }
    top.count &+= count
    if childHeight > top.childHeight { top.childHeight = childHeight }
    if top.merges == nil { top.merges = [] }
    top.merges!.append(PendingMerge(position: position, maps: maps))
  }

  /// Builds the pairs of a mapping with merge keys: merged pairs go where the `<<` key was,
  /// skipping keys that are explicit anywhere in the mapping or that an earlier map supplied.
  private mutating func applyMerges(_ merges: [PendingMerge], start: Int, mark: SourceMark) -> [YAMLPair]? {
    let explicit = buffer.popPairs(from: start)
    var seen = KeyTable(minimumCapacity: 16)
    var seenTexts: [String] = []
    /// Records a key; false if it was already seen.
    func insertSeen(_ t: String) -> Bool {
      let h = KeyBytes.hash(t)
      if seen.find(h, where: { KeyBytes.equal(seenTexts[$0], t) }) != nil { return false }
      seen.insert(h, index: seenTexts.count)
      seenTexts.append(t)
      return true
    }
    for pair in explicit {
      if case .scalar(let t, _) = pair.key.value { _ = insertSeen(t) }
    }
    let explicitCount = explicit.count
    var pairs: [YAMLPair] = []
    pairs.reserveCapacity(explicitCount + 8)
    var inserted = 0
    var m = 0
    for p in 0...explicitCount {
      while m < merges.count && merges[m].position == p {
        for map in merges[m].maps {
          for pair in map {
            if case .scalar(let t, _) = pair.key.value, !insertSeen(t) { continue }
            pairs.append(pair)
            inserted += 1
          }
        }
        m += 1
      }
      if p < explicitCount {
        pairs.append(explicit[p])
      }
    }
    expansion += 2 * inserted
    if expansion > limits.maxAliasExpansion {
      fail(
        .aliasLimit,
        "document expands more than \(limits.maxAliasExpansion) nodes through aliases and merge keys (billion-laughs protection)",
        at: mark)
      return nil
    }
    return pairs
  }

  static func shortText(_ text: String) -> String {
    var s = ""
    var n = 0
    for ch in text.unicodeScalars {
      if n == 60 {
        s += "…"
        break
      }
      switch ch {
      case "\n": s += "\\n"
      case "\t": s += "\\t"
      case "\r": s += "\\r"
      default: s.unicodeScalars.append(ch)
      }
      n += 1
    }
    return s
  }
}
