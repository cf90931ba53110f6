import Basics
import Foundation

/// Where the config database is, parsed from `integrations.configStore.url`.
public enum ConfigStoreLocation: Sendable, Equatable, CustomStringConvertible {
  /// `sqlite:///abs/path.sqlite`: a file (created, with its directory, when missing). A
  /// relative `sqlite://dir/file.sqlite` is resolved against the current directory.
  case sqlite(path: String)
  /// `postgres://user[:password]@host[:port]/database[?sslmode=disable|require|verify-full]`
  /// (also `postgresql://`).
  case postgres(Postgres)

  public struct Postgres: Sendable, Equatable {
    public enum TLSMode: String, Sendable, Equatable {
      case disable, require
      case verifyFull = "verify-full"
    }
    public var host: String
    public var port: Int
    public var user: String
    /// The password written in the URL, if any (never shown by `description`).
    public var password: String?
    public var database: String
    public var tls: TLSMode
    public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String, tls: TLSMode = .disable) {
      self.host = host
      self.port = port
      self.user = user
      self.password = password
      self.database = database
      self.tls = tls
    }
  }

  /// The URL without its password.
  public var description: String {
    switch self {
    case .sqlite(let p): return "sqlite://" + p
    case .postgres(let p):
      let host = p.host.contains(":") ? "[\(p.host)]" : p.host
      let q = p.tls == .disable ? "" : "?sslmode=\(p.tls.rawValue)"
      return "postgres://\(p.user)\(p.password == nil ? "" : ":" + Redaction.mask)@\(host):\(p.port)/\(p.database)\(q)"
    }
  }

  public static func parse(_ url: String, what: String = "config store URL") throws -> ConfigStoreLocation {
    if url.hasPrefix("sqlite://") {
      var path = String(url.dropFirst("sqlite://".count))
      guard !path.isEmpty else {
        throw ConfigStoreError("\(what) \(url) names no file: sqlite:///var/lib/ytempire/runtime.sqlite (three slashes)")
      }
      // sqlite://state/runtime.sqlite (a relative path, as a relative stateDir gives) is
      // resolved against the current directory.
      if !path.hasPrefix("/") {
        path = FileManager.default.currentDirectoryPath + "/" + path
      }
      guard !path.hasSuffix("/"), !path.contains("?"), !path.contains("#") else {
        throw ConfigStoreError("\(what) \(url) must name a file, without query or fragment")
      }
      return .sqlite(path: path.removingPercentEncoding ?? path)
    }
    guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
      throw ConfigStoreError("\(what) '\(Self.redact(url))' must start with sqlite:// or postgres://")
    }
    guard let c = URLComponents(string: url) else {
      throw ConfigStoreError("\(what) '\(Self.redact(url))' is not a valid URL")
    }
    guard let host = c.host, !host.isEmpty else {
      throw ConfigStoreError("\(what) '\(Self.redact(url))' has no host: postgres://user@host:5432/database")
    }
    guard let user = c.percentEncodedUser, !user.isEmpty else {
      throw ConfigStoreError("\(what) '\(Self.redact(url))' has no user: postgres://user@host:5432/database")
    }
    let db = String(c.percentEncodedPath.drop { $0 == "/" })
    guard !db.isEmpty, !db.contains("/") else {
      throw ConfigStoreError("\(what) '\(Self.redact(url))' must name one database: postgres://user@host:5432/database")
    }
    var tls = Postgres.TLSMode.disable
    for item in c.queryItems ?? [] {
      switch item.name {
      case "sslmode":
        guard let v = item.value, let m = Postgres.TLSMode(rawValue: v) else {
          throw ConfigStoreError("\(what): sslmode '\(item.value ?? "")' is not supported; use disable, require or verify-full")
        }
        tls = m
      default:
        throw ConfigStoreError("\(what): unknown parameter '\(item.name)'; only sslmode is understood")
      }
    }
    let port = c.port ?? 5432
    guard (1...65535).contains(port) else { throw ConfigStoreError("\(what): port \(port) is out of range") }
    let h = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    return .postgres(
      Postgres(
        host: h, port: port, user: user.removingPercentEncoding ?? user,
        password: c.percentEncodedPassword.map { $0.removingPercentEncoding ?? $0 }, database: db.removingPercentEncoding ?? db, tls: tls))
  }

  /// The URL as messages show it: userinfo and secret parameters masked (`Redaction.url`).
  static func redact(_ url: String) -> String { Redaction.url(url) }
}

/// A config store failure, said so that an operator can act on it (never with a password).
public struct ConfigStoreError: Error, Sendable, CustomStringConvertible, Equatable {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}
