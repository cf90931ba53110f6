import Synchronization

/// Secrets never reach logs, hooks, plans or error messages: this is the one place that decides
/// what is a secret and the one mask that replaces it, ``mask``.
///
/// - ``url(_:)``: one URL (a request's): its userinfo and the values of secret query parameters.
/// - ``urls(in:)``: free text that may contain URLs (a libgit2 message): every URL's userinfo,
///   query and fragment.
/// - ``scrub(_:secrets:limit:urls:)``: every known secret value out of text from outside.
public enum Redaction {
  /// What replaces a secret, everywhere.
  public static let mask = "[redacted]"

  /// Header fields whose value is a credential (lower case).
  static let secretHeaders: Set<String> = [
    "authorization", "proxy-authorization", "x-vault-token", "x-n8n-api-key", "cookie", "set-cookie",
    "x-api-key", "api-key", "x-auth-token", "x-goog-api-key", "xi-api-key", "ocp-apim-subscription-key",
  ]
  /// Form or query parameters whose value is a credential (lower case).
  static let secretParameters: Set<String> = [
    "access_token", "refresh_token", "id_token", "client_secret", "token", "password", "code", "key", "api_key",
    "apikey", "secret", "assertion", "client_assertion",
  ]

  /// Whether a header field carries a credential (Authorization, X-Vault-Token, Cookie, …).
  public static func isSecretHeader(_ name: String) -> Bool { secretHeaders.contains(name.lowercased()) }

