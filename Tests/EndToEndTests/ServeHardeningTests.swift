import Foundation
import Sandbox
import TestSupport
import Testing

/// Polls until `condition` holds on the clients (or `limit` passes, a guard against hangs only).
func waitFor(_ clients: [ProbeSocket], limit: TimeInterval, _ condition: ([ProbeSocket]) -> Bool) async -> Bool {
  let end = Date().addingTimeInterval(limit)
  while Date() < end {
    for c in clients { c.drain() }
    if condition(clients) { return true }
    try? await Task.sleep(for: .milliseconds(50))
  }
  for c in clients { c.drain() }
  return condition(clients)
}

/// Issue 16: what an adversarial probe of serve found (items 2, 3, 4, 9).
@Suite("serve: hardening", .serialized)
struct ServeHardeningTests {
  /// Every line of a `--log-format json` run is one JSON object.
  static func allJSON(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [[String: Any]] {
    var out: [[String: Any]] = []
    for line in text.split(separator: "\n") {
      guard let o = try? E2E.object(String(line)) else {
        Issue.record("not a JSON line: \(line)", sourceLocation: sourceLocation)
        continue
      }
      out.append(o)
    }
    return out
  }

  @Test("a taken listen address ends serve at once, non-zero, naming the address, before any reconcile (every line JSON)")
  func listenAddressTaken() async throws {
    try await Empire.with { e in
      let taken = try Processes.loopbackSocket(listening: 8)
      defer { close(taken.fd) }
      try e.writeConfig(e.configText + "serve:\n  listen: 127.0.0.1:\(taken.port)\n")
      let p = try e.spawn(["serve", "--log-format", "json"], log: "taken")
      // A guard against the old behaviour (it never ended), not a timing requirement.
      try await waitForExit(p, timeout: 60)
      let err = (try? String(contentsOfFile: e.tmp.sub("taken.err"), encoding: .utf8)) ?? ""
      let out = (try? String(contentsOfFile: e.tmp.sub("taken.out"), encoding: .utf8)) ?? ""
      #expect(p.terminationStatus == 1, "\(err)")
      let lines = Self.allJSON(err + out)
      let messages = lines.compactMap { $0["message"] as? String }
      #expect(messages.contains("error: cannot listen on 127.0.0.1:\(taken.port): Address already in use"), "\(messages)")
      #expect(!messages.contains { $0.hasPrefix("planned") || $0.hasPrefix("reconcile") || $0.hasPrefix("reconciled") }, "\(messages)")
      #expect(e.sandbox.callCounts.isEmpty, "nothing was observed: \(e.sandbox.callCounts)")
    }
  }

  @Test("SIGTERM while an integration is silent mid-observation ends serve within seconds, cancelling the call; nothing is recorded as ok")
  func sigtermDuringSilentObservation() async throws {
    try await Empire.with { e in
      // YouTube accepts connections and never answers.
      let silent = try Processes.loopbackSocket(listening: 64)
      defer { close(silent.fd) }
      let s = try Served(e, interval: "1h")
      try e.writeConfig(
        e.configText
          .replacingOccurrences(of: "\"\(e.sandbox.baseURL)/youtube/v3\"", with: "\"http://127.0.0.1:\(silent.port)/youtube/v3\"")
          .replacingOccurrences(of: "\"\(e.sandbox.baseURL)/token\"", with: "\"http://127.0.0.1:\(silent.port)/token\""))
      let (p, _) = try await s.start(format: "json")
      // serve's first call to YouTube reaches the silent listener: the observation is under way.
      _ = fcntl(silent.fd, F_SETFL, fcntl(silent.fd, F_GETFL) | O_NONBLOCK)
      var held: [Int32] = []
      defer { for fd in held { close(fd) } }
      try await s.eventually("serve's call to YouTube under way") {
        let fd = accept(silent.fd, nil, nil)
        if fd >= 0 { held.append(fd) }
        return !held.isEmpty
      }
      kill(p.processIdentifier, SIGTERM)
      // Generous: a guard against a hang (the defaults would hold it for minutes), not a bound.
      try await waitForExit(p, timeout: 30)
      #expect(p.terminationStatus == 0)
      let log = s.log()
      let messages = Self.allJSON(log).compactMap { $0["message"] as? String }
      #expect(messages.contains("shutting down: the observation in progress is cancelled"), "\(messages)")
      #expect(messages.contains("reconcile cancelled: ytempire is shutting down; the next start plans again"), "\(messages)")
      #expect(!messages.contains { $0.hasPrefix("reconciled") || $0.hasPrefix("planned") }, "\(messages)")
      #expect(messages.contains("serve stopped"))
      // No status was recorded for the cancelled run.
      #expect(!FileManager.default.fileExists(atPath: e.stateDir + "/status/channels/tech-daily.yaml"))
    }
  }

  @Test("plan gives up a silent integration at deadlines.observe and says which deadline")
  func planObserveDeadline() async throws {
    try await Empire.with { e in
      let silent = try Processes.loopbackSocket(listening: 64)
      defer { close(silent.fd) }
      try e.writeConfig(
        e.configText
          .replacingOccurrences(of: "\"\(e.sandbox.baseURL)/youtube/v3\"", with: "\"http://127.0.0.1:\(silent.port)/youtube/v3\"")
          .replacingOccurrences(of: "\"\(e.sandbox.baseURL)/token\"", with: "\"http://127.0.0.1:\(silent.port)/token\"")
          + "deadlines: {request: 1m, call: 2m, observe: 3s}\n")
      let p = try e.spawn(["plan", "--output", "json"], log: "plan")
      try await waitForExit(p, timeout: 90)
      let out = (try? String(contentsOfFile: e.tmp.sub("plan.out"), encoding: .utf8)) ?? ""
      let plan = try E2E.object(out)
      let channels = PlanJSON.changes(plan).filter {
        ($0["id"] as? String ?? "").hasPrefix("Channel/") || (($0["id"] as? [String: Any])?["kind"] as? String) == "Channel"
      }
      #expect(!channels.isEmpty, "\(out.prefix(2000))")
      for c in channels {
        #expect(
          (c["observationError"] as? String ?? "").contains(
            "observing through YouTube did not finish within its deadline of 3s (deadlines.observe in ytempire.yaml)"),
          "\(c)")
      }
      // The run's deadline is over for the integrations after YouTube too: nothing is planned blind.
      for c in PlanJSON.changes(plan) {
        if let why = c["observationError"] as? String { #expect(why.contains("(deadlines.observe in ytempire.yaml)"), "\(c)") }
      }
      #expect(PlanJSON.actions(plan).isEmpty, "nothing planned from what was not observed: \(PlanJSON.callNames(plan))")
    }
  }

  @Test(
    "serve's listener: the connections over the cap are closed at once, silent ones after the header timeout, a 10 GB webhook gets 413 at once, a trickled body is cut"
  )
  func listenerLimits() async throws {
    try await Empire.with { e in
      let s = try Served(e, interval: "1h")
      let (p, port) = try await s.start()
      // 300 connections that send nothing: 256 are held, the rest closed before a byte is read.
      var silent: [ProbeSocket] = []
      for _ in 0..<300 { silent.append(try ProbeSocket(port: port)) }
      #expect(
        await waitFor(silent, limit: 30) { cs in cs.filter(\.closedByServer).count >= 44 },
        "over the cap of 256, the rest are closed at once")
      // The service still answers while they hang on? Only once they are gone: the cap is full.
      // After the 10 s header timeout every silent one is closed.
      #expect(
        await waitFor(silent, limit: 60) { cs in cs.allSatisfy(\.closedByServer) }, "silent connections closed after the header timeout")
      #expect(silent.allSatisfy { $0.received.isEmpty }, "closed without an answer")
      #expect(try await s.http(port, "GET", "/healthz").0 == 200)

      // A webhook announcing 10 GB and sending nothing is answered 413 at once.
      let big = try ProbeSocket(port: port)
      big.send("POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10737418240\r\n\r\n")
      #expect(await waitFor([big], limit: 30) { cs in cs[0].text.contains("\r\n\r\n") })
      #expect(big.text.hasPrefix("HTTP/1.1 413"), "\(big.text)")

      // A body that trickles in (a byte every few seconds, within the idle timeout) is cut at the body timeout (30 s).
      let slow = try ProbeSocket(port: port)
      slow.send("POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
      let cut = await waitFor([slow], limit: 90) { cs in
        if !cs[0].closedByServer, Int(Date().timeIntervalSince1970) % 5 == 0 { cs[0].send(" ") }
        return cs[0].closedByServer
      }
      #expect(cut, "a trickled body is cut")
      #expect(try await s.stop(p) == 0)
    }
  }

