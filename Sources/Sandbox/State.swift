import Foundation
import Synchronization

// The world in pieces: every emulator's state sits behind its own lock, so that a request to one
// emulator never waits for another, and the admin dump and the state file read short snapshots
// instead of holding any lock while they convert (docs/sandbox.md, "State and seeding").
//
// Lock order: an emulator's shard, then `common` (the id counter). Nothing takes a shard while
// holding `common`, and no code holds two emulator shards except `WorldAccess` (tests), which
// takes them in the order youtube, n8n, cloudflare, vault, common.

/// What the emulators share: the credentials and the counter behind deterministic identifiers.
/// Both are top-level keys of the world's JSON (`credentials`, `serial`).
struct CommonState: Codable, Sendable, Equatable {
  var credentials = SandboxCredentials()
  var serial = 0
}

/// One piece of the world behind its own lock, with a change counter the state file writer reads.
final class Shard<State: Sendable & Equatable>: Sendable {
  private struct Versioned {
    var state: State
    var version: UInt64
  }

  private let box: Mutex<Versioned>
  private let onChange: @Sendable () -> Void

  init(_ state: State, onChange: @escaping @Sendable () -> Void = {}) {
    box = Mutex(Versioned(state: state, version: 0))
    self.onChange = onChange
  }

  /// Reads under the lock. Keep `body` short: every request to this emulator waits for it.
  func read<T>(_ body: (State) -> T) -> T {
    box.withLock { body($0.state) }
  }

  /// Changes the state in place (counted as a change for the state file, even when `body` left it as it was).
  func write<T, E: Error>(_ body: (inout State) throws(E) -> T) throws(E) -> T {
    defer { onChange() }
    return try box.withLock { (b: inout Versioned) throws(E) -> T in
      b.version &+= 1
      return try body(&b.state)
    }
  }

  /// Runs `body`, counting a change only when the state differs afterwards: for requests that
  /// normally only read. While `body` changes nothing the comparison is cheap (collections left
  /// alone still share their storage, which `==` checks first); a change copies what it touches.
  func update<T>(_ body: (inout State) -> T) -> T { locked(body) }

  /// The state and its change counter. Copy-on-write: O(1) under the lock; the first change
  /// after it copies the collection it touches once.
  func snapshot() -> (state: State, version: UInt64) {
    box.withLock { ($0.state, $0.version) }
  }

  /// Holds the lock for `body` (WorldAccess only); counts a change when the state differs.
  func locked<T>(_ body: (inout State) throws -> T) rethrows -> T {
    var changed = false
    let result = try box.withLock { (b: inout Versioned) throws -> T in
      let before = b.state
      let r = try body(&b.state)
      if b.state != before {
        b.version &+= 1
        changed = true
      }
      return r
    }
    if changed { onChange() }
    return result
  }
}

/// Change counters of all shards; equal counters mean nothing changed in between.
struct WorldVersions: Equatable, Sendable {
  var common: UInt64 = 0, youtube: UInt64 = 0, n8n: UInt64 = 0, cloudflare: UInt64 = 0, vault: UInt64 = 0
}

/// The world as shards. `snapshot()` assembles a `World` (what the state file and the admin dump
/// show) from short per-shard snapshots; nothing here copies or converts under a lock.
final class WorldState: Sendable {
  let common: Shard<CommonState>
  let youtube: Shard<YouTubeState>
  let n8n: Shard<N8nState>
  let cloudflare: Shard<CloudflareState>
  let vault: Shard<VaultState>
  let writer: StateWriter?

  init(_ w: World, store: StateStore?, saveInterval: Duration) {
    let writer = store.map { StateWriter(store: $0, interval: saveInterval) }
    let changed: @Sendable () -> Void = { writer?.changed() }
    common = Shard(CommonState(credentials: w.credentials, serial: w.serial), onChange: changed)
    youtube = Shard(w.youtube, onChange: changed)
    n8n = Shard(w.n8n, onChange: changed)
    cloudflare = Shard(w.cloudflare, onChange: changed)
    vault = Shard(w.vault, onChange: changed)
    self.writer = writer
    writer?.attach { [weak self] in self?.snapshot() }
  }

  /// The whole world from one short snapshot per shard. The emulators' shards are read before
  /// `common`, so the saved id counter is never behind an id the saved emulators hold.
  func snapshot() -> (world: World, versions: WorldVersions) {
    let y = youtube.snapshot()
    let n = n8n.snapshot()
    let cf = cloudflare.snapshot()
    let v = vault.snapshot()
    let c = common.snapshot()
    let world = World(
      credentials: c.state.credentials, youtube: y.state, n8n: n.state, cloudflare: cf.state, vault: v.state,
      serial: c.state.serial)
    return (world, WorldVersions(common: c.version, youtube: y.version, n8n: n.version, cloudflare: cf.version, vault: v.version))
  }

  /// Writes what is not saved yet and stops the writer (server shutdown).
  func close() async {
    await writer?.close()
  }
}

