import CurlHTTP
import Foundation
import TestSupport
import Testing

/// Keep-alive throughput of CurlHTTPClient against the in-process NIO server, next to
/// `curl --parallel` (libcurl's own multi loop in C) against the same server in the same run.
/// Skipped unless YTEMPIRE_BENCH is set; bench/http/run.sh runs it.
@Suite struct BenchmarkTests {
  static let enabled = ProcessInfo.processInfo.environment["YTEMPIRE_BENCH"] != nil

  @Test(.enabled(if: BenchmarkTests.enabled)) func keepAliveThroughput() async throws {
    let env = ProcessInfo.processInfo.environment
    let total = Int(env["YTEMPIRE_BENCH_REQUESTS"] ?? "") ?? 20_000
    // YTEMPIRE_BENCH_URL points at an outside server (bench/http/run.sh starts nginx); else the in-process NIO server.
    let server = try await HTTPTestServer.start(threads: 1, recordRequests: false)
    server.route("/bench", .text(200, "ok"))
    let url = env["YTEMPIRE_BENCH_URL"] ?? server.baseURL + "/bench"
    let label = env["YTEMPIRE_BENCH_URL"] == nil ? "nio-test-server" : "external"
    var config = CurlHTTPConfiguration()
    config.maxConnectionCache = 128
    config.version = .http11
    let client = CurlHTTPClient(configuration: config)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ytempire-bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    var lines: [String] = []

    for c in [1, 8, 64] {
      let n = c == 1 ? total / 4 : total
      // Warm up connections.
      try await run(client, url, concurrency: c, requests: c * 10)
      let start = ContinuousClock.now
      try await run(client, url, concurrency: c, requests: n)
      let ours = Double(n) / (ContinuousClock.now - start).seconds

      // curl reading N URLs from a config file; --parallel-max c connections, reused.
      let cfg = dir.appendingPathComponent("curl-\(c).cfg")
      try String(repeating: "url = \"\(url)\"\noutput = \"/dev/null\"\n", count: n).write(to: cfg, atomically: true, encoding: .utf8)
      var args = ["/usr/bin/curl", "-s", "--http1.1", "-K", cfg.path]
      if c > 1 { args += ["--parallel", "--parallel-immediate", "--parallel-max", String(c)] }
      let cstart = ContinuousClock.now
      let pid = try TLSFixture.spawn(args)
      #expect(TLSFixture.wait(pid) == 0)
      let theirs = Double(n) / (ContinuousClock.now - cstart).seconds
      let line =
        "server=\(label) "
        + String(
          format: "concurrency=%d requests=%d curlhttp_rps=%.0f curl_parallel_rps=%.0f ratio=%.2f", c, n, ours, theirs, ours / theirs)
      print("BENCH " + line)
      lines.append(line)
    }
    if let out = env["YTEMPIRE_BENCH_OUT"] {
      try lines.joined(separator: "\n").appending("\n").write(toFile: out, atomically: true, encoding: .utf8)
    }
    client.shutdown()
    try await server.shutdown()
  }

  func run(_ client: CurlHTTPClient, _ url: String, concurrency: Int, requests: Int) async throws {
    try await withThrowingTaskGroup(of: Void.self) { g in
      let per = requests / concurrency
      for _ in 0..<concurrency {
        g.addTask {
          for _ in 0..<per {
            let r = try await client.execute(HTTPRequest(url: url))
            guard r.status == 200 else { throw CurlHTTPError(kind: .other, curlCode: 0, message: "status \(r.status)", url: url) }
          }
        }
      }
      try await g.waitForAll()
    }
  }
}

extension Duration {
  var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
