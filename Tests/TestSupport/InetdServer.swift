import Basics
import Foundation
import GitKit
import Synchronization

/// A listener on 127.0.0.1 port 0 that hands each connection to a new child run inetd-style
/// (the socket as its stdin and stdout): `git daemon --inetd`, `sshd -i`. The port is bound
/// here, once, and kept until `stop()`, so no other process can take it between choosing and
/// binding, as it could with a port picked, released and passed to a daemon.
public final class InetdServer: Sendable {
  public let port: Int
  private let listener: Int32
  private let command: [String]
  private let log: Subprocess.Sink
  private struct State {
    var children: [Processes.Child] = []
    var stopped = false
  }
  private let state = Mutex(State())
  /// True while the accept loop runs.
  private let accepting = Atomic<Bool>(true)

  public init(_ command: [String], log: Subprocess.Sink = .null) throws {
    self.command = command
    self.log = log
    (listener, port) = try Processes.loopbackSocket(listening: 64)
    let t = Thread { [self] in
      acceptLoop()
      accepting.store(false, ordering: .releasing)
    }
    t.stackSize = 1 << 20
    t.start()
  }

  private func acceptLoop() {
    while true {
      let conn = accept(listener, nil, nil)
      if conn >= 0 { _ = fcntl(conn, F_SETFD, FD_CLOEXEC) }
      if conn < 0 {
        if errno == EINTR || errno == ECONNABORTED { continue }
        return  // shut down
      }
      let child = try? Processes.start(command, stdin: conn, stdout: .descriptor(conn), stderr: log)
      close(conn)
      let keep = state.withLock { s -> Bool in
        s.children.removeAll { !$0.isRunning }
        if let child, !s.stopped {
          s.children.append(child)
          return true
        }
        return false
      }
      if !keep { child?.stop(grace: 1) }
    }
  }

  /// Closes the port (connections are refused from now on) and stops every child.
  public func stop() {
    let children = state.withLock { s -> [Processes.Child]? in
      if s.stopped { return nil }
      s.stopped = true
      return s.children
    }
    guard let children else { return }
    shutdown(listener, Int32(SHUT_RDWR))
    // The accept loop returns once the shutdown wakes it; only then is the descriptor closed,
    // so that it cannot be reused under the loop.
    let deadline = Date().addingTimeInterval(10)
    while accepting.load(ordering: .acquiring) && Date() < deadline { usleep(5_000) }
    close(listener)
    for c in children { c.stop(grace: 1) }
  }

  deinit { stop() }
}
