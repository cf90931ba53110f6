import Foundation
import TestSupport
import Testing

@testable import Sandbox

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A response read off the wire by `RawHTTP`.
struct RawResponse: Sendable {
  var status: Int
  var headers: [String: String]
  var body: [UInt8]
  /// False when the connection ended before Content-Length bytes arrived.
  var complete: Bool
  var text: String { String(decoding: body, as: UTF8.self) }
  var json: JSON? { JSON.parse(body) }
}

struct RawHTTPError: Error, CustomStringConvertible { var description: String }

/// A minimal HTTP/1.1 client over a POSIX socket, so the contract tests see exactly the bytes
/// the sandbox sends (no client library in between). Blocking I/O runs on its own thread.
enum RawHTTP {
  /// How long a request may go unanswered before the client calls the server hung: a guard,
  /// far beyond any answer of a working sandbox on a loaded machine.
  static let readGuard: TimeInterval = 300

  static func send(port: Int, _ method: String, _ target: String, headers: [String: String] = [:], body: [UInt8] = []) async throws
    -> RawResponse
  {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<RawResponse, any Error>) in
      let t = Thread {
        c.resume(with: Result { try blocking(port: port, method, target, headers: headers, body: body) })
      }
      t.start()
    }
  }

  static func blocking(port: Int, _ method: String, _ target: String, headers: [String: String], body: [UInt8]) throws -> RawResponse {
    let fd = try connectLoopback(port: port)
    defer { close(fd) }
    var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    for (k, v) in headers { head += "\(k): \(v)\r\n" }
    if !body.isEmpty || ["POST", "PUT", "PATCH"].contains(method) { head += "Content-Length: \(body.count)\r\n" }
    head += "\r\n"
    let out = Array(head.utf8) + body
    var sent = 0
    while sent < out.count {
      let n = out[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { throw RawHTTPError(description: "write failed: \(String(cString: strerror(errno)))") }
      sent += n
    }
    // The answer is read until the server closes the connection (Connection: close). How long
    // the server takes is not this client's business: a whole-world dump under a loaded
    // `make test` can take tens of seconds, and a per-read timeout here (it was 20 s) made the
    // load test fail on a slow answer as if there were none. Only a hang is guarded against.
    var data: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    var ended = "the server closed the connection"
    let sentAt = Date()
    let guardDeadline = sentAt.addingTimeInterval(readGuard)
    while true {
      var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
      let ready = poll(&p, 1, 1000)
      if ready < 0 && errno == EINTR { continue }
      if ready == 0 {
        if Date() < guardDeadline { continue }
        ended = "no answer within \(Int(readGuard)) s (the guard against a hung server)"
        break
      }
      let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        let e = errno
        if e == EINTR { continue }
        ended = "read failed: \(String(cString: strerror(e)))"
      }
      if n <= 0 { break }  // EOF or reset
      data.append(contentsOf: buf[0..<n])
    }
    do { return try parse(data) } catch let e as RawHTTPError {
      throw RawHTTPError(
        description:
          "\(method) \(target): \(e.description); \(ended) \(String(format: "%.1f", Date().timeIntervalSince(sentAt))) s after the request was sent"
      )
    }
  }

  static func parse(_ data: [UInt8]) throws -> RawResponse {
    let sep: [UInt8] = [13, 10, 13, 10]
    guard let end = (0..<max(0, data.count - 3)).first(where: { Array(data[$0..<$0 + 4]) == sep }) else {
      throw RawHTTPError(description: "no complete response head in \(data.count) bytes")
    }
    let head = String(decoding: data[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = head[0].split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw RawHTTPError(description: "bad status line \(head[0])") }
    var headers: [String: String] = [:]
    for line in head.dropFirst() {
      guard let colon = line.firstIndex(of: ":") else { continue }
      headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    var body = Array(data[(end + 4)...])
    var complete = true
    if headers["transfer-encoding"]?.lowercased() == "chunked" {
      var out: [UInt8] = []
      var i = 0
      complete = false
      while let nl = (i..<max(i, body.count - 1)).first(where: { body[$0] == 13 && body[$0 + 1] == 10 }) {
        let size = Int(String(decoding: body[i..<nl], as: UTF8.self).split(separator: ";")[0], radix: 16) ?? -1
        if size < 0 { break }
        if size == 0 {
          complete = true
          break
        }
        let start = nl + 2
        guard start + size <= body.count else {
          out += body[start...]
          break
        }
        out += body[start..<start + size]
        i = start + size + 2
      }
      body = out
    } else if let cl = headers["content-length"].flatMap({ Int($0) }) {
      complete = body.count >= cl
      if body.count > cl { body = Array(body[0..<cl]) }
    }
    return RawResponse(status: status, headers: headers, body: body, complete: complete)
  }
}

/// Starts a sandbox for one test and stops it afterwards.
func withSandbox(
  _ configure: (inout SandboxOptions) -> Void = { _ in },
  _ body: (SandboxServer) async throws -> Void
) async throws {
  var o = SandboxOptions()
  o.seedFrom = examplesDir
  configure(&o)
  let sb = try await SandboxServer.start(o)
  do {
    try await body(sb)
  } catch {
    await sb.stop()
    throw error
  }
  await sb.stop()
}

let repoRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  .path
let examplesDir = repoRoot + "/examples/empire"

/// Channel ids of examples/empire.
let techDaily = "UCPtYgjmUhBel31iEl2hpChY"

extension SandboxServer {
  func call(_ method: String, _ target: String, headers: [String: String] = [:], json: JSON? = nil, raw: [UInt8]? = nil) async throws
    -> RawResponse
  {
    var h = headers
    var body: [UInt8] = raw ?? []
    if let json {
      body = json.bytes
      h["Content-Type"] = "application/json"
    }
    return try await RawHTTP.send(port: port, method, target, headers: h, body: body)
  }

  func form(_ target: String, _ fields: [(String, String)]) async throws -> RawResponse {
    let body = fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
    return try await RawHTTP.send(
      port: port, "POST", target, headers: ["Content-Type": "application/x-www-form-urlencoded"],
      body: Array(body.utf8))
  }

  /// An access token for a seeded channel, through the OAuth endpoint.
  func accessToken(_ channel: String = "tech-daily") async throws -> String {
    let r = try await form(
      "/token",
      [
        ("client_id", credentials.youtubeClientId), ("client_secret", credentials.youtubeClientSecret),
        ("refresh_token", "1//sandbox-refresh-\(channel)"), ("grant_type", "refresh_token"),
      ])
    try #require(r.status == 200, "token: \(r.status) \(r.text)")
    return try #require(r.json?["access_token"]?.string)
  }

  func yt(_ method: String, _ target: String, token: String, json: JSON? = nil) async throws -> RawResponse {
    try await call(method, "/youtube/v3" + target, headers: ["Authorization": "Bearer \(token)"], json: json)
  }

  func n8n(_ method: String, _ target: String, json: JSON? = nil, raw: [UInt8]? = nil) async throws -> RawResponse {
    try await call(method, "/api/v1" + target, headers: ["X-N8N-API-KEY": credentials.n8nAPIKey], json: json, raw: raw)
  }

  func cf(_ method: String, _ target: String, json: JSON? = nil) async throws -> RawResponse {
    try await call(method, "/client/v4" + target, headers: ["Authorization": "Bearer \(credentials.cloudflareToken)"], json: json)
  }

  func vault(_ method: String, _ target: String, json: JSON? = nil) async throws -> RawResponse {
    try await call(method, "/v1" + target, headers: ["X-Vault-Token": credentials.vaultToken], json: json)
  }
}

/// The error reason of a Google error body.
func googleReason(_ r: RawResponse) -> String? { r.json?["error"]?["errors"]?.array?.first?["reason"]?.string }