  /// `a=1&client_secret=xyz` → `a=1&client_secret=[redacted]` (a query or a form body).
  public static func query(_ s: Substring) -> String {
    s.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
      guard let eq = pair.firstIndex(of: "=") else { return String(pair) }
      let key = pair[..<eq].lowercased()
      return secretParameters.contains(key) ? "\(pair[..<eq])=\(mask)" : String(pair)
    }.joined(separator: "&")
  }

  /// One URL with its userinfo and the values of secret query parameters masked:
  /// `https://u:p@h/x?key=k&part=a` → `https://[redacted]@h/x?key=[redacted]&part=a`.
  public static func url(_ u: String) -> String {
    var s = Substring(u)
    var out = ""
    if let scheme = s.range(of: "://") {
      out += s[..<scheme.upperBound]
      s = s[scheme.upperBound...]
      let authorityEnd = s.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? s.endIndex
      if let at = s[..<authorityEnd].lastIndex(of: "@") {
        out += "\(mask)@"
        s = s[s.index(after: at)...]
      }
    }
    if let q = s.firstIndex(of: "?") {
      out += s[..<q] + "?"
      let rest = s[s.index(after: q)...]
      let fragment = rest.firstIndex(of: "#")
      out += query(rest[..<(fragment ?? rest.endIndex)])
      if let fragment { out += rest[fragment...] }
    } else {
      out += s
    }
    return out
  }

  /// `scheme://host[:port]/path` of ``url(_:)``: what error messages name.
  public static func urlWithoutQuery(_ u: String) -> String {
    String(url(u).prefix { $0 != "?" && $0 != "#" })
  }

  /// Every URL in free text with its userinfo, query and fragment masked:
  /// `fetch https://u:pw@h/x.git?token=abc failed` → `fetch https://[redacted]@h/x.git?[redacted] failed`.
  /// A URL ends at whitespace, a quote, `>` or `)`.
  public static func urls(in text: String) -> String {
    guard text.contains("://") else { return text }
    func endsURL(_ c: Character) -> Bool {
      c == " " || c == "'" || c == "\"" || c == "\n" || c == "\t" || c == "\r" || c == ">" || c == ")"
    }
    var out = ""
    var rest = Substring(text)
    while let r = rest.range(of: "://") {
      out += rest[..<r.upperBound]
      rest = rest[r.upperBound...]
      let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" || endsURL($0) }) ?? rest.endIndex
      if let at = rest[..<end].lastIndex(of: "@") {
        out += "\(mask)@"
        rest = rest[rest.index(after: at)...]
      }
      let urlEnd = rest.firstIndex(where: endsURL) ?? rest.endIndex
      let url = rest[..<urlEnd]
      if let q = url.firstIndex(where: { $0 == "?" || $0 == "#" }) {
        out += url[..<q] + String(url[q]) + mask
        rest = rest[urlEnd...]
      }
    }
    out += rest
    return out
  }

  /// A printable, redacted body for audit logs: form bodies have secret parameters masked,
  /// JSON bodies have secret-looking string members masked, both are scrubbed
  /// (``scrub(_:secrets:limit:urls:)``); other bodies are summarised. At most `limit` bytes are shown.
  public static func body(_ bytes: [UInt8]?, contentType: String?, limit: Int = 2048) -> String? {
    guard let bytes, !bytes.isEmpty else { return nil }
    let ct = contentType?.lowercased() ?? ""
    let text = String(decoding: bytes.prefix(limit), as: UTF8.self)
    let suffix = bytes.count > limit ? "…(\(bytes.count) bytes)" : ""
    if ct.hasPrefix("application/x-www-form-urlencoded") { return scrub(query(Substring(text))) + suffix }
    if ct.contains("json") { return scrub(json(text)) + suffix }
    return "<\(bytes.count) bytes \(ct.isEmpty ? "unknown type" : ct)>"
  }

  /// Masks the value of every JSON string member whose key is a secret parameter name or ends
  /// in "token" or "secret" (`"access_token": "…"` → `"access_token": "[redacted]"`). A lexical pass, for logs.
  public static func json(_ text: String) -> String {
    var out = ""
    var chars = Substring(text)
    while let q = chars.firstIndex(of: "\"") {
      out += chars[..<q]
      chars = chars[q...]
      guard let (str, rest) = readString(chars) else {
        out += chars
        return out
      }
      out += str
      chars = rest
      let key = str.dropFirst().dropLast().lowercased()
      let afterWS = rest.drop { $0 == " " }
      if secretParameters.contains(key) || key.hasSuffix("token") || key.hasSuffix("secret") || key == "authorization",
        afterWS.first == ":"
      {
        let v = afterWS.dropFirst().drop { $0 == " " }
        if v.first == "\"", let (_, after) = readString(v) {
          out += ": \"\(mask)\""
          chars = after
        }
      }
    }
    return out + chars
  }

  private static func readString(_ s: Substring) -> (Substring, Substring)? {
    var i = s.index(after: s.startIndex)
    while i < s.endIndex {
      if s[i] == "\\" {
        i = s.index(after: i)
        if i < s.endIndex { i = s.index(after: i) }
        continue
      }
      if s[i] == "\"" {
        let end = s.index(after: i)
        return (s[..<end], s[end...])
      }
      i = s.index(after: i)
    }
    return nil
  }

  // MARK: known secret values

  /// Every resolved secret of the configuration, whatever its key (a client id as much as a token).
  private static let registered = Mutex<Set<String>>([])

  /// Registered secrets shorter than this are too common a word to mask in every message.
  static let minimumRegisteredLength = 8
  /// Secrets given to ``scrub(_:secrets:limit:urls:)`` shorter than this are not masked.
  static let minimumLength = 4

  /// Registers a resolved secret: from now on ``scrub(_:secrets:limit:urls:)`` masks it in
  /// every text. Its percent-encoded spelling is registered too, for servers that echo a form body.
  public static func registerSecret(_ value: String) {
    guard value.count >= minimumRegisteredLength else { return }
    let encoded = PercentEncoding.encode(value)
    registered.withLock { s in
      s.insert(value)
      s.insert(encoded)
    }
  }

  /// `text` with every registered secret and each of `secrets` (from 4 characters on) replaced by ``mask``, and, with
  /// `urls`, every URL redacted (``urls(in:)``); then cut to `limit` characters (ending in "…").
  ///
  /// Occurrences are found in the original text and overlapping ones become one
  /// mask, so no part of a secret survives when secrets overlap or one contains another. The
  /// cut comes after the masking: a secret that straddles the limit is masked, not cut in half.
  public static func scrub(_ text: String, secrets: [String] = [], limit: Int? = nil, urls redactURLs: Bool = false) -> String {
    let candidates = registered.withLock { $0 }.union(secrets.filter { $0.count >= minimumLength })
    var out = mask(candidates, in: text)
    if redactURLs { out = urls(in: out) }
    if let limit, out.count > limit { out = String(out.prefix(max(limit, 0))) + "…" }
    return out
  }

  /// Replaces every byte range covered by an occurrence of a needle (merged when they overlap).
  private static func mask(_ needles: Set<String>, in text: String) -> String {
    let hay = Array(text.utf8)
    var ranges: [Range<Int>] = []
    for needle in needles {
      let n = Array(needle.utf8)
      guard !n.isEmpty, n.count <= hay.count else { continue }
      var i = 0
      while i + n.count <= hay.count {
        if hay[i] == n[0] && hay[i..<(i + n.count)].elementsEqual(n) { ranges.append(i..<(i + n.count)) }
        i += 1
      }
    }
    guard !ranges.isEmpty else { return text }
    ranges.sort { $0.lowerBound < $1.lowerBound }
    var merged: [Range<Int>] = []
    for r in ranges {
      if let last = merged.last, r.lowerBound < last.upperBound {
        merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
      } else {
        merged.append(r)
      }
    }
    var out: [UInt8] = []
    out.reserveCapacity(hay.count)
    var at = 0
    for r in merged {
      out += hay[at..<r.lowerBound]
      out += mask.utf8
      at = r.upperBound
    }
    out += hay[at...]
    return String(decoding: out, as: UTF8.self)
  }
}
