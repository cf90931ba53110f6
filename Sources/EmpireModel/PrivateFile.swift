import Foundation
import YAMLKit

#if canImport(Glibc)
  import Glibc
#endif

/// The files ytempire keeps in its state directory (state.sqlite and its -wal/-shm, the lock,
/// runtime.sqlite, git mirrors' lock files) are opened and given their mode without ever
/// following a symbolic link: one planted in their place (`state.sqlite` → `/dev/null`) is
/// refused with a message naming the file, before anything is opened through it or chmod'ed.
public enum PrivateFile {
  public struct Refused: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
  }

  /// Why `path` may not be used as `what`: it is a symbolic link or not a regular file. nil
  /// when it is a regular file or does not exist.
  public static func problem(_ path: String, what: String) -> Refused? {
    var st = stat()
    guard lstat(path, &st) == 0 else { return nil }
    let type = st.st_mode & S_IFMT
    if type == S_IFLNK {
      let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
      return Refused(
        message: "\(what) \(path) is a symbolic link (to \(target)); ytempire does not follow links for its own files: remove the link")
    }
    guard type == S_IFREG else {
      return Refused(message: "\(what) \(path) is \(YAMLLoader.describeFileType(Int(type))), not a regular file: remove it")
    }
    return nil
  }

  /// Refuses each path that exists and is a link or not a regular file (the files SQLite opens itself).
  public static func check(_ paths: [String], what: String) throws(Refused) {
    for p in paths { if let r = problem(p, what: what) { throw r } }
  }

  /// Opens the regular file `path` read-write, creating it with `mode` when missing, never
  /// through a symbolic link (`O_NOFOLLOW`; the type is checked on the descriptor). The
  /// descriptor is the caller's to close.
  public static func open(_ path: String, what: String, mode: mode_t) throws(Refused) -> Int32 {
    if let r = problem(path, what: what) { throw r }
    var fd: Int32
    repeat { fd = Glibc.open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode) } while fd < 0 && errno == EINTR
    guard fd >= 0 else {
      let e = errno
      // A link planted between the check and the open.
      if let r = problem(path, what: what) { throw r }
      throw Refused(message: "cannot open \(what) \(path): \(String(cString: strerror(e)))")
    }
    var st = stat()
    guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
      close(fd)
      throw Refused(message: "\(what) \(path) is not a regular file: remove it")
    }
    return fd
  }

  /// Gives `path` owner-only permissions (0600) through a descriptor opened without
  /// following links, creating it when `create` (else a missing file is left alone).
  public static func restrict(_ path: String, what: String, create: Bool) throws(Refused) {
    var st = stat()
    if !create && lstat(path, &st) != 0 { return }
    let fd = try open(path, what: what, mode: 0o600)
    defer { close(fd) }
    guard fchmod(fd, 0o600) == 0 else {
      throw Refused(message: "cannot make \(what) \(path) owner-only: \(String(cString: strerror(errno)))")
    }
  }
}
