import DriverKit
import EmpireModel
import Foundation
import Synchronization
import Testing

@testable import Reconciler
@testable import Service

@Suite("Webhooks: signatures, replay, refs, limits")
struct WebhookTests {
  let secret = Array("It's a Secret to Everybody".utf8)

  @Test("GitHub's test vector from API-NOTES.md")
  func vector() {
    #expect(
      WebhookGate.githubSignature(secret: secret, body: Array("Hello, World!".utf8))
        == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
  }

  func push(_ ref: String) -> [UInt8] { Array(#"{"ref":"\#(ref)","after":"0123456789abcdef0123456789abcdef01234567"}"#.utf8) }

  func headers(_ body: [UInt8], event: String = "push", delivery: String = UUID().uuidString, signature: String? = nil) -> [String: String]
  {
    [
      "x-hub-signature-256": signature ?? WebhookGate.githubSignature(secret: secret, body: body),
      "x-github-event": event, "x-github-delivery": delivery,
    ]
  }

  @Test("a signed push to the followed branch triggers; to another branch it is accepted and ignored")
  func pushRefs() {
    let gate = WebhookGate(githubSecret: secret, gitlabToken: nil, ref: "main")
    let b = push("refs/heads/main")
    #expect(gate.github(headers: headers(b), body: b) == .trigger("github push to refs/heads/main"))
    let other = push("refs/heads/feature")
    guard case .accepted = gate.github(headers: headers(other), body: other) else {
      Issue.record("expected accepted")
      return
    }
    let ping = Array(#"{"zen":"Keep it logically awesome.","hook_id":1}"#.utf8)
    #expect(gate.github(headers: headers(ping, event: "ping"), body: ping) == .accepted("pong"))
  }

  @Test("a wrong, missing or malformed signature is 401; a replayed delivery 409; an oversized body 413")
  func refusals() {
    let gate = WebhookGate(githubSecret: secret, gitlabToken: nil, ref: "main")
    let b = push("refs/heads/main")
    let wrong = WebhookGate.githubSignature(secret: Array("another secret".utf8), body: b)
    #expect(gate.github(headers: headers(b, signature: wrong), body: b).status == 401)
    var h = headers(b)
    h["x-hub-signature-256"] = nil
    #expect(gate.github(headers: h, body: b).status == 401)
    #expect(gate.github(headers: headers(b, signature: "sha1=abc"), body: b).status == 401)
    // The body changed after signing.
    let tampered = push("refs/heads/mainx")
    #expect(gate.github(headers: headers(b), body: tampered).status == 401)
    let once = headers(b, delivery: "d-1")
    #expect(gate.github(headers: once, body: b).status == 202)
    #expect(gate.github(headers: once, body: b) == .rejected(status: 409, message: "delivery d-1 was already received (replay)"))
    let big = [UInt8](repeating: 0x20, count: WebhookGate.maxBodyBytes + 1)
    #expect(gate.github(headers: headers(big), body: big).status == 413)
    // Not configured: 404, nothing triggers.
    #expect(WebhookGate(githubSecret: nil, gitlabToken: nil, ref: nil).github(headers: headers(b), body: b).status == 404)
  }

  @Test("the replay memory is bounded: the oldest deliveries and bodies are forgotten first")
  func replayBounded() {
    let gate = WebhookGate(githubSecret: secret, gitlabToken: nil, ref: nil)
    let n = WebhookGate.rememberedDeliveries
    for i in 0...n {
      let b = push("refs/heads/b\(i)")
      #expect(gate.github(headers: headers(b, delivery: "id-\(i)"), body: b).status == 202)
    }
    let first = push("refs/heads/b0")
    let last = push("refs/heads/b\(n)")
    #expect(gate.github(headers: headers(first, delivery: "id-0"), body: first).status == 202)  // both forgotten
    #expect(gate.github(headers: headers(last, delivery: "id-\(n)"), body: last).status == 409)
    #expect(gate.github(headers: headers(last, delivery: "another"), body: last).status == 409)
  }

  @Test("the same signed body under a new X-GitHub-Delivery is a replay (409); so is a GitLab push body sent again")
  func bodyReplay() {
    let gate = WebhookGate(githubSecret: secret, gitlabToken: Array("gl-token".utf8), ref: "main")
    let b = push("refs/heads/main")
    #expect(gate.github(headers: headers(b, delivery: "d-1"), body: b).status == 202)
    let replay = gate.github(headers: headers(b, delivery: "d-2"), body: b)
    #expect(
      replay
        == .rejected(
          status: 409, message: "this signed body was already received in an earlier delivery (replay under a new X-GitHub-Delivery)"))
    // A forged signature is refused as such (401) and is not remembered: the real delivery still passes.
    let other = push("refs/heads/main") + Array(" ".utf8)
    #expect(
      gate.github(headers: headers(other, delivery: "d-3", signature: "sha256=" + String(repeating: "0", count: 64)), body: other).status
        == 401)
    #expect(gate.github(headers: headers(other, delivery: "d-4"), body: other).status == 202)
    let gl: [String: String] = ["x-gitlab-token": "gl-token", "x-gitlab-event": "Push Hook"]
    let glBody = Array(#"{"ref":"refs/heads/main","checkout_sha":"0123456789abcdef0123456789abcdef01234567"}"#.utf8)
    #expect(gate.gitlab(headers: gl, body: glBody) == .trigger("gitlab push to refs/heads/main"))
    #expect(gate.gitlab(headers: gl, body: glBody) == .rejected(status: 409, message: "this push body was already received (replay)"))
    // A wrong token is 401 whatever the body.
    #expect(gate.gitlab(headers: ["x-gitlab-token": "nope", "x-gitlab-event": "Push Hook"], body: glBody).status == 401)
  }

  @Test("GitLab: X-Gitlab-Token compared with the configured one; Push Hook for the ref triggers")
  func gitlab() {
    let gate = WebhookGate(githubSecret: nil, gitlabToken: Array("gl-token".utf8), ref: "refs/heads/main")
    let b = push("refs/heads/main")
    #expect(
      gate.gitlab(headers: ["x-gitlab-token": "gl-token", "x-gitlab-event": "Push Hook"], body: b)
        == .trigger("gitlab push to refs/heads/main"))
    #expect(gate.gitlab(headers: ["x-gitlab-token": "gl-tokeN", "x-gitlab-event": "Push Hook"], body: b).status == 401)
    #expect(gate.gitlab(headers: ["x-gitlab-event": "Push Hook"], body: b).status == 401)
    #expect(gate.gitlab(headers: ["x-gitlab-token": "gl-token", "x-gitlab-event": "Issue Hook"], body: b).status == 200)
    // A push body nested a million deep is refused, not recursed into.
    let deep = Array(("{\"ref\":" + String(repeating: "[", count: 100_000)).utf8)
    #expect(gate.gitlab(headers: ["x-gitlab-token": "gl-token", "x-gitlab-event": "Push Hook"], body: deep).status == 400)
  }
}

@Suite("Status page and metrics")
struct StatusPageTests {
  func record(_ name: String, drifted: Bool) -> ResourceStatusRecord {
    ResourceStatusRecord(
      id: ResourceID(.channel, name), lastAppliedRevision: "main@sha1:abc", lastAttemptedRevision: "main@sha1:abc",
      conditions: [
        .init(type: .ready, status: .true, reason: .converged, message: "ok", lastTransitionTime: Date()),
        .init(
          type: .drifted, status: drifted ? .true : .false, reason: drifted ? .reported : .noDrift,
          message: "<script>alert(1)</script>", lastTransitionTime: Date()),
      ],
      external: ["youtubeChannelId": "UC\"><img src=x>"], lastActions: [], history: [])
  }

