/// `.ytempireignore` files, with gitignore semantics: `#` comments, `!` negation, a trailing
/// `/` for directories only, patterns containing a `/` anchored to the file's directory,
/// others matched against the name at any depth, `*`, `?`, `[a-z]`, `[!x]` and `**`.
/// The last matching pattern wins; a file inside an ignored directory stays ignored.
public struct IgnoreRules: Sendable {
  struct Rule: Sendable {
    var pattern: [UInt8]
    var negated: Bool
    var directoryOnly: Bool
    var anchored: Bool
    /// Directory of the ignore file, relative to the root ("" for the root), with a trailing '/'.
    var base: String
  }

  var rules: [Rule] = []

  public init() {}

  public init(parsing text: String, base: String = "") {
    append(parsing: text, base: base)
  }

  public mutating func append(parsing text: String, base: String) {
    for raw in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
      var line = Substring(raw)
      if line.hasPrefix("#") { continue }
      // Trailing spaces are ignored unless escaped with a backslash.
      while line.hasSuffix(" ") && !line.hasSuffix("\\ ") { line = line.dropLast() }
      if line.isEmpty { continue }
      var negated = false
      if line.hasPrefix("!") {
        negated = true
        line = line.dropFirst()
      } else if line.hasPrefix("\\!") || line.hasPrefix("\\#") {
        line = line.dropFirst()
      }
      var directoryOnly = false
      if line.hasSuffix("/") {
        directoryOnly = true
        line = line.dropLast()
      }
      if line.isEmpty || line.utf8.count > 4096 { continue }
      let anchored = line.dropFirst().contains("/") || line.hasPrefix("/")
      if line.hasPrefix("/") { line = line.dropFirst() }
      rules.append(Rule(pattern: Array(line.utf8), negated: negated, directoryOnly: directoryOnly, anchored: anchored, base: base))
    }
  }

  /// Whether `path` (relative to the root, '/'-separated) is ignored.
  public func isIgnored(_ path: String, isDirectory: Bool) -> Bool {
    var ignored = false
    for r in rules {
      if r.directoryOnly && !isDirectory { continue }
      guard path.hasPrefix(r.base) else { continue }
      let rel = Array(path.utf8.dropFirst(r.base.utf8.count))
      let matched: Bool
      if r.anchored {
        matched = Glob.match(r.pattern[...], rel[...])
      } else {
        let name = rel.lastIndex(of: UInt8(ascii: "/")).map { rel[($0 + 1)...] } ?? rel[...]
        matched = Glob.match(r.pattern[...], name)
      }
      if matched { ignored = !r.negated }
    }
    return ignored
  }

  public var isEmpty: Bool { rules.isEmpty }
}

enum Glob {
  static let slash = UInt8(ascii: "/")
  static let star = UInt8(ascii: "*")

  /// Glob match where `*` and `?` never cross '/', and `**` as a whole segment does.
  static func match(_ p: ArraySlice<UInt8>, _ t: ArraySlice<UInt8>) -> Bool {
    var budget = 100_000
    return match(p, t, &budget)
  }

  private static func match(_ p: ArraySlice<UInt8>, _ t: ArraySlice<UInt8>, _ budget: inout Int) -> Bool {
    budget -= 1
    if budget < 0 { return false }
    var p = p
    var t = t
    while let c = p.first {
      if c == star, p.dropFirst().first == star {
        // "**": "**/" matches zero or more directories; a trailing "**" everything.
        var rest = p.dropFirst(2)
        if rest.isEmpty { return true }
        if rest.first == slash {
          rest = rest.dropFirst()
          if match(rest, t, &budget) { return true }
          var i = t.startIndex
          while i < t.endIndex {
            if t[i] == slash, match(rest, t[(i + 1)...], &budget) { return true }
            i += 1
          }
          return false
        }
        p = p.dropFirst()  // treat like "*"
        continue
      }
      if c == star {
        let rest = p.dropFirst()
        var i = t.startIndex
        while true {
          if match(rest, t[i...], &budget) { return true }
          if i == t.endIndex || t[i] == slash { return false }
          i += 1
        }
      }
      guard let tc = t.first else { return false }
      if c == UInt8(ascii: "?") {
        if tc == slash { return false }
        p = p.dropFirst()
        t = t.dropFirst()
      } else if c == UInt8(ascii: "[") {
        guard let (ok, next) = classMatch(p, tc) else {
          // An unterminated class is a literal '['.
          if tc != c { return false }
          p = p.dropFirst()
          t = t.dropFirst()
          continue
        }
        if !ok || tc == slash { return false }
        p = p[next...]
        t = t.dropFirst()
      } else if c == UInt8(ascii: "\\"), p.count > 1 {
        if p[p.startIndex + 1] != tc { return false }
        p = p.dropFirst(2)
        t = t.dropFirst()
      } else {
        if c != tc { return false }
        p = p.dropFirst()
        t = t.dropFirst()
      }
    }
    return t.isEmpty
  }

  /// Matches `[...]` at the start of `p`; returns the result and the index after ']'.
  private static func classMatch(_ p: ArraySlice<UInt8>, _ ch: UInt8) -> (Bool, Int)? {
    var i = p.startIndex + 1
    var negate = false
    if i < p.endIndex, p[i] == UInt8(ascii: "!") || p[i] == UInt8(ascii: "^") {
      negate = true
      i += 1
    }
    var matched = false
    var first = true
    while i < p.endIndex {
      let c = p[i]
      if c == UInt8(ascii: "]") && !first { return (matched != negate, i + 1) }
      first = false
      if i + 2 < p.endIndex, p[i + 1] == UInt8(ascii: "-"), p[i + 2] != UInt8(ascii: "]") {
        if ch >= c && ch <= p[i + 2] { matched = true }
        i += 3
      } else {
        if ch == c { matched = true }
        i += 1
      }
    }
    return nil
  }
}
