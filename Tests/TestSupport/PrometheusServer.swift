import Foundation
import Synchronization

/// A throwaway Prometheus server on 127.0.0.1 for tests: Debian's `/usr/bin/prometheus`, with
/// `--web.enable-lifecycle` (so `POST /-/reload` works), a temporary directory holding its
/// configuration (whose `rule_files` names the given rule files) and its storage, and a free
/// port (Prometheus cannot bind port 0 and report it, so a free one is picked and another
/// tried when the bind fails). Stopped (SIGTERM, then SIGKILL) and its directory removed by
/// `stop()` or when released. Runs fine as root.
public final class PrometheusServer: Sendable {
  public let port: Int
  /// The temporary directory (configuration `prometheus.yml`, `data/`, `prometheus.log`).
  public let directory: String
  /// The rule files its configuration names.
  public let ruleFiles: [String]
  private let child: Processes.Child
  private let stopped = Mutex(false)

  /// `http://127.0.0.1:<port>`.
  public var url: String { "http://127.0.0.1:\(port)" }

  public static let executable = "/usr/bin/prometheus"
  /// Whether Debian's `prometheus` package is installed (`make deps` installs it).
  public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: executable) }
  /// Why a test that needs Prometheus cannot run, or nil when it can.
  public static var unavailableReason: String? {
    isAvailable ? nil : "Prometheus is not installed (no \(executable)); `make deps` or `apt-get install prometheus` installs it"
  }

  /// Starts Prometheus loading `ruleFiles` (absolute paths; they need not exist yet), evaluating
  /// rules every `evaluationInterval`. `lifecycle: false` leaves the lifecycle API disabled.
  /// `scrape`: `host:port` targets scraped every `scrapeInterval` at `/metrics` (job `ytempire`).
  public static func start(
    ruleFiles: [String], evaluationInterval: String = "1s", lifecycle: Bool = true,
    scrape: [String] = [], scrapeInterval: String = "1s",
    readyTimeout: TimeInterval = 60
  ) throws -> PrometheusServer {
    guard isAvailable else { throw Processes.Failure(description: unavailableReason!) }
    let dir = FileManager.default.temporaryDirectory.path + "/ytempire-prom-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
    var config = "global:\n  evaluation_interval: \(evaluationInterval)\n  scrape_interval: 1m\nrule_files:\n"
    for f in ruleFiles { config += "  - \"\(f)\"\n" }
    if ruleFiles.isEmpty { config += "  []\n" }
    if !scrape.isEmpty {
      config += "scrape_configs:\n  - job_name: ytempire\n    scrape_interval: \(scrapeInterval)\n    static_configs:\n      - targets: ["
      config += scrape.map { "\"\($0)\"" }.joined(separator: ", ") + "]\n"
    }
    try Data(config.utf8).write(to: URL(fileURLWithPath: dir + "/prometheus.yml"))
    // Port 0: Prometheus binds a free port itself and logs it ("Listening on" address=…),
    // so no other process can take the port between choosing and binding.
    var args = [
      executable, "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data",
      "--web.listen-address=127.0.0.1:0", "--log.level=info",
    ]
    if lifecycle { args.append("--web.enable-lifecycle") }
    let logPath = dir + "/prometheus.log"
    let child: Processes.Child
    do { child = try Processes.start(args, stdout: .file(logPath), stderr: .file(logPath)) } catch {
      try? FileManager.default.removeItem(atPath: dir)
      throw error
    }
    let deadline = Date().addingTimeInterval(readyTimeout)
    var port: Int?
    while Date() < deadline && child.isRunning {
      if port == nil, let log = try? String(contentsOfFile: logPath, encoding: .utf8),
        let r = log.range(of: "msg=\"Listening on\" address=127.0.0.1:")
      {
        port = Int(log[r.upperBound...].prefix { $0.isNumber })
      }
      if let port, let r = httpGet(port: port, path: "/-/ready"), r.status == 200 {
        return PrometheusServer(port: port, directory: dir, ruleFiles: ruleFiles, child: child)
      }
      usleep(50_000)
    }
    let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    child.stop(grace: 5)
    try? FileManager.default.removeItem(atPath: dir)
    throw Processes.Failure(description: "prometheus did not become ready\(port.map { " on port \($0)" } ?? ""): \(log.suffix(2000))")
  }

  private init(port: Int, directory: String, ruleFiles: [String], child: Processes.Child) {
    self.port = port
    self.directory = directory
    self.ruleFiles = ruleFiles
    self.child = child
  }

  /// Prometheus's log so far.
  public var log: String { (try? String(contentsOfFile: directory + "/prometheus.log", encoding: .utf8)) ?? "" }

  /// `GET path` on the server: status and body (nil when it cannot be reached).
  public func get(_ path: String) -> (status: Int, body: String)? { Self.httpGet(port: port, path: path) }

  /// SIGTERM, then SIGKILL after `grace` seconds; removes the directory. Safe to call twice.
  public func stop(grace: TimeInterval = 10) {
    let first = stopped.withLock { s -> Bool in
      defer { s = true }
      return !s
    }
    guard first else { return }
    child.stop(grace: grace)
    try? FileManager.default.removeItem(atPath: directory)
  }

  deinit { stop() }

  // MARK: a minimal HTTP GET (readiness and assertions)

  static func httpGet(port: Int, path: String, timeout: TimeInterval = 5) -> (status: Int, body: String)? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let ok = withUnsafePointer(to: &addr) { p in
      p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard ok else { return nil }
    let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
    var off = 0
    while off < request.count {
      let n = request[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
      if n <= 0 { return nil }
      off += n
    }
    var data: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 16384)
    while data.count < 16 << 20 {
      let n = recv(fd, &buf, buf.count, 0)
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { break }
      data.append(contentsOf: buf[0..<n])
    }
    let text = String(decoding: data, as: UTF8.self)
    guard text.hasPrefix("HTTP/"), let sp = text.firstIndex(of: " ") else { return nil }
    let status = Int(text[text.index(after: sp)...].prefix(3)) ?? 0
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return (status, body)
  }
}
