import Foundation

/// An OpenSSH server on 127.0.0.1 for tests: its own host key, config and authorized_keys
/// in a temporary directory, accepting only the given public key for the current user.
/// `git-upload-pack` / `git-receive-pack` run through the user's shell as with any git host.
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
    private let process: Processes.Child

    public init(directory: String, authorizedKey: String) throws {
        user = try Processes.run(["id", "-un"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try Processes.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", directory + "/host_ed25519"])
        try authorizedKey.write(toFile: directory + "/authorized_keys", atomically: true, encoding: .utf8)
        // sshd insists on its privilege separation directory.
        if !FileManager.default.fileExists(atPath: "/run/sshd") {
            try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
        let hostPub = try String(contentsOfFile: directory + "/host_ed25519.pub", encoding: .utf8).split(separator: " ")
        var lastError: Error = Processes.Failure(description: "sshd did not start")
        for _ in 0..<3 {
            let port = try Processes.freePort()
            let config = """
            ListenAddress 127.0.0.1
            Port \(port)
            HostKey \(directory)/host_ed25519
            AuthorizedKeysFile \(directory)/authorized_keys
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            StrictModes no
            UsePAM no
            PidFile \(directory)/sshd.pid
            LogLevel ERROR

            """
            try config.write(toFile: directory + "/sshd_config", atomically: true, encoding: .utf8)
            let p = try Processes.start([SSHServer.sshd, "-D", "-e", "-f", directory + "/sshd_config"], stderr: .file(directory + "/sshd.log"))
            let deadline = Date().addingTimeInterval(10)
            while p.isRunning && !Processes.accepts(port: port) && Date() < deadline { usleep(20_000) }
            if p.isRunning && Processes.accepts(port: port) {
                self.port = port
                self.process = p
                self.knownHostsLine = "[127.0.0.1]:\(port) \(hostPub[0]) \(hostPub[1])"
                return
            }
            p.stop(grace: 1)
            lastError = Processes.Failure(description: "sshd did not start on port \(port)")
        }
        throw lastError
    }

    public func url(_ absolutePath: String) -> String { "ssh://\(user)@127.0.0.1:\(port)\(absolutePath)" }

    public func stop() { process.stop() }

    deinit { stop() }
}
