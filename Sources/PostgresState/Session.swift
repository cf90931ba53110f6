import ConfigStoreDriver
import Foundation
import Logging
import PostgresNIO
import Reconciler
import Synchronization

/// Where the shared state store is, and how to reach it (`stateStore:` in ytempire.yaml, or a
/// `state migrate` argument).
public struct PostgresStateSettings: Sendable {
  public enum TLSMode: String, Sendable {
    case disable, require
    case verifyFull = "verify-full"
  }
  public var host: String
  public var port: Int
  public var user: String
  public var password: String?
  public var database: String
  public var tls: TLSMode
  /// CA bundle that verifies the server (require, verify-full); the system's roots when nil.
  public var caFile: String?
  /// The longest any statement (or the connection) may take before the session is dropped.
  public var timeout: Duration

  public init(
    host: String, port: Int = 5432, user: String, password: String? = nil, database: String, tls: TLSMode = .disable,
    caFile: String? = nil, timeout: Duration = .seconds(30)
  ) {
    self.host = host
    self.port = port
    self.user = user
    self.password = password
    self.database = database
    self.tls = tls
    self.caFile = caFile
    self.timeout = timeout
  }

  /// From a `postgres://user[:password]@host[:port]/database[?sslmode=…]` URL; `password` and
  /// `tls` (when given) win over the URL's.
  public static func parse(_ url: String, password: String? = nil, tls: TLSMode? = nil, caFile: String? = nil) throws -> Self {
    let location: ConfigStoreLocation
    do { location = try ConfigStoreLocation.parse(url, what: "state store URL") } catch { throw StateStoreError(error.message) }
    guard case .postgres(let p) = location else {
      throw StateStoreError("the state store URL must be postgres://user@host:5432/database (SQLite is the default: leave stateStore out)")
    }
    let mode = tls ?? TLSMode(rawValue: p.tls.rawValue) ?? .disable
    return Self(
      host: p.host, port: p.port, user: p.user, password: password ?? p.password, database: p.database, tls: mode, caFile: caFile)
  }

  /// The URL without its password, as messages show it.
  public var displayName: String {
    let h = host.contains(":") ? "[\(host)]" : host
    return "postgres://\(user)@\(h):\(port)/\(database)"
  }
}

extension Error {
  fileprivate var message: String { (self as? ConfigStoreError)?.message ?? "\(self)" }
}

/// One PostgreSQL session used synchronously: the `StateStore` protocol is synchronous (GRDB's
/// model), so each statement is sent on NIO's event loop and its future awaited on the
/// calling thread, within the configured timeout. The event loop is never the calling thread
/// (NIO's own threads), so waiting cannot starve it. Statements are serialised: a transaction
/// holds the session for its whole body.
final class Session: Sendable {
  let settings: PostgresStateSettings
  private let state = Mutex<State>(State())
  /// Sessions beside the lock's for statements that need neither the writer lock nor a
  /// transaction (reads, observations, quota charges, caches): the apply's concurrent tasks
  /// make those while the lock's session writes the journal, and PostgreSQL runs them on
  /// its other cores. Each lane is one connection, used by one caller at a time.
  private let lanes: [LaneBox]
  private let nextLane = Atomic<Int>(0)

  struct Lane: ~Copyable {
    var connection: PostgresConnection?
    let id: Int
  }

  final class LaneBox: Sendable {
    let lane: Mutex<Lane>
    init(id: Int) { lane = Mutex(Lane(connection: nil, id: id)) }
  }
  let logger: Logger = {
    var l = Logger(label: "ytempire.stateStore")
    l.logLevel = .critical
    return l
  }()
  /// The schema the store's tables live in (beside a config store in the same database).
  static let schema = "ytempire_state"