  @Test("one row per resource with its conditions; every value escaped; no script; refreshes itself")
  func render() {
    let snap = StatusSnapshot(
      resources: [record("tech-daily", drifted: true), record("b<i>", drifted: false)],
      quotas: [.init(rateLimit: "youtube-api", service: "youtube", units: 10_000, spent: 450, available: 9_000, resetsAt: Date())],
      revision: "main@sha1:abc", lastSourceError: "fetch failed: <bad>", lastReconcile: Date(), lastResult: "ok")
    let html = StatusPage.render(snap)
    #expect(html.contains("data-resource=\"Channel/tech-daily\""))
    #expect(html.contains("data-type=\"Drifted\" data-status=\"True\""))
    #expect(html.contains("Channel/b&lt;i&gt;"))
    #expect(!html.contains("<script") && !html.contains("<img") && !html.contains("<bad>"))
    #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
    #expect(html.contains("<meta http-equiv=\"refresh\""))
    #expect(html.contains("450 / 10000 units"))
  }

  @Test("metrics render in Prometheus text format with the contract's names")
  func metrics() throws {
    let m = ServiceMetrics()
    m.quotas([.init(rateLimit: "youtube-api", service: "youtube", units: 10_000, spent: 450, available: 9_000, resetsAt: Date())])
    m.circuit(service: "youtube", state: 0)
    m.sourceError()
    m.reconciled(seconds: 1.5, plan: nil, report: nil, appliedAt: Date(timeIntervalSince1970: 1_800_000_000))
    // Asking for a series again updates the one the registry has (no second line).
    m.quotas([.init(rateLimit: "youtube-api", service: "youtube", units: 10_000, spent: 450, available: 9_000, resetsAt: Date())])
    m.sourceError()
    let text = String(decoding: m.render(), as: UTF8.self)
    #expect(text.components(separatedBy: "ytempire_quota_used_units{service=\"youtube\"}").count == 2, "\(text)")
    #expect(text.contains("ytempire_source_errors_total 2"))
    for name in [
      "ytempire_reconcile_duration_seconds_count 1", "ytempire_quota_used_units{service=\"youtube\"} 450",
      "ytempire_quota_remaining_units{service=\"youtube\"} 9550", "ytempire_circuit_state{service=\"youtube\"} 0",
      "ytempire_drifted_resources 0", "ytempire_last_applied_timestamp_seconds 1800000000",
    ] {
      #expect(text.contains(name), "missing \(name) in\n\(text)")
    }
  }
}

@Suite("The reconcile loop")
struct LoopTests {
  @Test("one reconcile at a time; triggers during a run fold into one next run, a webhook named over a poll")
  func folding() async {
    let loop = ReconcileLoop(interval: { nil }, sleep: { _ in try await Task.sleep(for: .seconds(3600)) })
    let seen = Box<[Trigger]>([])
    let running = Box(0)
    let maxRunning = Box(0)
    let gate = AsyncStream.makeStream(of: Void.self)
    await withTaskGroup(of: Void.self) { g in
      g.addTask {
        await loop.run { t in
          running.withLock {
            $0 += 1
            let r = $0
            maxRunning.withLock { $0 = max($0, r) }
          }
          seen.withLock { $0.append(t) }
          if t == .start {
            // While the first run is busy, three triggers arrive.
            loop.trigger(.poll)
            loop.trigger(.webhook("push"))
            loop.trigger(.poll)
            gate.continuation.yield()
          }
          running.withLock { $0 -= 1 }
          if seen.withLock({ $0.count }) == 2 { loop.stop() }
        }
      }
      for await _ in gate.stream { break }
    }
    #expect(seen.withLock { $0 } == [.start, .webhook("push")])
    #expect(maxRunning.withLock { $0 } == 1)
  }

