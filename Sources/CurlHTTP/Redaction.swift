import Foundation
import Synchronization

/// Secrets never reach logs, hooks or error messages: this is the one place that decides what is a secret.
public enum Redaction {
    public static let mask = "[REDACTED]"

    /// Header fields whose value is a credential.
    public static let secretHeaders: Set<String> = [
        "authorization", "proxy-authorization", "x-vault-token", "x-n8n-api-key", "cookie", "set-cookie",
        "x-api-key", "api-key", "x-auth-token", "x-goog-api-key", "xi-api-key", "ocp-apim-subscription-key",
    ]
    /// Form or query parameters whose value is a credential.
    public static let secretParameters: Set<String> = [
        "access_token", "refresh_token", "id_token", "client_secret", "token", "password", "code", "key", "api_key",
        "apikey", "secret", "assertion", "client_assertion",
    ]

    public static func isSecretHeader(_ name: String) -> Bool { secretHeaders.contains(name.lowercased()) }

    public static func headers(_ h: HTTPHeaders) -> HTTPHeaders {
        HTTPHeaders(h.fields.map { isSecretHeader($0.name) ? HTTPHeader($0.name, mask) : $0 })
    }

    /// `a=1&client_secret=xyz` → `a=1&client_secret=[REDACTED]`.
    public static func formBody(_ s: Substring) -> String {
        s.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            guard let eq = pair.firstIndex(of: "=") else { return String(pair) }
            let key = pair[..<eq].lowercased()
            return secretParameters.contains(key) ? "\(pair[..<eq])=\(mask)" : String(pair)
        }.joined(separator: "&")
    }

    /// The URL with secret query parameters and any userinfo masked.
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
            out += formBody(rest[..<(fragment ?? rest.endIndex)])
            if let fragment { out += rest[fragment...] }
        } else {
            out += s
        }
        return out
    }

    /// scheme://host[:port]/path: what error messages name.
    public static func urlWithoutQuery(_ u: String) -> String {
        let r = url(u)
        return String(r.prefix { $0 != "?" && $0 != "#" })
    }

    /// A printable, redacted body for audit logs: form bodies have secret parameters masked,
    /// JSON bodies have secret-looking string fields masked; other bodies are summarised.
    public static func body(_ bytes: [UInt8]?, contentType: String?, limit: Int = 2048) -> String? {
        guard let bytes, !bytes.isEmpty else { return nil }
        let ct = contentType?.lowercased() ?? ""
        let text = String(decoding: bytes.prefix(limit), as: UTF8.self)
        let suffix = bytes.count > limit ? "…(\(bytes.count) bytes)" : ""
        if ct.hasPrefix("application/x-www-form-urlencoded") { return scrub(formBody(Substring(text))) + suffix }
        if ct.contains("json") { return scrub(json(text)) + suffix }
        return "<\(bytes.count) bytes \(ct.isEmpty ? "unknown type" : ct)>"
    }

    /// Masks the value of every JSON string member whose key is a secret parameter name
    /// ("access_token": "…" → "access_token": "[REDACTED]"). A lexical pass, good for logs.
    static func json(_ text: String) -> String {
        var out = ""
        var chars = Substring(text)
        while let q = chars.firstIndex(of: "\"") {
            out += chars[..<q]
            chars = chars[q...]
            guard let (str, rest) = readString(chars) else { out += chars; return out }
            out += str
            chars = rest
            let key = str.dropFirst().dropLast().lowercased()
            let afterWS = rest.drop { $0 == " " }
            if secretParameters.contains(key) || key.hasSuffix("token") || key.hasSuffix("secret") || key == "authorization",
               afterWS.first == ":" {
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
            if s[i] == "\\" { i = s.index(after: i); if i < s.endIndex { i = s.index(after: i) }; continue }
            if s[i] == "\"" { let end = s.index(after: i); return (s[..<end], s[end...]) }
            i = s.index(after: i)
        }
        return nil
    }

    // MARK: configured secrets

    /// Every value given as a secret reference in the configuration (`{value|env|file: …}`,
    /// whatever its key: a client id as much as a token), registered when it is resolved.
    /// Text that comes from outside (an error body echoing the request, a URL) has these values
    /// masked before it is kept anywhere: plan, status, state store, logs.
    private static let configured = Mutex<Set<String>>([])

    /// Registers a resolved secret (values shorter than 8 characters are too common a word
    /// to mask in every message). Its form-encoded spelling is registered too, for servers that
    /// echo a form body.
    public static func registerSecret(_ value: String) {
        guard value.count >= 8 else { return }
        let encoded = value.addingPercentEncoding(withAllowedCharacters: formSafe) ?? value
        configured.withLock { s in
            s.insert(value)
            s.insert(encoded)
        }
    }

    private static let formSafe = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// `text` with every registered secret and each of `extra` replaced by `[redacted]`, and cut
    /// to `limit` characters (then ending in "…").
    public static func scrub(_ text: String, extra: [String] = [], limit: Int? = nil) -> String {
        var out = text
        let secrets = configured.withLock { $0 }.union(extra.filter { $0.count >= 4 })
        // Longest first, so a secret that contains another is masked whole.
        for secret in secrets.sorted(by: { $0.count > $1.count }) where out.contains(secret) {
            out = out.replacingOccurrences(of: secret, with: "[redacted]")
        }
        if let limit, out.count > limit { out = String(out.prefix(limit)) + "…" }
        return out
    }
}