  struct State: ~Copyable {
    var connection: PostgresConnection?
    var nextID = 0
    var ready = false
    /// The writer lock's epoch while this session holds it.
    var epoch: Int64?
    /// The session that held the lock ended: nothing is written through this store again.
    var lockLost = false
    /// The audit chain's head as this session last appended it, at the epoch it held then:
    /// while it holds the lock nobody else appends, so the head need not be read again.
    var auditHead: (epoch: Int64, head: AuditHead)?
  }

  init(_ settings: PostgresStateSettings, lanes: Int = 3) {
    self.settings = settings
    self.lanes = (0..<max(0, lanes)).map { LaneBox(id: 1_000 + $0) }
  }

  deinit {
    state.withLock { s in
      if let c = s.connection, !c.isClosed { c.close().whenComplete { _ in withExtendedLifetime(c) {} } }
    }
    for box in lanes {
      box.lane.withLock { l in
        if let c = l.connection, !c.isClosed { c.close().whenComplete { _ in withExtendedLifetime(c) {} } }
      }
    }
  }

  /// What one statement sends and reads, inside `run`.
  struct Conn {
    let connection: PostgresConnection
    let logger: Logger
    let timeout: TimeAmount
    let name: String

    @discardableResult
    func query(_ q: PostgresQuery) throws -> [PostgresRow] {
      try Session.wait(connection.query(q, logger: logger), within: timeout, name: name).rows
    }

    func exec(_ sql: String) throws { try query(PostgresQuery(unsafeSQL: sql)) }
  }

  /// Waits for `future` on the calling thread, at most `within`.
  static func wait<T: Sendable>(_ future: EventLoopFuture<T>, within: TimeAmount, name: String) throws -> T {
    let promise = future.eventLoop.makePromise(of: T.self)
    future.cascade(to: promise)
    let timer = future.eventLoop.scheduleTask(in: within) {
      promise.fail(StateStoreError("\(name) did not answer within \(within.nanoseconds / 1_000_000_000) s"))
    }
    defer { timer.cancel() }
    return try promise.futureResult.wait()
  }

  var timeout: TimeAmount { .nanoseconds(Int64(settings.timeout.components.seconds) * 1_000_000_000) }

  /// Runs `body` on the session (opened, and the schema migrated, when needed). `fenced`: only
  /// while this session holds the writer lock (checked in the database, by epoch).
  @discardableResult
  func run<T: Sendable>(fenced: Bool = false, _ body: (Conn) throws -> T) throws -> T {
    try locked(fenced: fenced) { c, _ in try body(c) }
  }

  /// One statement that needs neither the writer lock nor a transaction, on a free lane
  /// (else the next one, in turn; the lock's session when there are none). Its effect is
  /// committed when it returns, so whatever runs next, on any session, sees it.
  @discardableResult
  func pooled<T: Sendable>(_ body: (Conn) throws -> T) throws -> T {
    guard !lanes.isEmpty else { return try run(body) }
    // The lock's session migrates the schema; a lane only starts once it has.
    if !state.withLock({ $0.ready }) { try run { _ in () } }
    for box in lanes {
      if let v = try box.lane.withLockIfAvailable({ l in try use(&l, body) }) { return v }
    }
    let i = nextLane.add(1, ordering: .relaxed).newValue % lanes.count
    return try lanes[i].lane.withLock { l in try use(&l, body) }
  }

  private func use<T: Sendable>(_ l: inout Lane, _ body: (Conn) throws -> T) throws -> T {
    let conn: Conn
    do {
      if let c = l.connection, !c.isClosed {
        conn = Conn(connection: c, logger: logger, timeout: timeout, name: settings.displayName)
      } else {
        l.connection = nil
        let (c, opened) = try connect(id: l.id)
        l.connection = c
        conn = opened
        try conn.exec("SET search_path TO \(Self.schema)")
      }
    } catch {
      dropLane(&l)
      throw failure(error)
    }
    do {
      return try body(conn)
    } catch {
      if l.connection?.isClosed != false { dropLane(&l) }
      throw failure(error)
    }
  }