  @Test("a shutdown cancels a reconcile that is observing at once; it is not taken for a finished one")
  func stopCancelsObservation() async {
    let loop = ReconcileLoop(interval: { nil }, sleep: { _ in try await Task.sleep(for: .seconds(3600)) })
    let observing = AsyncStream.makeStream(of: Void.self)
    let outcome = Box<String?>(nil)
    let runner = Task {
      await loop.run { _ in
        observing.continuation.yield()
        // A silent integration: only cancellation ends this wait.
        do {
          try await Task.sleep(for: .seconds(3600))
          outcome.withLock { $0 = "finished" }
        } catch {
          outcome.withLock { $0 = error is CancellationError ? "cancelled" : "\(error)" }
        }
      }
    }
    for await _ in observing.stream { break }
    #expect(loop.phase == .observing)
    #expect(loop.stop() == .cancelledObservation)
    await runner.value
    #expect(outcome.withLock { $0 } == "cancelled")
    #expect(loop.phase == .idle)
  }

  @Test("a shutdown during an apply lets the action in flight finish for the grace period, then cancels it")
  func stopDuringApplyWaitsTheGrace() async {
    let graceStarted = AsyncStream.makeStream(of: Duration.self)
    let graceOver = AsyncStream.makeStream(of: Void.self)
    // The grace period is slept on this injected sleep: the test ends it by hand.
    let loop = ReconcileLoop(
      interval: { nil },
      sleep: { d in
        if d == .seconds(7) {
          graceStarted.continuation.yield(d)
          for await _ in graceOver.stream { break }
        } else {
          try await Task.sleep(for: .seconds(3600))
        }
      }, shutdownGrace: .seconds(7))
    let applying = AsyncStream.makeStream(of: Void.self)
    let outcome = Box<String?>(nil)
    let runner = Task {
      await loop.run { _ in
        loop.enter(.applying)
        applying.continuation.yield()
        do {
          try await Task.sleep(for: .seconds(3600))
          outcome.withLock { $0 = "finished" }
        } catch {
          outcome.withLock { $0 = error is CancellationError ? "cancelled after the grace" : "\(error)" }
        }
      }
    }
    for await _ in applying.stream { break }
    #expect(loop.stop() == .applyGrace(.seconds(7)))
    for await d in graceStarted.stream {
      #expect(d == .seconds(7))
      break
    }
    #expect(outcome.withLock { $0 } == nil, "still applying during the grace period")
    graceOver.continuation.yield()
    await runner.value
    #expect(outcome.withLock { $0 } == "cancelled after the grace")
  }

