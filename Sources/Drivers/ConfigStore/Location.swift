import Foundation

/// Where the config database is, parsed from `integrations.configStore.url`.
public enum ConfigStoreLocation: Sendable, Equatable, CustomStringConvertible {
    /// `sqlite:///abs/path.sqlite`: a file (created, with its directory, when missing).
    case sqlite(path: String)
    /// `postgres://user[:password]@host[:port]/database[?sslmode=disable|require|verify-full]`
    /// (also `postgresql://`).
    case postgres(Postgres)

    public struct Postgres: Sendable, Equatable {
        public enum TLSMode: String, Sendable, Equatable { case disable, require, verifyFull = "verify-full" }
        public var host: String
        public var port: Int
        public var user: String
        /// The password written in the URL, if any (never shown by `description`).
        public var password: String?
        public var database: String
        public var tls: TLSMode
    }

    /// The URL without its password.
    public var description: String {
        switch self {
        case .sqlite(let p): return "sqlite://" + p
        case .postgres(let p):
            let host = p.host.contains(":") ? "[\(p.host)]" : p.host
            let q = p.tls == .disable ? "" : "?sslmode=\(p.tls.rawValue)"
            return "postgres://\(p.user)\(p.password == nil ? "" : ":***")@\(host):\(p.port)/\(p.database)\(q)"
        }
    }

    public static func parse(_ url: String) throws -> ConfigStoreLocation {
        if url.hasPrefix("sqlite://") {
            let path = String(url.dropFirst("sqlite://".count))
            guard path.hasPrefix("/") else {
                throw ConfigStoreError("config store URL \(url) must name an absolute file path: sqlite:///var/lib/ytempire/runtime.sqlite (three slashes)")
            }
            guard !path.hasSuffix("/"), !path.contains("?"), !path.contains("#") else {
                throw ConfigStoreError("config store URL \(url) must name a file, without query or fragment")
            }
            return .sqlite(path: path.removingPercentEncoding ?? path)
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw ConfigStoreError("config store URL '\(Self.redact(url))' must start with sqlite:// or postgres://")
        }
        guard let c = URLComponents(string: url) else {
            throw ConfigStoreError("config store URL '\(Self.redact(url))' is not a valid URL")
        }
        guard let host = c.host, !host.isEmpty else {
            throw ConfigStoreError("config store URL '\(Self.redact(url))' has no host: postgres://user@host:5432/database")
        }
        guard let user = c.user, !user.isEmpty else {
            throw ConfigStoreError("config store URL '\(Self.redact(url))' has no user: postgres://user@host:5432/database")
        }
        let db = String(c.path.drop { $0 == "/" })
        guard !db.isEmpty, !db.contains("/") else {
            throw ConfigStoreError("config store URL '\(Self.redact(url))' must name one database: postgres://user@host:5432/database")
        }
        var tls = Postgres.TLSMode.disable
        for item in c.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let v = item.value, let m = Postgres.TLSMode(rawValue: v) else {
                    throw ConfigStoreError("config store URL: sslmode '\(item.value ?? "")' is not supported; use disable, require or verify-full")
                }
                tls = m
            default:
                throw ConfigStoreError("config store URL: unknown parameter '\(item.name)'; only sslmode is understood")
            }
        }
        let port = c.port ?? 5432
        guard (1...65535).contains(port) else { throw ConfigStoreError("config store URL: port \(port) is out of range") }
        let h = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return .postgres(Postgres(host: h, port: port, user: user.removingPercentEncoding ?? user,
                                  password: c.password.map { $0.removingPercentEncoding ?? $0 }, database: db.removingPercentEncoding ?? db, tls: tls))
    }

    /// The URL with any password replaced by `***` (for messages).
    static func redact(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        let userinfo = url[scheme.upperBound..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }
}

/// A config store failure, said so that an operator can act on it (never with a password).
public struct ConfigStoreError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