  /// An error as the store says it: its own errors as they are, PostgreSQL's named after the store.
  private func failure(_ error: any Error) -> StateStoreError {
    error as? StateStoreError ?? StateStoreError("\(settings.displayName): \(PostgresErrorText.describe(error))")
  }

  private func dropLane(_ l: inout Lane) {
    if let c = l.connection, !c.isClosed { c.close().whenComplete { _ in withExtendedLifetime(c) {} } }
    l.connection = nil
  }

  /// The audit chain was written other than by `appendingAudit` (a restore): read its head again.
  func forgetAuditHead() { state.withLock { $0.auditHead = nil } }

  /// `run` for a fenced statement that appends to the audit chain: `body` gets the chain's
  /// head as this session last wrote it at its epoch (nil: read it from the table) and
  /// returns the new head, remembered once `body` returned (its statement committed).
  func appendingAudit<T: Sendable>(epoch: Int64, _ body: (Conn, AuditHead?) throws -> (T, AuditHead)) throws -> T {
    try locked(fenced: true) { c, s in
      let known = s.auditHead.flatMap { $0.epoch == epoch ? $0.head : nil }
      s.auditHead = nil
      let (v, head) = try body(c, known)
      s.auditHead = (epoch, head)
      return v
    }
  }

  private func locked<T: Sendable>(fenced: Bool, _ body: (Conn, inout State) throws -> T) throws -> T {
    try state.withLock { (s: inout State) throws -> T in
      if fenced && s.lockLost { throw sessionEnded }
      let conn: Conn
      do { conn = try open(&s) } catch { throw failure(error) }
      do {
        return try body(conn, &s)
      } catch {
        drop(&s, ifClosed: true)
        throw failure(error)
      }
    }
  }

  /// `run` inside BEGIN … COMMIT (ROLLBACK on a throw). `fenced` checks the lock's epoch
  /// first, holding its row so a takeover waits for this transaction.
  @discardableResult
  func transaction<T: Sendable>(fenced: Bool = false, _ body: (Conn) throws -> T) throws -> T {
    let epoch = fenced ? try heldEpoch() : nil
    return try run(fenced: fenced) { c in
      try c.exec("BEGIN")
      do {
        if fenced, let epoch {
          let rows = try c.query(
            "SELECT 1 FROM writer_lock WHERE id = 1 AND epoch = \(epoch) AND backend_pid = pg_backend_pid() FOR SHARE")
          guard !rows.isEmpty else { throw lostLock(epoch) }
        }
        let v = try body(c)
        try c.exec("COMMIT")
        return v
      } catch {
        try? c.exec("ROLLBACK")
        throw error
      }
    }
  }

  /// The epoch this session writes the journal under, or why it may not.
  func heldEpoch() throws -> Int64 {
    let (epoch, lost) = state.withLock { ($0.epoch, $0.lockLost) }
    if lost { throw sessionEnded }
    guard let epoch else {
      throw StateStoreError("writing the journal of \(settings.displayName) needs the writer lock; only apply and serve take it")
    }
    return epoch
  }

  /// SQL that holds only while this session holds the writer lock at `epoch`.
  static func fence(_ epoch: Int64) -> String {
    "EXISTS (SELECT 1 FROM writer_lock WHERE id = 1 AND epoch = \(epoch) AND backend_pid = pg_backend_pid())"
  }

  /// A CTE body with one row only while the session that took the lock at `epoch` still
  /// holds it, for statements on another of this store's sessions (a lane): the row names
  /// the lock's session, and PostgreSQL's lock table says it holds the lock. The row is held
  /// (FOR SHARE) until the statement commits, so a takeover's new epoch waits for it.
  static func laneFence(_ epoch: Int64) -> String {
    """
    SELECT 1 AS ok FROM writer_lock w WHERE w.id = 1 AND w.epoch = \(epoch) AND EXISTS (
      SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.pid = w.backend_pid
        AND ((l.classid::bigint << 32) | l.objid::bigint) = \(lockKey)) FOR SHARE OF w
    """
  }