  @Test("the poll delay is the interval ± the jitter")
  func jitter() {
    let lo = ReconcileLoop(interval: { .seconds(60) }, jitter: 0.1, random: { 0 })
    let hi = ReconcileLoop(interval: { .seconds(60) }, jitter: 0.1, random: { 0.999999 })
    #expect(lo.nextDelay() == .seconds(54))
    #expect(hi.nextDelay()! > .seconds(65.9) && hi.nextDelay()! <= .seconds(66))
    #expect(ReconcileLoop(interval: { nil }).nextDelay() == nil)
  }
}

final class Box<T: Sendable>: Sendable {
  private let m: Mutex<T>
  init(_ v: T) { m = Mutex(v) }
  func withLock<R>(_ body: (inout T) -> R) -> R { m.withLock { body(&$0) } }
}

@Suite("Drift checks within a budget")
struct DriftPlannerTests {
  let reset = Date(timeIntervalSince1970: 1_800_000_000)
  func ids(_ n: Int) -> [ResourceID] { (0..<n).map { ResourceID(.channel, String(format: "c%03d", $0)) } }

  @Test("every resource is observed once per interval, in batches at least a minute apart")
  func coverage() {
    var p = DriftPlanner(interval: .seconds(600), share: 0.1)
    let q = [DriftPlanner.Quota(rateLimit: "youtube-api", units: 10_000, resetsAt: reset)]
    var seen: [ResourceID] = []
    var total: Duration = .zero
    for _ in 0..<10 {
      let t = p.next(resources: ids(25), quotas: q, now: reset.addingTimeInterval(-3600))
      seen += t.batch
      total += t.delay
      #expect(t.delay >= .seconds(60))
    }
    // Batches of 3: nine ticks cover the 25 once, the tenth starts the next round.
    #expect(Array(seen.prefix(25)) == ids(25))
    #expect(seen.count == 28)
    #expect(total == .seconds(600))
    #expect(p.period(count: 25, quotas: q) == .seconds(60))
  }

