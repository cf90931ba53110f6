import Foundation
import YAMLKit

#if canImport(Glibc)
  import Glibc
#endif

/// Bounded reading of a file that must be a regular one (a plan file, a file a manifest
/// refers to): it is opened non-blocking (a FIFO cannot make the open wait), its type and size
/// are checked with `fstat` on that descriptor before a byte is read, and at most
/// `maxBytes + 1` bytes are ever read, so a file that grows meanwhile is noticed, and a huge or
/// sparse one is refused without being read.
public enum RegularFile {
  public enum Failure: Error, Sendable, Equatable {
    /// The file does not exist.
    case missing
    /// It cannot be opened, stat'ed or read (strerror's text).
    case unreadable(String)
    /// Not a regular file: "a FIFO", "a directory", "a device", …
    case notRegular(String)
    /// Larger than the bound: its size in bytes (for one that grew, what was read).
    case tooLarge(Int)
  }

  public static func read(_ path: String, maxBytes: Int) throws(Failure) -> [UInt8] {
    var fd: Int32
    repeat { fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) } while fd < 0 && errno == EINTR
    guard fd >= 0 else {
      let e = errno
      throw e == ENOENT ? .missing : .unreadable(String(cString: strerror(e)))
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw .unreadable(String(cString: strerror(errno))) }
    let type = st.st_mode & S_IFMT
    guard type == S_IFREG else { throw .notRegular(YAMLLoader.describeFileType(Int(type))) }
    guard st.st_size <= maxBytes else { throw .tooLarge(Int(st.st_size)) }
    guard let bytes = readAll(fd, expected: Int(st.st_size)) else { throw .unreadable(String(cString: strerror(errno))) }
    guard bytes.count <= maxBytes else { throw .tooLarge(bytes.count) }
    return bytes
  }

  /// Reads an open file to its end: the `expected` size plus one byte, to notice one that grew.
  static func readAll(_ fd: Int32, expected: Int) -> [UInt8]? {
    var buf = [UInt8](repeating: 0, count: expected + 1)
    var total = 0
    while total < buf.count {
      let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, $0.count - total) }
      if n < 0 {
        if errno == EINTR { continue }
        return nil
      }
      if n == 0 { break }
      total += n
    }
    return Array(buf[0..<total])
  }
}
