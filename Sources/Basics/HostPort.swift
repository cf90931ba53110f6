#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A host and a TCP port, parsed from `host:port` or `[IPv6]:port`.
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
  /// A name, an IPv4 address, or an IPv6 address without its brackets.
  public var host: String
  public var port: Int

  public init(host: String, port: Int) {
    self.host = host
    self.port = port
  }

  /// `host:port`, with an IPv6 address in brackets.
  public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

  /// Why a text is not `host:port`.
  public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No `:port` (and no default was given).
    case missingPort
    /// The port is not a decimal number (digits only, no sign).
    case portNotANumber(String)
    /// The port is a number outside 1…65535 (0…65535 when zero is allowed); `text` as written.
    case portOutOfRange(String)
    /// Nothing before `:port`.
    case missingHost
    /// `[` without its closing `]`, or text between `]` and `:port`.
    case unclosedBracket
    /// The text in brackets is not an IPv6 address.
    case notIPv6(String)
    /// An IPv6 address written without brackets.
    case ipv6WithoutBrackets
    /// The host has characters no host name or address has (space, `/`, `@`, …).
    case invalidHost(String)

    public var description: String {
      switch self {
      case .missingPort: "no port"
      case .portNotANumber(let p): "the port '\(p)' is not a number"
      case .portOutOfRange(let p): "the port \(p) is outside 1-65535"
      case .missingHost: "no host"
      case .unclosedBracket: "an IPv6 address needs its closing ']' right before ':port'"
      case .notIPv6(let h): "'\(h)' is not an IPv6 address"
      case .ipv6WithoutBrackets: "write an IPv6 address in brackets, [::1]:9400"
      case .invalidHost(let h): "'\(h)' is not a host name or address"
      }
    }
  }

  /// Parses `host:port`, `[IPv6]:port`, or — when `defaultPort` is given — `host`, `[IPv6]`
  /// and `host:` (an empty port, as RFC 3986 allows) meaning that port.
  /// The port is 1…65535, or 0…65535 with `allowingPortZero` (a listener's "any free port").
  /// Never traps, whatever the length of the number.
  public static func parse(_ text: String, defaultPort: Int? = nil, allowingPortZero: Bool = false) throws(ParseError) -> HostPort {
    let host: Substring
    let portText: Substring?
    if text.hasPrefix("[") {
      guard let close = text.firstIndex(of: "]") else { throw .unclosedBracket }
      host = text[text.index(after: text.startIndex)..<close]
      let rest = text[text.index(after: close)...]
      if rest.isEmpty { portText = nil } else if rest.hasPrefix(":") { portText = rest.dropFirst() } else { throw .unclosedBracket }
      guard !host.isEmpty else { throw .missingHost }
      guard isIPv6(String(host)) else { throw .notIPv6(String(host)) }
    } else if let colon = text.lastIndex(of: ":") {
      host = text[..<colon]
      portText = text[text.index(after: colon)...]
      if host.contains(":") { throw .ipv6WithoutBrackets }
    } else {
      host = Substring(text)
      portText = nil
    }
    guard !host.isEmpty else { throw .missingHost }
    if host.contains(where: {
      $0.isWhitespace || "/\\@?#[]%\"'<>".contains($0) || $0.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
    }) {
      throw .invalidHost(String(host))
    }
    let port: Int
    if let portText, !portText.isEmpty {
      guard portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
        throw .portNotANumber(String(portText))
      }
      // At most five significant digits: anything longer is out of range, and Int never overflows.
      let digits = portText.drop { $0 == "0" }
      guard digits.count <= 5, let p = Int(digits.isEmpty ? "0" : digits), p <= 65535, p >= (allowingPortZero ? 0 : 1) else {
        throw .portOutOfRange(String(portText))
      }
      port = p
    } else if let defaultPort {
      port = defaultPort
    } else {
      throw .missingPort
    }
    return HostPort(host: String(host), port: port)
  }

  /// Whether `host` is a loopback address: 127.0.0.0/8 (dotted quad), `::1` (in any spelling,
  /// also `::ffff:127.x.y.z`), or the name `localhost`; case-insensitive, brackets and a final
  /// dot allowed. `0.0.0.0` (every interface) and names such as `127.example.com` are not.
  public static func isLoopback(_ rawHost: String) -> Bool {
    var host = rawHost.lowercased()
    if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    if host.hasSuffix(".") { host = String(host.dropLast()) }
    if host == "localhost" { return true }
    if let v4 = ipv4(host) { return v4[0] == 127 }
    guard host.contains(":"), let b = ipv6Bytes(host) else { return false }
    if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return true }
    return b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff && b[12] == 127
  }

  /// ``isLoopback(_:)`` of ``host``.
  public var isLoopback: Bool { Self.isLoopback(host) }

  /// The four numbers of a dotted-quad IPv4 address (no shorthand, no leading `+`), or nil.
  static func ipv4(_ s: String) -> [Int]? {
    let parts = s.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4 else { return nil }
    var out: [Int] = []
    for p in parts {
      guard (1...3).contains(p.count), p.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
        let v = Int(p), v <= 255
      else { return nil }
      out.append(v)
    }
    return out
  }

  /// Whether `s` (without brackets) is an IPv6 address.
  static func isIPv6(_ s: String) -> Bool { ipv6Bytes(s) != nil }

  private static func ipv6Bytes(_ s: String) -> [UInt8]? {
    var a6 = in6_addr()
    guard inet_pton(AF_INET6, s, &a6) == 1 else { return nil }
    return withUnsafeBytes(of: &a6) { Array($0) }
  }
}
