import Foundation

/// Why a secret could not be read. The message names the reference's `path` and the
/// environment variable or file, never the secret.
public struct SecretError: Error, CustomStringConvertible, Sendable, Equatable {
  public enum Reason: String, Sendable {
    /// The environment variable is not set, or set to the empty string.
    case envUnset = "env-unset"
    /// The file does not exist or cannot be opened.
    case fileUnreadable = "file-unreadable"
    /// The path is not a regular file (a FIFO, device, socket or directory).
    case notRegularFile = "not-regular-file"
    /// The file is larger than `SecretResolver.maxFileBytes`.
    case fileTooLarge = "file-too-large"
    /// The file is empty (after trimming one trailing newline) or not UTF-8.
    case invalidContent = "invalid-content"
    /// A `{value: …}` that is empty.
    case emptyValue = "empty-value"
  }

  public var reason: Reason
  /// Where the reference is configured ("integrations.youtube.clientId").
  public var path: String
  public var message: String

  public var description: String { message }
}

/// Reads the secrets that `SecretRef`s point at. Nothing is cached: each call reads anew, so
/// a rotated file or a reloaded environment is picked up.
public struct SecretResolver: Sendable {
  /// The largest secret file read.
  public static let maxFileBytes = 64 * 1024

  public let environment: [String: String]

  public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
    self.environment = environment
  }

  /// env: the variable (error if unset or empty); file: a REGULAR file only (no FIFO/device; symlink followed to a regular file),
  /// at most 64 KiB, one trailing newline trimmed; value: the literal.
  public func resolve(_ ref: SecretRef) throws(SecretError) -> String {
    switch ref.source {
    case .env(let name):
      guard let v = environment[name], !v.isEmpty else {
        throw SecretError(
          reason: .envUnset, path: ref.path,
          message: "\(ref.path): environment variable \(name) is \(environment[name] == nil ? "not set" : "empty")")
      }
      return v
    case .file(let file):
      return try Self.readSecretFile(file, ref: ref)
    case .value(let v):
      guard !v.isEmpty else {
        throw SecretError(reason: .emptyValue, path: ref.path, message: "\(ref.path): the literal value is empty")
      }
      return v
    }
  }

  static func readSecretFile(_ file: String, ref: SecretRef) throws(SecretError) -> String {
    func fail(_ r: SecretError.Reason, _ what: String) -> SecretError {
      SecretError(reason: r, path: ref.path, message: "\(ref.path): secret file \(file) \(what)")
    }
    // O_NONBLOCK: opening a FIFO must not wait for a writer; the type is checked on the open descriptor.
    let fd = open(file, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
    guard fd >= 0 else {
      let e = errno
      throw fail(.fileUnreadable, e == ENOENT ? "does not exist" : "cannot be opened: \(String(cString: strerror(e)))")
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw fail(.fileUnreadable, "cannot be read: \(String(cString: strerror(errno)))") }
    let type = st.st_mode & S_IFMT
    guard type == S_IFREG else {
      let what =
        switch type {
        case S_IFIFO: "a FIFO"
        case S_IFDIR: "a directory"
        case S_IFCHR, S_IFBLK: "a device"
        case S_IFSOCK: "a socket"
        default: "not a regular file"
        }
      throw fail(.notRegularFile, "is \(what); only a regular file is read")
    }
    guard st.st_size <= maxFileBytes else {
      throw fail(.fileTooLarge, "is \(st.st_size) bytes; a secret file may hold at most \(maxFileBytes) bytes")
    }
    // Read at most one byte more than allowed, in case the file grew since fstat.
    var buf = [UInt8](repeating: 0, count: maxFileBytes + 1)
    var total = 0
    while total < buf.count {
      let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress! + total, $0.count - total) }
      if n < 0 {
        if errno == EINTR || errno == EAGAIN { continue }
        throw fail(.fileUnreadable, "cannot be read: \(String(cString: strerror(errno)))")
      }
      if n == 0 { break }
      total += n
    }
    guard total <= maxFileBytes else {
      throw fail(.fileTooLarge, "holds more than \(maxFileBytes) bytes")
    }
    var bytes = buf[..<total]
    if bytes.last == UInt8(ascii: "\n") {
      bytes = bytes.dropLast()
      if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
    }
    guard !bytes.isEmpty else { throw fail(.invalidContent, "is empty") }
    guard let s = String(validating: bytes, as: UTF8.self) else { throw fail(.invalidContent, "is not UTF-8 text") }
    return s
  }
}
