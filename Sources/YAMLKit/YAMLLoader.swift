internal import CYAML

#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// Loads YAML streams with libyaml's event parser into `YAMLNode` trees that carry
/// source locations. Thread-safe: every call uses its own parser.
public enum YAMLLoader {
  /// Loads a YAML stream from memory. `file` is used in every `SourceMark`.
  public static func load(_ bytes: [UInt8], file: String, limits: YAMLLimits = .default) -> YAMLLoadResult {
    bytes.withUnsafeBufferPointer { loadBuffer($0, file: file, limits: limits) }
  }

  /// Reads and loads a regular file. The size limit is checked with `fstat` before reading,
  /// and at most `maxFileBytes + 1` bytes are ever read (for files that grow). Anything else
  /// (a FIFO, device, socket or directory) is refused without reading: it is opened with
  /// O_NONBLOCK so that a FIFO without a writer cannot make the open wait.
  public static func load(contentsOf path: String, displayName: String, limits: YAMLLimits = .default) -> YAMLLoadResult {
    let startMark = SourceMark(file: displayName, line: 1, column: 1)
    func failure(_ code: YAMLError.Code, _ message: String) -> YAMLLoadResult {
      YAMLLoadResult(documents: [], errors: [YAMLError(code: code, message: message, mark: startMark)])
    }
    var fd: Int32
    repeat { fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) } while fd < 0 && errno == EINTR
    guard fd >= 0 else { return failure(.readError, "cannot open file: \(errnoString(errno))") }
    defer { _ = close(fd) }

    var st = stat()
    guard fstat(fd, &st) == 0 else { return failure(.readError, "cannot stat file: \(errnoString(errno))") }
    let fileType = st.st_mode & S_IFMT
    if fileType == S_IFDIR { return failure(.readError, "cannot read file: it is a directory") }
    if fileType != S_IFREG {
      return failure(.readError, "cannot read file: it is \(describeFileType(Int(fileType))); only regular files are read")
    }
    let limit = max(limits.maxFileBytes, 0)
    let isRegular = fileType == S_IFREG
    let statSize = Int(st.st_size)
    if isRegular && statSize > limit {
      return failure(.fileTooLarge, fileTooLargeMessage(size: statSize, limit: limit))
    }

