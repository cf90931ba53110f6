import Foundation
import Logging
import Reconciler
import Webhooks
import Workspace

/// A webhook a standby received, handed to the leader through the state store (`NOTIFY`).
struct HandedEvent: Codable, Sendable, Equatable {
  enum Kind: String, Codable, Sendable { case push, pullRequest }
  struct PullRequest: Codable, Sendable, Equatable {
    var forge: String
    var number: Int
    var head: String
    var ref: String
    var fromFork: Bool
    var action: String
    init(_ e: PullRequestEvent) {
      forge = e.forge.rawValue
      number = e.number
      head = e.head
      ref = e.ref
      fromFork = e.fromFork
      action = e.action
    }
    /// Back to the verified event, with the webhook decoder's own checks (ranges, the ref's form).
    var event: PullRequestEvent? {
      guard let f = PullRequestEvent.Forge(rawValue: forge), (1...Int(Int32.max)).contains(number),
        head.utf8.count == 40, head.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }),
        ref == (f == .github ? "refs/pull/\(number)/head" : "refs/merge-requests/\(number)/head")
      else { return nil }
      return PullRequestEvent(forge: f, number: number, head: head, ref: ref, fromFork: fromFork, action: String(action.prefix(32)))
    }
  }
  var kind: Kind
  var reason: String?
  var pullRequest: PullRequest?

  /// NOTIFY payloads are at most 8000 bytes: reasons are cut well below that.
  var payload: String {
    var e = self
    e.reason = reason.map { String($0.prefix(500)) }
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    return String(decoding: (try? enc.encode(e)) ?? Data(), as: UTF8.self)
  }

  static func parse(_ payload: String) -> HandedEvent? {
    guard payload.utf8.count <= 8000 else { return nil }
    return try? JSONDecoder().decode(HandedEvent.self, from: Data(payload.utf8))
  }
}

extension ServeRuntime {
  /// The election period: a third of `serve.leaderElection.takeover`, so a standby campaigns
  /// three times within the bound.
  var campaignPeriod: Duration {
    let ms = max(current.config.serve.leaderTakeover.milliseconds / 3, 500)
    return .milliseconds(ms)
  }

  /// Campaigns for the writer lock of a shared state store until serve stops. A leader checks
  /// every period that its session still holds the lock and steps down at once when it does
  /// not (its journal writes are fenced anyway); it campaigns again only once the reconcile it
  /// was running has ended. The leader listens for the webhooks standbys hand over.
  func electionLoop() async {
    guard current.electsLeader else { return }
    var listener: Task<Void, Never>?
    defer { listener?.cancel() }
    while !Task.isCancelled && !loop.isStopping {
      let ws = current
      let was = leadership.withLock { $0 }
      if was.isLeader {
        if !ws.stillLeads() {
          leadership.withLock { $0 = .standby(leader: nil, reason: "the writer lock was lost") }
          listener?.cancel()
          listener = nil
          logger.error("lost the writer lock of the state store (its session ended): standing by; nothing more is written")
        }
      } else if !cycling.withLock({ $0 }) {
        let now = ws.campaign()
        leadership.withLock { $0 = now }
        if case .leader(let epoch) = now {
          logger.info("leading: this instance holds the state store's writer lock", metadata: ["epoch": .stringConvertible(epoch ?? 0)])
          if let epoch { ws.reportLeading(epoch: epoch) }
          loadDriftMemory(from: ws)
          listener?.cancel()
          listener = Task { await self.listenForHandedEvents() }
          loop.trigger(.leader)
        } else if now != was {
          logger.info("standing by", metadata: ["role": .string(now.description)])
        }
      }
      do { try await Task.sleep(for: campaignPeriod) } catch { return }
    }
  }

  /// The leader's end of the hand-over: reconnects (after a pause) until cancelled.
  func listenForHandedEvents() async {
    while !Task.isCancelled {
      do {
        try await current.listenForHandedEvents { [self] payload in
          guard let e = HandedEvent.parse(payload) else {
            logger.warning("a handed-over event could not be read; ignored")
            return
          }
          switch e.kind {
          case .push:
            logger.info("webhook handed over by a standby: reconcile now", metadata: ["reason": .string(e.reason ?? "")])
            loop.trigger(.webhook("handed over: " + (e.reason ?? "push")))
          case .pullRequest:
            if let pr = e.pullRequest?.event { planPullRequest(pr) }
          }
        }
      } catch is CancellationError {
        return
      } catch {
        if Task.isCancelled { return }
        logger.warning("listening for handed-over webhooks failed; listening again", metadata: ["error": .string("\(error)")])
      }
      do { try await Task.sleep(for: .seconds(1)) } catch { return }
    }
  }

  /// A standby hands a webhook to the leader; false when this instance leads (or the state is
  /// not shared) and handles it itself. A hand-over that fails is logged: the leader's next
  /// poll picks the commit up anyway.
  func handToLeader(_ event: HandedEvent) -> Bool {
    let ws = current
    guard ws.electsLeader, !leadership.withLock({ $0.isLeader }) else { return false }
    do {
      try ws.handToLeader(event.payload)
    } catch {
      logger.error("a webhook could not be handed to the leader; its next poll finds the commit", metadata: ["error": .string("\(error)")])
    }
    return true
  }
}

extension ServeRuntime {
  /// The drift planner's memory, into the state store after each drift check.
  func saveDriftMemory(_ m: DriftPlanner.Memory, in ws: Workspace) {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    enc.dateEncodingStrategy = .secondsSince1970
    guard let data = try? enc.encode(m) else { return }
    do { try ws.store.setMeta(.driftBudget, String(decoding: data, as: UTF8.self)) } catch {
      logger.warning("the drift budget could not be saved in the state store", metadata: ["error": .string("\(error)")])
    }
  }

  /// On taking the lead (and at start): go on from what the last leader spent.
  func loadDriftMemory(from ws: Workspace) {
    guard let text = try? ws.store.meta(.driftBudget), text.utf8.count <= 1 << 20 else { return }
    let dec = JSONDecoder()
    dec.dateDecodingStrategy = .secondsSince1970
    guard let m = try? dec.decode(DriftPlanner.Memory.self, from: Data(text.utf8)) else { return }
    drift.withLock { $0.restore(m) }
  }
}
