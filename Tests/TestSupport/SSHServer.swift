import Foundation

/// An OpenSSH server on 127.0.0.1 for tests: its own host key, config and authorized_keys
/// in a temporary directory, accepting only the given public key for the current user.
/// `git-upload-pack` / `git-receive-pack` run through the user's shell as with any git host.
/// One `sshd -i` per connection, behind ``InetdServer``.
///
/// Started with posix_spawn (``Subprocess``), never Foundation's Process: sshd closes its
/// inherited descriptors at start, which made Process's monitoring thread wait for sshd's
/// exit in a blocking `waitpid` and stalled every other child of the test run.
public final class SSHServer: Sendable {
  public static let sshd = "/usr/sbin/sshd"
  public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: sshd) }

  public let port: Int
  public let user: String
  /// The `known_hosts` line for this server.
  public let knownHostsLine: String
  private let server: InetdServer

  public init(directory: String, authorizedKey: String) throws {
    user = try Processes.run(["id", "-un"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    try Processes.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", directory + "/host_ed25519"])
    try authorizedKey.write(toFile: directory + "/authorized_keys", atomically: true, encoding: .utf8)
    // sshd insists on its privilege separation directory.
    if !FileManager.default.fileExists(atPath: "/run/sshd") {
      try? FileManager.default.createDirectory(
        atPath: "/run/sshd", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    }
    let hostPub = try String(contentsOfFile: directory + "/host_ed25519.pub", encoding: .utf8).split(separator: " ")
    // sshd -i per connection (inetd mode) behind a port this process binds: ListenAddress
    // and Port are not used, and no port is picked, released and raced for.
    let config = """
      HostKey \(directory)/host_ed25519
      AuthorizedKeysFile \(directory)/authorized_keys
      PubkeyAuthentication yes
      PasswordAuthentication no
      KbdInteractiveAuthentication no
      PermitRootLogin prohibit-password
      StrictModes no
      UsePAM no
      LogLevel ERROR

      """
    try config.write(toFile: directory + "/sshd_config", atomically: true, encoding: .utf8)
    server = try InetdServer([SSHServer.sshd, "-i", "-e", "-f", directory + "/sshd_config"], log: .file(directory + "/sshd.log"))
    port = server.port
    knownHostsLine = "[127.0.0.1]:\(port) \(hostPub[0]) \(hostPub[1])"
  }

  public func url(_ absolutePath: String) -> String { "ssh://\(user)@127.0.0.1:\(port)\(absolutePath)" }

  public func stop() { server.stop() }

  deinit { stop() }
}