  @Test(
    "messages a person can act on: a stateDir that is a file names the setting and the path; a bad file at SIGHUP in json logs is JSON and says what is wrong"
  )
  func actionableMessages() async throws {
    try await Empire.with { e in
      // stateDir is a file.
      let file = e.tmp.sub("not-a-dir")
      try Data("x".utf8).write(to: URL(fileURLWithPath: file))
      let good = e.configText
      try e.writeConfig(good.replacingOccurrences(of: "stateDir: \"\(e.stateDir)\"", with: "stateDir: \"\(file)\""))
      let r = try await e.run(["plan"])
      #expect(r.status == 1)
      #expect(r.stderr.contains("stateDir \(file) is a file, not a directory; set stateDir in ytempire.yaml to a directory"), "\(r)")
      #expect(!r.stderr.contains("NSCocoaErrorDomain") && !r.stderr.contains("Code=516"), "\(r)")
      #expect(e.sandbox.callCounts.isEmpty, "nothing observed")

      // SIGHUP with a bad file, json logs.
      try e.writeConfig(good)
      let s = try Served(e, interval: "1h")
      let (p, _) = try await s.start(format: "json")
      try await s.eventually("the first reconcile") { s.log().contains("\"message\":\"reconciled") }
      try e.writeConfig(e.configText.replacingOccurrences(of: "stateDir:", with: "stateDirectory:"))
      kill(p.processIdentifier, SIGHUP)
      try await s.eventually("the bad file reported") { s.log().contains("configuration not reloaded; the old one stays in use") }
      #expect(try await s.stop(p) == 0)
      let lines = Self.allJSON(s.log())
      let reload = try #require(lines.first { $0["message"] as? String == "configuration not reloaded; the old one stays in use" })
      // One JSON line that says what is wrong, each diagnostic located.
      let why = reload["error"] as? String ?? ""
      #expect(why.hasPrefix("\(e.configPath): the configuration has errors; "), "\(reload)")
      #expect(why.contains("ytempire.yaml:13:1: error: unknown field 'stateDirectory'"), "\(reload)")
      #expect(reload["level"] as? String == "error")
      #expect(!s.log().contains("ExitCode"))
    }
  }
}