    // Regular files: size+1 so that growth is noticed; others: start small and grow.
    var capacity = isRegular ? statSize + 1 : min(limit + 1, 64 << 10)
    var storage = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
    defer { storage.deallocate() }
    var count = 0
    while true {
      if count == capacity {
        if count > limit { break }
        let newCapacity = min(max(capacity * 2, 64 << 10), limit + 1)
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.update(from: storage, count: count)
        storage.deallocate()
        storage = grown
        capacity = newCapacity
      }
      let n = read(fd, storage + count, capacity - count)
      if n < 0 {
        if errno == EINTR { continue }
        return failure(.readError, "cannot read file: \(errnoString(errno))")
      }
      if n == 0 { break }
      count += n
    }
    if count > limit {
      return failure(.fileTooLarge, "file is larger than the limit of \(byteCountText(limit)) (stopped reading after \(count) bytes)")
    }
    return loadBuffer(UnsafeBufferPointer(start: storage, count: count), file: displayName, limits: limits)
  }

  /// "a FIFO", "a device", … for a non-regular `st_mode & S_IFMT`.
  public static func describeFileType(_ mode: Int) -> String {
    switch mode_t(truncatingIfNeeded: mode) & S_IFMT {
    case S_IFIFO: "a FIFO"
    case S_IFDIR: "a directory"
    case S_IFCHR, S_IFBLK: "a device"
    case S_IFSOCK: "a socket"
    case S_IFLNK: "a symbolic link"
    default: "not a regular file"
    }
  }

  // MARK: - Implementation

  static func loadBuffer(_ input: UnsafeBufferPointer<UInt8>, file: String, limits: YAMLLimits) -> YAMLLoadResult {
    let startMark = SourceMark(file: file, line: 1, column: 1)
    func failure(_ code: YAMLError.Code, _ message: String, _ mark: SourceMark) -> YAMLLoadResult {
      YAMLLoadResult(documents: [], errors: [YAMLError(code: code, message: message, mark: mark)])
    }
    if input.count > limits.maxFileBytes {
      return failure(.fileTooLarge, fileTooLargeMessage(size: input.count, limit: limits.maxFileBytes), startMark)
    }
    guard let fullBase = input.baseAddress, input.count > 0 else {
      return YAMLLoadResult(documents: [], errors: [])
    }
    var base = fullBase
    var count = input.count
    if count >= 2 && ((base[0] == 0xFF && base[1] == 0xFE) || (base[0] == 0xFE && base[1] == 0xFF)) {
      return failure(.invalidEncoding, "file starts with a UTF-16 byte order mark; only UTF-8 is supported", startMark)
    }
    if count >= 3 && base[0] == 0xEF && base[1] == 0xBB && base[2] == 0xBF {
      base += 3
      count -= 3
    }
    let text = UnsafeBufferPointer(start: base, count: count)
    if let nul = memchr(base, 0, count) {
      let offset = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(nul))
      let position = TextPosition.position(ofByte: offset, in: text)
      return failure(
        .binaryContent, "file contains a NUL byte; binary content is not YAML",
        SourceMark(file: file, line: position.line, column: position.column))
    }
    if count == 0 { return YAMLLoadResult(documents: [], errors: []) }

    let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
    defer { parser.deallocate() }
    guard yaml_parser_initialize(parser) != 0 else {
      return failure(.syntax, "cannot initialise libyaml parser (out of memory)", startMark)
    }
    defer { yaml_parser_delete(parser) }
    yaml_parser_set_input_string(parser, base, count)
    yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)

    var composer = Composer(file: file, limits: limits, checkDocumentSize: count > limits.maxDocumentBytes)
    var event = yaml_event_t()
    while true {
      guard yaml_parser_parse(parser, &event) != 0 else {
        composer.errors.append(parserError(parser, text: text, file: file))
        break
      }
      let isEnd = event.type == YAML_STREAM_END_EVENT
      composer.handle(&event)
      yaml_event_delete(&event)
      if isEnd || composer.fatal { break }
    }
    return YAMLLoadResult(documents: composer.documents, errors: composer.errors)
  }

  private static func parserError(_ parser: UnsafeMutablePointer<yaml_parser_t>, text: UnsafeBufferPointer<UInt8>, file: String)
    -> YAMLError
  {
    let p = parser.pointee
    let problem = p.problem.map { String(cString: $0) } ?? "unknown libyaml error"
    switch p.error {
    case YAML_MEMORY_ERROR:
      return YAMLError(code: .syntax, message: "libyaml ran out of memory", mark: SourceMark(file: file, line: 1, column: 1))
    case YAML_READER_ERROR:
      var offset = min(max(p.problem_offset, 0), text.count)
      if problem == "control characters are not allowed" {
        let position = TextPosition.position(ofByte: offset, in: text)
        return YAMLError(
          code: .binaryContent,
          message: "file contains the control character \(TextPosition.codePointText(p.problem_value)); binary content is not YAML",
          mark: SourceMark(file: file, line: position.line, column: position.column))
      }
      if problem == "invalid trailing UTF-8 octet" {
        // libyaml reports the offending continuation byte; point at the character's lead byte.
        var back = 0
        while back < 3 && offset > 0 {
          offset -= 1
          back += 1
          if text[offset] & 0xC0 != 0x80 { break }
        }
      }
      let position = TextPosition.position(ofByte: offset, in: text)
      var message = "invalid UTF-8: \(problem)"
      if p.problem_value >= 0 { message += " (byte 0x\(TextPosition.hex(UInt8(truncatingIfNeeded: p.problem_value))))" }
      return YAMLError(
        code: .invalidEncoding, message: message,
        mark: SourceMark(file: file, line: position.line, column: position.column))
    default:
      let mark = SourceMark(file: file, line: p.problem_mark.line + 1, column: p.problem_mark.column + 1)
      var message = problem
      if problem == "found character that cannot start any token",
        let offset = TextPosition.byteOffset(line: p.problem_mark.line, column: p.problem_mark.column, in: text),
        offset < text.count
      {
        let byte = text[offset]
        if byte == 0x09 {
          message = "found a tab character that cannot start any token (tabs cannot be used for indentation in YAML)"
        } else if byte >= 0x21 && byte < 0x7F {
          message = "found character '\(Character(Unicode.Scalar(byte)))' that cannot start any token"
        }
      }
      var notes: [YAMLNote] = []
      if let context = p.context.map({ String(cString: $0) }) {
        message += " (\(context))"
        let contextMark = SourceMark(file: file, line: p.context_mark.line + 1, column: p.context_mark.column + 1)
        if contextMark != mark {
          notes.append(YAMLNote(message: "\(context) started here", mark: contextMark))
        }
      }
      return YAMLError(code: .syntax, message: message, mark: mark, notes: notes)
    }
  }

  static func fileTooLargeMessage(size: Int, limit: Int) -> String {
    "file is \(byteCountText(size)), which exceeds the limit of \(byteCountText(limit))"
  }

  /// "20971520 bytes (20.0 MiB)"
  static func byteCountText(_ n: Int) -> String {
    if n < 1024 { return "\(n) bytes" }
    let (unit, divisor) = n >= 1 << 20 ? ("MiB", 1 << 20) : ("KiB", 1 << 10)
    let tenths = (n * 10 + divisor / 2) / divisor
    return "\(n) bytes (\(tenths / 10).\(tenths % 10) \(unit))"
  }

  private static func errnoString(_ code: Int32) -> String {
    if let s = strerror(code) { return String(cString: s) }
    return "errno \(code)"
  }
}