/// Writes the world to the state file off the request path: a change schedules one save
/// `interval` later on the writer's own queue, so a burst of requests costs one save; the save
/// reads a snapshot (short per-shard locks) and converts and writes with no lock held.
final class StateWriter: Sendable {
  let store: StateStore
  let interval: Duration
  private let queue = DispatchQueue(label: "ytempire.sandbox.state-writer")
  private let scheduled = Atomic<Bool>(false)
  private let state = Mutex<
    (
      source: (@Sendable () -> (world: World, versions: WorldVersions)?)?, saved: WorldVersions, closed: Bool,
      pending: DispatchWorkItem?
    )
  >((nil, WorldVersions(), false, nil))

  init(store: StateStore, interval: Duration) {
    self.store = store
    self.interval = interval
  }

  /// Where the writer reads the world (set once by WorldState, which the writer must not keep alive).
  func attach(_ source: @escaping @Sendable () -> (world: World, versions: WorldVersions)?) {
    state.withLock { $0.source = source }
  }

  /// A shard changed: schedule a save unless one is pending. Lock-free: one atomic exchange.
  func changed() {
    guard scheduled.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
    let (s, atto) = interval.components
    let nanos = max(0, Int(s) * 1_000_000_000 + Int(atto / 1_000_000_000))
    let item = DispatchWorkItem { self.flush() }
    let closed = state.withLock { st in
      if !st.closed { st.pending = item }
      return st.closed
    }
    if !closed { queue.asyncAfter(deadline: .now() + .nanoseconds(nanos), execute: item) }
  }

  /// On the queue: saves the world when it changed since the last save.
  private func flush() {
    // From here on a change schedules another save, so nothing after this snapshot is lost.
    scheduled.store(false, ordering: .sequentiallyConsistent)
    guard let source = state.withLock({ $0.source }), let (world, versions) = source() else { return }
    guard versions != state.withLock({ $0.saved }) else { return }
    do {
      try store.save(world)
      state.withLock { $0.saved = versions }
    } catch {
      FileHandle.standardError.write(Data("sandbox: cannot save state: \(error)\n".utf8))
    }
  }

  /// The final save (shutdown): the pending one is cancelled and this one writes what it would have.
  func close() async {
    state.withLock { st in
      st.closed = true
      st.pending?.cancel()
      st.pending = nil
    }
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      queue.async {
        self.flush()
        c.resume()
      }
    }
  }
}

/// What an emulator reaches besides its own shard: the credentials (read once per request) and
/// the shared id counter.
struct EmulatorEnv: Sendable {
  let credentials: SandboxCredentials
  let common: Shard<CommonState>

  func nextSerial() -> Int {
    common.write { c in
      c.serial += 1
      return c.serial
    }
  }
}

/// The whole world under all locks at once, as one `World` value: for tests that read or change
/// an emulator's state directly (`core.world.withLock { $0.cloudflare … }`). Never on a request path.
struct WorldAccess {
  let state: WorldState

  func withLock<T>(_ body: (inout World) throws -> T) rethrows -> T {
    try state.youtube.locked { y in
      try state.n8n.locked { n in
        try state.cloudflare.locked { cf in
          try state.vault.locked { v in
            try state.common.locked { c in
              // Moved out and back so that `body` changes them in place.
              var w = World(credentials: c.credentials, youtube: y, n8n: n, cloudflare: cf, vault: v, serial: c.serial)
              y = YouTubeState()
              n = N8nState()
              cf = CloudflareState()
              v = VaultState()
              defer {
                c = CommonState(credentials: w.credentials, serial: w.serial)
                y = w.youtube
                n = w.n8n
                cf = w.cloudflare
                v = w.vault
              }
              return try body(&w)
            }
          }
        }
      }
    }
  }
}

// MARK: admin access to single nodes

/// A field of a state struct as the admin API addresses it (`/_sandbox/state/<emulator>/<field>/…`).
struct StateField<Root> {
  let get: (Root) throws -> JSON
  let set: (inout Root, JSON) throws -> Void
  /// For `[String: JSON]` fields: one entry is read or edited in place, without converting the rest.
  let entries: WritableKeyPath<Root, [String: JSON]>?

  init<V: Codable>(_ kp: WritableKeyPath<Root, V>) {
    get = { try JSONBridge.toJSON($0[keyPath: kp]) }
    set = { root, value in root[keyPath: kp] = try JSONBridge.fromJSON(value, as: V.self) }
    entries = nil
  }

  init(entries kp: WritableKeyPath<Root, [String: JSON]>) {
    get = { .object($0[keyPath: kp]) }
    set = { root, value in
      // Anything but an object fails as decoding it would, with the decoder's message.
      guard case .object(let o) = value else {
        root[keyPath: kp] = try JSONBridge.fromJSON(value, as: [String: JSON].self)
        return
      }
      root[keyPath: kp] = o
    }
    entries = kp
  }
}

struct StateShapeError: Error, CustomStringConvertible { var description: String }

