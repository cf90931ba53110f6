import Foundation
import Synchronization
import YAMLKit

/// A reference to another resource by name, with where it was written.
public struct Reference: Sendable, Hashable {
  public var name: String
  public var mark: SourceMark
  public init(name: String, mark: SourceMark) {
    self.name = name
    self.mark = mark
  }
}

enum Names {
  static let rule = "1–63 lowercase letters, digits and '-', starting and ending with a letter or digit"

  /// `^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`
  static func isValid(_ s: String) -> Bool {
    isAlnumBounded(s) { $0 == UInt8(ascii: "-") }
  }

  /// A name that starts with a letter: RateLimit services, schedule service keys, service-account secrets.
  static func isServiceName(_ s: String) -> Bool {
    isValid(s) && s.utf8.first! >= 0x61
  }

  /// `^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$`
  static func isSecretName(_ s: String) -> Bool {
    isAlnumBounded(s) { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
  }

  /// 1–63 bytes of [a-z0-9], plus the `inner` punctuation anywhere but the ends.
  private static func isAlnumBounded(_ s: String, inner: (UInt8) -> Bool) -> Bool {
    let u = s.utf8
    guard (1...63).contains(u.count) else { return false }
    var i = 0
    for c in u {
      let alnum = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)
      if !alnum && !(inner(c) && i != 0 && i != u.count - 1) { return false }
      i += 1
    }
    return true
  }

  /// Label keys: an optional DNS-style prefix and '/', then 1–63 of [A-Za-z0-9-_.] starting and ending alphanumeric.
  static func labelKeyProblem(_ s: String) -> String? {
    let u = Array(s.utf8)
    var start = 0
    if let slash = u.lastIndex(of: 0x2f) {
      let prefix = u[..<slash]
      if prefix.isEmpty || prefix.count > 253
        || !prefix.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2e || $0 == 0x2d })
      {
        return "has an invalid prefix (lowercase DNS name expected before '/')"
      }
      start = slash + 1
    }
    let name = u[start...]
    func alnum(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) }
    guard (1...63).contains(name.count), name.allSatisfy({ alnum($0) || $0 == 0x2d || $0 == 0x5f || $0 == 0x2e }),
      alnum(name.first!), alnum(name.last!)
    else { return "is not a valid label key (1–63 letters, digits, '-', '_', '.', alphanumeric at both ends)" }
    return nil
  }

  /// The canonical spelling of a repository-relative path: `./a//b/` → `a/b`, `./` → `.`, so
  /// that it names the file the tree walk lists (and one file has one spelling in digests).
  static func normalizedRelativePath(_ s: String) -> String {
    let parts = s.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
    return parts.isEmpty ? "." : parts.joined(separator: "/")
  }

  static func relativePathProblem(_ s: String) -> String? {
    if s.isEmpty { return "is empty" }
    if s.hasPrefix("/") { return "must be relative to the repository, not absolute" }
    if s.contains("\\") { return "must use '/' as separator" }
    if s.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == ".." }) {
      return "must not leave the repository ('..')"
    }
    if s.utf8.contains(0) { return "contains a NUL byte" }
    return nil
  }

  /// `^[a-z][a-z0-9_]*$`
  static func isIdentifier(_ s: String) -> Bool {
    guard let f = s.utf8.first, f >= 0x61, f <= 0x7a else { return false }
    return s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f }
  }

  /// `^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`
  static func isLanguageTag(_ s: String) -> Bool {
    let parts = s.utf8.split(separator: 0x2d, omittingEmptySubsequences: false)
    guard let first = parts.first, (2...3).contains(first.count), first.allSatisfy({ $0 >= 0x61 && $0 <= 0x7a }) else { return false }
    return parts.dropFirst().allSatisfy { part in
      (2...8).contains(part.count)
        && part.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) }
    }
  }
}

enum URLCheck {
  /// nil when `s` is an absolute http(s) URL with a host; otherwise what is wrong.
  static func problem(_ s: String) -> String? {
    guard s.count <= 2048 else { return "longer than 2048 characters" }
    guard s.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else { return "contains spaces or non-ASCII characters" }
    guard let c = URLComponents(string: s) else { return "cannot be parsed" }
    guard let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
      return "the scheme must be http or https"
    }
    guard let host = c.host, !host.isEmpty else { return "it has no host" }
    return nil
  }
}

/// Time zone names checked against the system's IANA database (tzdata).
enum TimeZones {
  private static let cache = Mutex<[String: Bool]>([:])

  static var zoneinfo: String { ProcessInfo.processInfo.environment["TZDIR"] ?? "/usr/share/zoneinfo" }

  static func exists(_ name: String) -> Bool {
    if let hit = cache.withLock({ $0[name] }) { return hit }
    let ok = check(name)
    cache.withLock { $0[name] = ok }
    return ok
  }

  private static func check(_ name: String) -> Bool {
    if name == "UTC" { return true }
    // IANA names: components of letters, digits, '_', '-', '+', separated by '/'.
    let comps = name.split(separator: "/", omittingEmptySubsequences: false)
    guard !comps.isEmpty, name.count <= 64,
      comps.allSatisfy({ c in
        !c.isEmpty && c.first!.isLetter && c.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-+".contains($0)) }
      })
    else { return false }
    // Ignore the non-zone files of the database directory.
    if ["posixrules", "localtime", "Factory"].contains(name) || comps[0] == "posix" || comps[0] == "right" { return false }
    var isDir: ObjCBool = false
    let path = zoneinfo + "/" + name
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else { return false }
    // A TZif file starts with the magic "TZif".
    guard let h = FileHandle(forReadingAtPath: path) else { return false }
    defer { try? h.close() }
    let magic = (try? h.read(upToCount: 4)) ?? Data()
    return magic == Data("TZif".utf8)
  }

  static let common = [
    "UTC", "America/Los_Angeles", "America/New_York", "America/Chicago", "America/Denver",
    "Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Oslo", "Asia/Tokyo", "Asia/Kolkata",
    "Australia/Sydney",
  ]

  static func hint(_ s: String) -> String {
    switch s.uppercased() {
    case "PST", "PDT", "PT", "PACIFIC": return " (for Pacific time write America/Los_Angeles)"
    case "EST", "EDT", "ET", "EASTERN": return " (for Eastern time write America/New_York)"
    case "CET", "CEST": return " (write a city zone such as Europe/Berlin)"
    case "GMT", "Z", "ZULU": return " (write UTC)"
    default: return Suggest.hint(s, common)
    }
  }
}