/// Byte offset ↔ line/column conversions that agree with libyaml's marks: lines break
/// at LF, CR, CRLF, NEL, LS and PS; columns count code points. Used on error paths only.
enum TextPosition {
  static func position(ofByte offset: Int, in text: UnsafeBufferPointer<UInt8>) -> (line: Int, column: Int) {
    var line = 1
    var column = 1
    var i = 0
    let end = min(offset, text.count)
    while i < end {
      let breakWidth = lineBreakWidth(at: i, in: text)
      if breakWidth > 0 {
        line += 1
        column = 1
        i += breakWidth
      } else {
        if text[i] & 0xC0 != 0x80 { column += 1 }
        i += 1
      }
    }
    return (line, column)
  }

  /// Byte offset of a 0-based (line, column) mark, or nil if past the end.
  static func byteOffset(line: Int, column: Int, in text: UnsafeBufferPointer<UInt8>) -> Int? {
    var currentLine = 0
    var i = 0
    while currentLine < line {
      guard i < text.count else { return nil }
      let breakWidth = lineBreakWidth(at: i, in: text)
      if breakWidth > 0 {
        currentLine += 1
        i += breakWidth
      } else {
        i += 1
      }
    }
    var currentColumn = 0
    while i < text.count {
      if text[i] & 0xC0 != 0x80 {
        if currentColumn == column { return i }
        currentColumn += 1
      }
      i += 1
    }
    return nil
  }

  private static func lineBreakWidth(at i: Int, in text: UnsafeBufferPointer<UInt8>) -> Int {
    switch text[i] {
    case 0x0A: return 1
    case 0x0D: return i + 1 < text.count && text[i + 1] == 0x0A ? 2 : 1
    case 0xC2: return i + 1 < text.count && text[i + 1] == 0x85 ? 2 : 0
    case 0xE2:
      return i + 2 < text.count && text[i + 1] == 0x80 && (text[i + 2] == 0xA8 || text[i + 2] == 0xA9) ? 3 : 0
    default: return 0
    }
  }

  static func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
  }

  static func codePointText(_ value: Int32) -> String {
    var digits = String(UInt32(bitPattern: value), radix: 16, uppercase: true)
    while digits.count < 4 { digits = "0" + digits }
    return "U+" + digits
  }
}