  /// One fenced statement on a lane (see `laneFence`): the journal's intents are written
  /// beside the lock's session, so their flushed commits do not queue behind each other.
  /// No rows: the fence stopped it.
  @discardableResult
  func fencedOnLane(_ body: (Conn, String) throws -> [PostgresRow]) throws -> [PostgresRow] {
    let epoch = try heldEpoch()
    let rows = try pooled { c in try body(c, Self.laneFence(epoch)) }
    if rows.isEmpty { throw lostLock(epoch) }
    // The lock's session may have ended while this statement ran: said at its next write.
    return rows
  }

  /// Who the `writer_lock` row names (it names the last holder, alive or not).
  static func holderRow(_ c: Conn) throws -> LockHolder? {
    try c.query("SELECT host, pid, since FROM writer_lock WHERE id = 1").first.map { r in
      let (h, p, since) = try r.decode((String, Int64, Double).self)
      return LockHolder(host: h, pid: Int(p), since: Date(timeIntervalSince1970: since))
    }
  }

  /// One fenced statement without a transaction around it: `body` gets the condition (SQL)
  /// that holds only while this session holds the writer lock at its epoch, puts it in its
  /// statement's WHERE, and returns the rows; none means the fence stopped it. (While the
  /// session lives it holds the advisory lock, so no takeover can bump the epoch under it.)
  @discardableResult
  func fenced(_ body: (Conn, String) throws -> [PostgresRow]) throws -> [PostgresRow] {
    let epoch = try heldEpoch()
    let rows = try run(fenced: true) { c in try body(c, Self.fence(epoch)) }
    if rows.isEmpty { throw lostLock(epoch) }
    return rows
  }

  /// The session that held the writer lock ended (and took the lock with it).
  var sessionEnded: StateStoreError {
    StateStoreError("this ytempire lost the writer lock of \(settings.displayName) (its session ended); it writes nothing more")
  }

  func lostLock(_ epoch: Int64) -> StateStoreError {
    StateStoreError("this ytempire no longer holds the writer lock of \(settings.displayName) (epoch \(epoch)); it writes nothing more")
  }

  private func open(_ s: inout State) throws -> Conn {
    if let c = s.connection, !c.isClosed, s.ready {
      return Conn(connection: c, logger: logger, timeout: timeout, name: settings.displayName)
    }
    if s.connection != nil { drop(&s, ifClosed: false) }
    if s.epoch != nil {
      // The lock belonged to the session that ended: a new session holds nothing, and this
      // store writes no journal again (it may still read).
      s.epoch = nil
      s.lockLost = true
    }
    s.nextID += 1
    let (c, conn) = try connect(id: s.nextID)
    s.connection = c
    try PostgresMigrations.migrate(conn, schema: Self.schema)
    s.ready = true
    return conn
  }

  /// A new connection, set up as every session of the store is.
  private func connect(id: Int) throws -> (PostgresConnection, Conn) {
    let config = try configuration()
    let el = MultiThreadedEventLoopGroup.singleton.any()
    let c = try Self.wait(
      PostgresConnection.connect(on: el, configuration: config, id: id, logger: logger), within: timeout + .seconds(1),
      name: settings.displayName)
    let conn = Conn(connection: c, logger: logger, timeout: timeout, name: settings.displayName)
    do {
      try setUp(conn)
    } catch {
      c.close().whenComplete { _ in withExtendedLifetime(c) {} }
      throw error
    }
    return (c, conn)
  }

  private func setUp(_ conn: Conn) throws {
    try conn.exec("SET application_name = 'ytempire'")
    // The server notices a vanished client (a partition, a dead host) within about
    // idle + interval × count, and ends its session: the writer lock is then free.
    let k = keepalive
    try conn.exec("SET tcp_keepalives_idle = \(k.idle)")
    try conn.exec("SET tcp_keepalives_interval = \(k.interval)")
    try conn.exec("SET tcp_keepalives_count = 3")
    // The durability of the SQLite store (WAL, synchronous=NORMAL): a commit is visible to
    // every session at once and survives ytempire's crash; a crash of the database server may
    // lose the last few hundred milliseconds. The intent journal's entries, written before
    // an external call, are flushed with their commit (`beginAction`).
    try conn.exec("SET synchronous_commit = off")
  }

