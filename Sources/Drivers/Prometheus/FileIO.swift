import Foundation
import YAMLKit

#if canImport(Glibc)
  import Glibc
#endif

/// Reads and replaces the rule file: only a regular file is read (never through a symbolic
/// link, never a FIFO or device), at most `maxBytes`; replacement is a temporary file in the
/// same directory, fsynced, renamed over the old one, and the directory fsynced.
enum RuleFileIO {
  /// Larger rule files are refused (Prometheus's own are far smaller).
  static let maxBytes = 4 << 20

  /// The file's bytes, or nil when it does not exist.
  static func read(_ path: String) throws(PrometheusError) -> [UInt8]? {
    var fd: Int32
    repeat { fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW) } while fd < 0 && errno == EINTR
    if fd < 0 {
      let e = errno
      if e == ENOENT { return nil }
      if e == ELOOP {
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
        throw PrometheusError(
          .ruleFileUnusable,
          "rule file \(path) is a symbolic link (to \(target)); name the file itself in integrations.prometheus.rulesFile")
      }
      throw PrometheusError(.ruleFileUnusable, "cannot open rule file \(path): \(String(cString: strerror(e)))")
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
      throw PrometheusError(.ruleFileUnusable, "cannot stat rule file \(path): \(String(cString: strerror(errno)))")
    }
    let type = st.st_mode & S_IFMT
    guard type == S_IFREG else {
      throw PrometheusError(
        .ruleFileUnusable, "rule file \(path) is \(YAMLLoader.describeFileType(Int(type))), not a regular file; only regular files are read"
      )
    }
    guard Int(st.st_size) <= maxBytes else {
      throw PrometheusError(.ruleFileUnusable, "rule file \(path) is \(st.st_size) bytes, more than the limit of \(maxBytes)")
    }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = Glibc.read(fd, &buf, buf.count)
      if n < 0 {
        if errno == EINTR { continue }
        throw PrometheusError(.ruleFileUnusable, "cannot read rule file \(path): \(String(cString: strerror(errno)))")
      }
      if n == 0 { break }
      out.append(contentsOf: buf[0..<n])
      if out.count > maxBytes {
        throw PrometheusError(.ruleFileUnusable, "rule file \(path) grew past the limit of \(maxBytes) bytes while being read")
      }
    }
    return out
  }

  /// Writes `bytes` to a new temporary file beside `path`, fsynced; returns its path. It gets
  /// the mode and owner of the file it will replace (0644 and ours when there is none), so a
  /// rule file readable only by Prometheus's group stays so.
  static func writeTemporary(beside path: String, _ bytes: [UInt8]) throws(PrometheusError) -> String {
    var old = stat()
    let hasOld = lstat(path, &old) == 0 && (old.st_mode & S_IFMT) == S_IFREG
    let dir = (path as NSString).deletingLastPathComponent
    let base = (path as NSString).lastPathComponent
    let tmp = (dir.isEmpty ? "." : dir) + "/.\(base).ytempire-\(UUID().uuidString.prefix(8).lowercased()).tmp"
    var fd: Int32
    repeat { fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644) } while fd < 0 && errno == EINTR
    guard fd >= 0 else {
      throw PrometheusError(
        .ruleFileUnusable, "cannot create a temporary file in \(dir) for the rule file: \(String(cString: strerror(errno)))")
    }
    var ok = true
    var why = ""
    if hasOld {
      _ = fchown(fd, old.st_uid, old.st_gid)  // only root may give it away; then it stays ours
      if fchmod(fd, old.st_mode & 0o7777) != 0 {
        ok = false
        why = String(cString: strerror(errno))
      }
    }
    if ok {
      bytes.withUnsafeBytes { raw in
        var off = 0
        while off < raw.count {
          let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
          if n < 0 {
            if errno == EINTR { continue }
            ok = false
            why = String(cString: strerror(errno))
            return
          }
          off += n
        }
      }
    }
    if ok && fsync(fd) != 0 {
      ok = false
      why = String(cString: strerror(errno))
    }
    close(fd)
    guard ok else {
      unlink(tmp)
      throw PrometheusError(.ruleFileUnusable, "cannot write the temporary rule file \(tmp): \(why)")
    }
    return tmp
  }

  /// Renames `tmp` over `path` and fsyncs the directory.
  static func replace(_ path: String, with tmp: String) throws(PrometheusError) {
    guard rename(tmp, path) == 0 else {
      let why = String(cString: strerror(errno))
      unlink(tmp)
      throw PrometheusError(.ruleFileUnusable, "cannot replace rule file \(path): \(why)")
    }
    syncDirectory(of: path)
  }

  /// Writes `bytes` as `path` atomically (temporary file, fsync, rename).
  static func write(_ path: String, _ bytes: [UInt8]) throws(PrometheusError) {
    let tmp = try writeTemporary(beside: path, bytes)
    try replace(path, with: tmp)
  }

  /// Removes `path` (a rule file that did not exist before).
  static func remove(_ path: String) throws(PrometheusError) {
    if unlink(path) != 0 && errno != ENOENT {
      throw PrometheusError(.ruleFileUnusable, "cannot remove rule file \(path): \(String(cString: strerror(errno)))")
    }
    syncDirectory(of: path)
  }

  static func syncDirectory(of path: String) {
    let dir = (path as NSString).deletingLastPathComponent
    let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dfd >= 0 {
      _ = fsync(dfd)
      close(dfd)
    }
  }
}
