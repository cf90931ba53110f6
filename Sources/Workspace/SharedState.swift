import EmpireModel
import Foundation
import PostgresState
import Reconciler

extension Workspace {
  /// The shared PostgreSQL store of `stateStore:`, opened (and migrated) now; a writer takes
  /// the state directory's lock (its git mirror and files are this machine's) and the store's
  /// advisory lock, refused with the holder named.
  static func openShared(
    _ shared: StateStoreSettings, config: ReconcilerConfig, writer: Bool, resolver: SecretResolver, hostName: String
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
      try store.lockWriter(host: hostName, pid: Int(getpid()), now: Date())
      return (lock, store)
    } catch {
      store.close()
      throw WorkspaceError(.stateDirectory, "stateStore: \(error)")
    }
  }
}