  @Test("when the budget cannot cover every resource the interval stretches, and status says why")
  func stretch() {
    var p = DriftPlanner(interval: .seconds(3600), share: 0.1)
    let q = [DriftPlanner.Quota(rateLimit: "youtube-api", units: 10_000, resetsAt: reset)]
    // A check of 100 resources spent 200 units: 2 per resource, 200 per round; 1000 a day allows 5 rounds.
    p.record(observed: 100, observationUnits: ["youtube-api": 200], quotas: q)
    let (d, note) = p.effectiveInterval(count: 100, quotas: q)
    #expect(d == .seconds(86_400 / 5))
    #expect(note?.contains("drift interval stretched from 1.0h to 4.8h") == true)
    #expect(p.next(resources: ids(100), quotas: q, now: reset.addingTimeInterval(-3600)).interval == .seconds(17_280))
    // A budget that covers it leaves the interval alone.
    var rich = DriftPlanner(interval: .seconds(3600), share: 0.1)
    rich.record(observed: 100, observationUnits: ["youtube-api": 10], quotas: q)
    #expect(rich.effectiveInterval(count: 100, quotas: q).1 == nil)
  }

  @Test("the day's drift budget is a hard cap: a check that would pass it waits for the reset")
  func cap() {
    var p = DriftPlanner(interval: .seconds(60), share: 0.01, minimumPeriod: .seconds(1))
    let q = [DriftPlanner.Quota(rateLimit: "youtube-api", units: 10_000, resetsAt: reset)]
    p.record(observed: 10, observationUnits: ["youtube-api": 95], quotas: q)  // 95 of the 100-unit drift budget
    let t = p.next(resources: ids(10), quotas: q, now: reset.addingTimeInterval(-600))
    #expect(t.batch.isEmpty)
    #expect(t.delay == .seconds(600))
    #expect(t.note == "drift checks paused until youtube-api resets: 95 of its 100-unit drift budget spent")
    // A new window starts the count again.
    let next = [DriftPlanner.Quota(rateLimit: "youtube-api", units: 10_000, resetsAt: reset.addingTimeInterval(86_400))]
    #expect(!p.next(resources: ids(10), quotas: next, now: reset.addingTimeInterval(1)).batch.isEmpty)
    #expect(p.spentUnits("youtube-api", resetsAt: reset) == 95)
  }

  @Test("a new leader (or a restart) goes on from the stored memory: the day's drift budget is not spent twice")
  func memoryCarriesOver() throws {
    var p = DriftPlanner(interval: .seconds(60), share: 0.01, minimumPeriod: .seconds(1))
    let q = [DriftPlanner.Quota(rateLimit: "youtube-api", units: 10_000, resetsAt: reset)]
    _ = p.next(resources: ids(10), quotas: q, now: reset.addingTimeInterval(-600))
    p.record(observed: 10, observationUnits: ["youtube-api": 95], quotas: q)
    let enc = JSONEncoder()
    enc.dateEncodingStrategy = .secondsSince1970
    let dec = JSONDecoder()
    dec.dateDecodingStrategy = .secondsSince1970
    let stored = try dec.decode(DriftPlanner.Memory.self, from: try enc.encode(p.memory))
    #expect(stored == p.memory)
    var next = DriftPlanner(interval: .seconds(60), share: 0.01, minimumPeriod: .seconds(1))
    #expect(!next.next(resources: ids(10), quotas: q, now: reset.addingTimeInterval(-600)).batch.isEmpty, "a fresh planner would check")
    var successor = DriftPlanner(interval: .seconds(60), share: 0.01, minimumPeriod: .seconds(1))
    successor.restore(stored)
    #expect(successor.spentUnits("youtube-api", resetsAt: reset) == 95)
    #expect(successor.next(resources: ids(10), quotas: q, now: reset.addingTimeInterval(-600)).batch.isEmpty)
    #expect(successor.costPerResource == p.costPerResource)
  }
}