  /// TCP keepalive of the session, in seconds: a fifth and a tenth of the statement timeout.
  var keepalive: (idle: Int64, interval: Int64) {
    let t = max(Int64(settings.timeout.components.seconds), 3)
    return (max(t / 5, 1), max(t / 10, 1))
  }

  func configuration() throws -> PostgresConnection.Configuration {
    let tls: PostgresConnection.Configuration.TLS
    switch settings.tls {
    case .disable: tls = .disable
    case .require, .verifyFull:
      var t = TLSConfiguration.makeClientConfiguration()
      if settings.tls == .require { t.certificateVerification = .none }
      if let ca = settings.caFile { t.trustRoots = .file(ca) }
      tls = .require(try NIOSSLContext(configuration: t))
    }
    var config = PostgresConnection.Configuration(
      host: settings.host, port: settings.port, username: settings.user, password: settings.password, database: settings.database,
      tls: tls)
    config.options.connectTimeout = timeout
    return config
  }

  private func drop(_ s: inout State, ifClosed: Bool) {
    guard let c = s.connection else { return }
    if ifClosed && !c.isClosed { return }
    if !c.isClosed { c.close().whenComplete { _ in withExtendedLifetime(c) {} } }
    s.connection = nil
    s.ready = false
    s.auditHead = nil
    if s.epoch != nil {
      s.epoch = nil
      s.lockLost = true
    }
  }

  // MARK: writer lock

  /// The advisory lock every writer of one state store takes ("ytempire" in ASCII).
  static let lockKey: Int64 = 0x7974_656d_7069_7265

  /// Takes the writer lock on this session (its new epoch), or says who holds it.
  func tryLock(host: String, pid: Int, now: Date) throws -> LockAttempt {
    try run { c in
      let got = try c.query("SELECT pg_try_advisory_lock(\(Self.lockKey))").first?.decode(Bool.self) ?? false
      guard got else {
        let holder = try Self.holderRow(c)
        return .heldBy(holder)
      }
      let epoch = try c.query(
        """
        UPDATE writer_lock SET epoch = epoch + 1, host = \(host), pid = \(Int64(pid)), since = \(now.timeIntervalSince1970),
          backend_pid = pg_backend_pid() WHERE id = 1 RETURNING epoch
        """
      ).first?.decode(Int64.self)
      guard let epoch else { throw StateStoreError("\(settings.displayName): the writer_lock row is missing") }
      return .acquired(epoch: epoch)
    }
  }

  /// A new epoch: the lock is held again (a deposed writer's lost flag is cleared only here).
  func held(epoch: Int64) {
    state.withLock {
      $0.epoch = epoch
      $0.lockLost = false
      $0.auditHead = nil
    }
  }

  var epoch: Int64? { state.withLock { $0.epoch } }
  var lockLost: Bool { state.withLock { $0.lockLost } }

  func releaseLock() {
    _ = try? run { c in try c.exec("SELECT pg_advisory_unlock_all()") }
    state.withLock {
      $0.epoch = nil
      $0.auditHead = nil
    }
  }

  func close() {
    for box in lanes {
      box.lane.withLock { l in
        if let c = l.connection, !c.isClosed { _ = try? Self.wait(c.close(), within: .seconds(5), name: settings.displayName) }
        l.connection = nil
      }
    }
    state.withLock { s in
      if let c = s.connection, !c.isClosed { _ = try? Self.wait(c.close(), within: .seconds(5), name: settings.displayName) }
      s.connection = nil
      s.ready = false
      s.epoch = nil
      s.auditHead = nil
    }
  }
}
