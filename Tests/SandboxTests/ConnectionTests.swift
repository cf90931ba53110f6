import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Sandbox

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Polls `sockets` until the server has closed each (or `limit` passes); `tick` runs between
/// rounds (slowloris writes). Returns how many are still open.
func waitUntilClosed(_ sockets: [ProbeSocket], limit: TimeInterval = 60, tick: () -> Void = {}) -> Int {
  let end = Date().addingTimeInterval(limit)
  while Date() < end {
    var fds = sockets.filter { !$0.closedByServer && $0.fd >= 0 }.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
    if fds.isEmpty { return 0 }
    _ = poll(&fds, nfds_t(fds.count), 50)
    for s in sockets where !s.closedByServer && s.fd >= 0 { s.drain() }
    tick()
  }
  return sockets.filter { !$0.closedByServer }.count
}

/// Waits (up to `limit`, polling) until `condition` holds.
func eventually(_ limit: TimeInterval = 30, _ condition: () -> Bool) async -> Bool {
  let end = Date().addingTimeInterval(limit)
  while Date() < end {
    if condition() { return true }
    try? await Task.sleep(for: .milliseconds(20))
  }
  return condition()
}

/// Runs blocking socket work on its own thread.
func offThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
    Thread { c.resume(with: Result { try body() }) }.start()
  }
}

@Suite struct ConnectionLimitTests {
  /// 300 clients that never finish a request: silent, slowloris (a header byte now and then),
  /// stopped mid-body, idle on a kept-alive connection. The server closes every one, and a
  /// normal request is served while they hang on.
  @Test func slowAndSilentClientsAreDisconnected() async throws {
    try await withSandbox(
      { o in
        o.headerTimeout = .milliseconds(200)
        o.idleTimeout = .milliseconds(200)
      },
      { sb in
        let port = sb.port
        let served = try await offThread { () -> (Int, Int, Int) in
          var silent: [ProbeSocket] = []
          var slowloris: [ProbeSocket] = []
          var midBody: [ProbeSocket] = []
          var keptAlive: [ProbeSocket] = []
          for i in 0..<300 {
            let s = try ProbeSocket(port: port)
            switch i % 4 {
            case 0: silent.append(s)
            case 1:
              _ = s.send("GET /_sandbox/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
              slowloris.append(s)
            case 2:
              _ = s.send(
                "PUT /_sandbox/state/youtube/quotaUsed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n12"
              )
              midBody.append(s)
            default:
              _ = s.send("GET /_sandbox/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
              keptAlive.append(s)
            }
          }
          // Meanwhile a well-behaved client is served.
          let normal = try RawHTTP.blocking(port: port, "GET", "/_sandbox/clock", headers: [:], body: [])
          var round = 0
          let all = silent + slowloris + midBody + keptAlive
          let open = waitUntilClosed(all) {
            round += 1
            if round % 4 == 0 { for s in slowloris where !s.closedByServer { _ = s.send("a") } }
          }
          let answered = keptAlive.filter { (try? RawHTTP.parse($0.received))?.status == 200 }.count
          return (normal.status, open, answered)
        }
        #expect(served.0 == 200, "a normal request is served while 300 clients hang on")
        #expect(served.1 == 0, "every slow or silent connection is closed by the server")
        #expect(served.2 == 75, "the kept-alive clients got their answer before the idle timeout closed them")
        #expect(await eventually { sb.openConnections == 0 }, "the server counts them all as gone: \(sb.openConnections)")
      })
  }

  /// Over the cap, a connection is closed at once; closing one of those held frees a place.
  @Test func connectionsOverTheCapAreClosed() async throws {
    try await withSandbox(
      { o in
        o.maxConnections = 3
        o.headerTimeout = .seconds(120)
        o.idleTimeout = .seconds(120)
      },
      { sb in
        let port = sb.port
        let held = try (0..<3).map { _ in try ProbeSocket(port: port) }
        #expect(await eventually { sb.openConnections == 3 }, "three connections held: \(sb.openConnections)")
        let stillOpen = try await offThread { waitUntilClosed([try ProbeSocket(port: port)]) }
        #expect(stillOpen == 0, "the fourth connection is closed by the server")
        #expect(
          held.allSatisfy { s in
            s.drain()
            return !s.closedByServer
          }, "the held ones are not")
        #expect(sb.openConnections == 3)
        held[0].close()
        #expect(await eventually { sb.openConnections == 2 })
        let r = try await sb.call("GET", "/_sandbox/clock")
        #expect(r.status == 200, "a place is free again")
      })
  }
}

@Suite struct ChunkedBodyTests {
  func exchange(_ port: Int, _ text: String) async throws -> RawResponse {
    try await offThread {
      let s = try ProbeSocket(port: port)
      _ = s.send(text)
      _ = waitUntilClosed([s], limit: 30)
      return try RawHTTP.parse(s.received)
    }
  }

  @Test func aMalformedChunkSizeIsABadRequest() async throws {
    try await withSandbox(
      { o in o.maxBodyBytes = 1024 },
      { sb in
        let head =
          "PUT /_sandbox/state/youtube/quotaUsed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        let bad = try await exchange(sb.port, head + "zz\r\n12\r\n0\r\n\r\n")
        #expect(bad.status == 400)
        #expect(bad.json?["error"]?.string?.hasPrefix("malformed request body") == true, "the sandbox's error envelope: \(bad.text)")

        // Only a body that is really too large is 413.
        let big = String(repeating: "1", count: 2000)
        let large = try await exchange(sb.port, head + String(big.utf8.count, radix: 16) + "\r\n" + big + "\r\n0\r\n\r\n")
        #expect(large.status == 413)
        #expect(large.json?["error"]?.string == "request body larger than 1024 bytes")

        // A well-formed chunked body is read as any other.
        let good = try await exchange(sb.port, head + "2\r\n12\r\n0\r\n\r\n")
        #expect(good.status == 200)
        #expect(good.json == 12)
        #expect(sb.youtubeQuotaUsed == 12)
      })
  }
}
