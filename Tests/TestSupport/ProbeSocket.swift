import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A TCP socket connected to 127.0.0.1:`port` (blocking).
public func connectLoopback(port: Int) throws -> Int32 {
  #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
  #endif
  guard fd >= 0 else { throw Processes.Failure(description: "socket failed: \(errno)") }
  var addr = sockaddr_in()
  addr.sin_family = sa_family_t(AF_INET)
  addr.sin_port = in_port_t(UInt16(port).bigEndian)
  addr.sin_addr.s_addr = inet_addr("127.0.0.1")
  let rc = withUnsafePointer(to: &addr) { p in
    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
  }
  guard rc == 0 else {
    let e = errno
    closeFD(fd)
    throw Processes.Failure(description: "connect to \(port) failed: \(e)")
  }
  return fd
}

public func closeFD(_ fd: Int32) {
  #if canImport(Glibc)
    _ = Glibc.close(fd)
  #else
    _ = Darwin.close(fd)
  #endif
}

/// A client socket on 127.0.0.1 that the tests drive by hand: connect, send some bytes (or
/// none), and see whether the server has closed it.
public final class ProbeSocket {
  public private(set) var fd: Int32
  public private(set) var closedByServer = false
  public private(set) var received: [UInt8] = []

  public init(port: Int) throws {
    fd = try connectLoopback(port: port)
  }

  deinit { if fd >= 0 { closeFD(fd) } }

  /// Closes from this side.
  public func close() {
    if fd >= 0 { closeFD(fd) }
    fd = -1
    closedByServer = false
  }

  /// Sends bytes; false when the connection is gone (no SIGPIPE).
  @discardableResult
  public func send(_ bytes: [UInt8]) -> Bool {
    var sent = 0
    while sent < bytes.count {
      #if canImport(Glibc)
        let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
      #else
        let n = bytes[sent...].withUnsafeBytes { Darwin.send(fd, $0.baseAddress, $0.count, 0) }
      #endif
      if n <= 0 { return false }
      sent += n
    }
    return true
  }

  @discardableResult
  public func send(_ text: String) -> Bool { send(Array(text.utf8)) }

  /// Reads what has arrived without blocking; notes EOF or a reset as closed by the server.
  public func drain() {
    var buf = [UInt8](repeating: 0, count: 16384)
    while !closedByServer {
      var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
      guard poll(&p, 1, 0) > 0 else { return }
      let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n > 0 { received += buf[0..<n] } else { closedByServer = true }  // 0: EOF, < 0: reset
    }
  }
}

extension ProbeSocket {
  /// What has arrived so far, as text.
  public var text: String { String(decoding: received, as: UTF8.self) }
}