/// A shard's state as the admin API edits it: whole (converted through its Codable form, as
/// before the split) or one field at a time.
protocol AdminState: Codable, Sendable, Equatable {
  static var adminFields: [String: StateField<Self>] { get }
}

extension CommonState: AdminState {
  static var adminFields: [String: StateField<CommonState>] {
    ["credentials": .init(\.credentials), "serial": .init(\.serial)]
  }
}

extension YouTubeState: AdminState {
  static var adminFields: [String: StateField<YouTubeState>] {
    [
      "channels": .init(entries: \.channels), "playlists": .init(entries: \.playlists), "playlistOrder": .init(\.playlistOrder),
      "refreshTokens": .init(\.refreshTokens), "accessTokens": .init(\.accessTokens), "quota": .init(\.quota),
      "quotaUsed": .init(\.quotaUsed), "quotaDay": .init(\.quotaDay),
    ]
  }
}

extension N8nState: AdminState {
  static var adminFields: [String: StateField<N8nState>] {
    ["workflows": .init(entries: \.workflows), "order": .init(\.order), "tags": .init(entries: \.tags), "tagOrder": .init(\.tagOrder)]
  }
}

extension CloudflareState: AdminState {
  static var adminFields: [String: StateField<CloudflareState>] {
    [
      "zones": .init(entries: \.zones), "zoneOrder": .init(\.zoneOrder), "rulesets": .init(\.rulesets), "limits": .init(\.limits),
      "recent": .init(\.recent), "blockedUntil": .init(\.blockedUntil), "accountId": .init(\.accountId),
      "scripts": .init(entries: \.scripts), "scriptContent": .init(\.scriptContent), "routes": .init(\.routes),
      "settings": .init(\.settings), "buckets": .init(entries: \.buckets),
    ]
  }
}

extension VaultState: AdminState {
  static var adminFields: [String: StateField<VaultState>] {
    ["policies": .init(\.policies), "kv": .init(\.kv), "sealed": .init(\.sealed), "auditDevices": .init(\.auditDevices)]
  }
}

enum AdminNodes {
  /// The node at `path` below `node`; nil when there is none.
  static func walk(_ node: JSON, _ path: ArraySlice<String>) -> JSON? {
    var node = node
    for p in path {
      if let o = node.object, let v = o[p] {
        node = v
      } else if let a = node.array, let i = Int(p), a.indices.contains(i) {
        node = a[i]
      } else {
        return nil
      }
    }
    return node
  }

  /// The node at `rel` (relative to the shard) of a snapshot; nil when there is none.
  static func get<S: AdminState>(_ s: S, _ rel: ArraySlice<String>) throws -> JSON? {
    guard let name = rel.first, let field = S.adminFields[name] else { return walk(try JSONBridge.toJSON(s), rel) }
    if let kp = field.entries, rel.count >= 2 {
      guard let entry = s[keyPath: kp][rel[rel.startIndex + 1]] else { return nil }
      return walk(entry, rel.dropFirst(2))
    }
    let node = try field.get(s)
    // An optional field that is nil is not in the shard's JSON at all: no node there.
    if node == .null { return walk(try JSONBridge.toJSON(s), rel) }
    return walk(node, rel.dropFirst())
  }

  /// PUT, PATCH or DELETE of the node at `rel`. False when there is no such node (404); throws
  /// when the result does not fit the state's shape (400). `s` is left as it was on failure.
  static func edit<S: AdminState>(_ s: inout S, _ rel: ArraySlice<String>, method: String, value: JSON?) throws -> Bool {
    if let name = rel.first, let field = S.adminFields[name] {
      if rel.count >= 2 {
        if let kp = field.entries {
          // One entry of a map of resources: in place, the rest of the map untouched.
          let key = rel[rel.startIndex + 1]
          let rest = rel.dropFirst(2)
          if rest.isEmpty && method == "DELETE" {
            guard s[keyPath: kp][key] != nil else { return false }
            s[keyPath: kp][key] = nil
            return true
          }
          guard let child = s[keyPath: kp][key] ?? (rest.isEmpty ? JSON.null : nil),
            let updated = SandboxCore.edit(child, rest, method: method, value: value)
          else { return false }
          s[keyPath: kp][key] = updated
          return true
        }
        guard let updated = SandboxCore.edit(try field.get(s), rel.dropFirst(), method: method, value: value) else { return false }
        try field.set(&s, updated)
        return true
      }
      if method != "DELETE", let updated = SandboxCore.edit(try field.get(s), rel.dropFirst(), method: method, value: value),
        updated != .null
      {
        try field.set(&s, updated)
        return true
      }
      // Removing a field or setting it to null: what that means is the state's decoder's
      // business (a default, nil, or an error), so go through the whole shard as before.
    }
    if rel.isEmpty && method == "DELETE" { throw StateShapeError(description: "an emulator's state cannot be removed, only replaced") }
    guard let updated = SandboxCore.edit(try JSONBridge.toJSON(s), rel, method: method, value: value) else { return false }
    s = try JSONBridge.fromJSON(updated, as: S.self)
    return true
  }
}
