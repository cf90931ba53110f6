import Foundation

/// A certificate authority made for one test with `openssl`: its certificate (`caFile`) and
/// a server certificate it signed for `localhost` (and, as a SAN, 127.0.0.1), with key.
/// Elliptic-curve keys (P-256) keep generation fast.
public struct TestCA: Sendable {
  public let caFile: String
  public let certificate: String
  public let key: String

  public init(in dir: String, name: String = "ca") throws {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let p = dir + "/" + name
    caFile = p + ".pem"
    certificate = p + "-server.pem"
    key = p + "-server.key"
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    try Processes.run(
      ["openssl", "req", "-x509"] + ec + [
        "-keyout", p + ".key", "-out", caFile, "-days", "2",
        "-subj", "/CN=ytempire test CA \(name)",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
      ])
    try Processes.run(["openssl", "req"] + ec + ["-keyout", key, "-out", p + "-server.csr", "-subj", "/CN=localhost"])
    try "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n".write(
      toFile: p + "-ext.cnf", atomically: true, encoding: .utf8)
    try Processes.run([
      "openssl", "x509", "-req", "-in", p + "-server.csr", "-CA", caFile, "-CAkey", p + ".key", "-CAcreateserial",
      "-out", certificate, "-days", "2", "-extfile", p + "-ext.cnf",
    ])
  }
}

/// A listening socket on 127.0.0.1 that never reads or answers: the kernel completes each
/// handshake, then silence (a hung server). Closed by `close()`.
public final class SilentListener: Sendable {
  public let fd: Int32
  public let port: Int

  public init() throws {
    (fd, port) = try Processes.loopbackSocket(listening: 64, reuseAddress: true)
  }

  public func close() { Glibc.close(fd) }
}
