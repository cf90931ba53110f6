import EmpireModel
import Foundation
import Notifications
import PostgresState
import Reconciler

extension Workspace {
  /// The shared PostgreSQL store of `stateStore:`, opened (and migrated) now; a writer takes
  /// the state directory's lock (its git mirror and files are this machine's) and the store's
  /// advisory lock, refused with the holder named.
  static func openShared(
    _ shared: StateStoreSettings, config: ReconcilerConfig, writer: Bool, resolver: SecretResolver, hostName: String, now: Date
  ) throws(WorkspaceError) -> (StateDirectoryLock?, any StateStore) {
    var password: String?
    if let ref = shared.password {
      do { password = try resolver.resolve(ref) } catch {
        throw WorkspaceError(.stateDirectory, "stateStore.password (\(ref.path)) cannot be read: \(error)")
      }
    }
    let settings: PostgresStateSettings
    let store: PostgresStateStore
    do {
      settings = try PostgresStateSettings.parse(
        shared.url, password: password, tls: PostgresStateSettings.TLSMode(rawValue: shared.tlsMode.rawValue), caFile: shared.caFile)
      store = try PostgresStateStore(settings)
    } catch {
      throw WorkspaceError(.stateDirectory, "stateStore: \(error)")
    }
    guard writer else { return (nil, store) }
    do {
      let lock = try StateDirectoryLock(stateDir: config.stateDir)
      try store.lockWriter(host: hostName, pid: Int(getpid()), now: now)
      return (lock, store)
    } catch {
      store.close()
      throw WorkspaceError(.stateDirectory, "stateStore: \(error)")
    }
  }
}

/// Who applies, among the `serve` instances of one shared state store.
public enum Leadership: Sendable, Equatable {
  /// This instance holds the writer lock (epoch nil: the sole writer of a SQLite state).
  case leader(epoch: Int64?)
  /// Another instance leads (nil when it could not be told), or the store cannot be reached (`reason`).
  case standby(leader: LockHolder?, reason: String?)

  public var isLeader: Bool {
    if case .leader = self { return true }
    return false
  }

  /// `leader`, or `standby (leader: host …, pid …, since …)`: what /readyz and the status page say.
  public var description: String {
    switch self {
    case .leader(let e): return e.map { "leader (epoch \($0))" } ?? "leader"
    case .standby(let l, let reason):
      if let reason { return "standby (the state store cannot be reached: \(reason))" }
      return "standby (leader: \(l?.description ?? "unknown"))"
    }
  }
}

extension Workspace {
  /// Whether `serve` elects a leader: the state store is shared (PostgreSQL).
  public var electsLeader: Bool { store is PostgresStateStore }

  /// One round of serve's election: keeps the writer lock while its session lives, else tries
  /// to take it. On SQLite the state directory's lock already made this instance the writer.
  public func campaign() -> Leadership {
    guard let pg = store as? PostgresStateStore else { return .leader(epoch: nil) }
    if let epoch = pg.writerEpoch, pg.stillHoldsLock() { return .leader(epoch: epoch) }
    do {
      switch try pg.tryLockWriter(host: hostName, pid: Int(getpid()), now: clock.wallNow) {
      case .acquired(let epoch): return .leader(epoch: epoch)
      case .heldBy(let holder): return .standby(leader: holder, reason: nil)
      }
    } catch {
      return .standby(leader: nil, reason: "\(error)")
    }
  }

  /// Whether this instance still leads (its session answers and holds the lock at its epoch).
  public func stillLeads() -> Bool {
    guard let pg = store as? PostgresStateStore else { return true }
    return pg.stillHoldsLock()
  }

  /// A standby's webhook, handed to the leader (`NOTIFY`).
  public func handToLeader(_ payload: String) throws(WorkspaceError) {
    guard let pg = store as? PostgresStateStore else { return }
    do { try pg.notifyLeader(payload) } catch { throw WorkspaceError(.stateDirectory, "\(error)") }
  }

  /// The leader's side of `handToLeader`: runs until cancelled or its connection ends.
  public func listenForHandedEvents(_ onEvent: @escaping @Sendable (String) -> Void) async throws {
    guard let pg = store as? PostgresStateStore else { return }
    try await pg.listenForEvents(onEvent)
  }

  /// `leaderChanged`: this instance took the lead (sent once per epoch).
  public func reportLeading(epoch: Int64) {
    guard !config.notifications.isEmpty else { return }
    notifier.post(
      NotificationEvent(
        event: .leaderChanged, time: clock.wallNow, revision: nil, commit: nil,
        summary: "\(hostName) (pid \(getpid())) leads the state store at epoch \(epoch)", state: "epoch-\(epoch)",
        actor: "\(AuditActor.Role.serve.rawValue)@\(hostName)"))
  }
}
