/// Percent-encoding (RFC 3986, section 2.1) with the unreserved set: everything but
/// `A–Z a–z 0–9 - . _ ~` is encoded, as UTF-8 bytes in upper-case hex. The result is safe as
/// one path segment, one query name or value, or one form field (`application/x-www-form-urlencoded`
/// accepts `%20` for a space): `/`, `?`, `#`, `&`, `=`, `+` and `%` are all encoded.
public enum PercentEncoding {
  /// `a b/c&d=é` → `a%20b%2Fc%26d%3D%C3%A9`.
  public static func encode(_ s: String) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(s.utf8.count)
    for b in s.utf8 {
      if isUnreserved(b) {
        out.append(b)
      } else {
        out.append(UInt8(ascii: "%"))
        out.append(hex[Int(b >> 4)])
        out.append(hex[Int(b & 0x0f)])
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// The inverse of ``encode(_:)`` for any percent-encoded text: nil when a `%` is not followed
  /// by two hex digits or the bytes are not UTF-8. `+` stays `+`.
  public static func decode(_ s: String) -> String? {
    var out: [UInt8] = []
    var it = s.utf8.makeIterator()
    while let b = it.next() {
      guard b == UInt8(ascii: "%") else {
        out.append(b)
        continue
      }
      guard let h = it.next().flatMap(hexValue), let l = it.next().flatMap(hexValue) else { return nil }
      out.append(h << 4 | l)
    }
    return String(validating: out, as: UTF8.self)
  }

  /// `A–Z a–z 0–9 - . _ ~`
  static func isUnreserved(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
      UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
      return true
    default:
      return false
    }
  }

  private static let hex = Array("0123456789ABCDEF".utf8)

  private static func hexValue(_ b: UInt8) -> UInt8? {
    switch b {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
    default: nil
    }
  }
}
