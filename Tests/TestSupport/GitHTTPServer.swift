import Foundation

/// A smart-HTTP git server on 127.0.0.1 for tests: a small Python front end that demands
/// HTTP basic auth with a given token as the password, then hands the request to
/// `git http-backend` (CGI). Push is enabled. With `tls` it speaks HTTPS with that
/// certificate and key (PEM files). It binds port 0 itself and reports the port it got, so no
/// other process can take the port between choosing and binding. Stopped by `stop()` or when
/// released.
public final class GitHTTPServer: Sendable {
  public let port: Int
  private let process: Processes.Child
  private let scriptPath: String

  static let script = #"""
    import base64, os, ssl, subprocess, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    root, portfile, token = sys.argv[1], sys.argv[2], sys.argv[3]
    tls = sys.argv[4:6]
    backend = os.path.join(subprocess.check_output(["git", "--exec-path"], text=True).strip(), "git-http-backend")
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def handle_any(self):
            auth = self.headers.get("Authorization", "")
            ok = False
            if auth.startswith("Basic "):
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                ok = pw == token
            if not ok:
                self.send_response(401); self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0"); self.end_headers(); return
            path, _, query = self.path.partition("?")
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline(); break
                    body += self.rfile.read(size); self.rfile.readline()
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path, QUERY_STRING=query,
                       REQUEST_METHOD=self.command, CONTENT_TYPE=self.headers.get("Content-Type", ""),
                       CONTENT_LENGTH=str(len(body)), REMOTE_USER=user, REMOTE_ADDR="127.0.0.1", GIT_HTTP_RECEIVE_PACK="1")
            if self.headers.get("Content-Encoding") == "gzip": env["HTTP_CONTENT_ENCODING"] = "gzip"
            out = subprocess.run([backend], input=body, env=env, capture_output=True).stdout
            head, _, rest = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.split(b"\r\n"):
                k, _, v = line.decode().partition(":")
                if k.lower() == "status": status = int(v.strip().split()[0])
                elif k: headers.append((k, v.strip()))
            self.send_response(status)
            for k, v in headers: self.send_header(k, v)
            self.send_header("Content-Length", str(len(rest))); self.end_headers(); self.wfile.write(rest)
        do_GET = do_POST = handle_any
    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with open(portfile + ".tmp", "w") as f: f.write(str(server.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    server.serve_forever()
    """#

  public let isTLS: Bool

  /// `tls`: PEM certificate and key files; the certificate should name `localhost`.
  public init(root: String, token: String, tls: (certificate: String, key: String)? = nil) throws {
    scriptPath = root + "/.git-http-server.py"
    try GitHTTPServer.script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
    let portFile = root + "/.git-http-server.port"
    try? FileManager.default.removeItem(atPath: portFile)
    isTLS = tls != nil
    process = try Processes.start(
      ["python3", scriptPath, root, portFile, token] + (tls.map { [$0.certificate, $0.key] } ?? []),
      stderr: .file(root + "/.git-http-server.log"))
    let deadline = Date().addingTimeInterval(30)
    var found: Int?
    while process.isRunning && found == nil && Date() < deadline {
      found = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0) }
      if found == nil { usleep(20_000) }
    }
    guard let found, process.isRunning else {
      port = 0
      stop()
      throw Processes.Failure(description: "git http server did not start")
    }
    port = found
  }

  /// Serves a bare clone of `repository` as `<root>/empire.git` (`url("empire.git")`).
  public static func serving(
    _ repository: String, at root: String, token: String,
    tls: (certificate: String, key: String)? = nil
  ) throws -> GitHTTPServer {
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    try Processes.run(["git", "clone", "-q", "--bare", repository, root + "/empire.git"])
    return try GitHTTPServer(root: root, token: token, tls: tls)
  }

  /// `http://127.0.0.1:<port>/<name>`, or `https://localhost:<port>/<name>` with TLS
  /// (libgit2's mbedTLS checks DNS names only, so the certificate names localhost).
  public func url(_ name: String) -> String {
    isTLS ? "https://localhost:\(port)/\(name)" : "http://127.0.0.1:\(port)/\(name)"
  }

  public func stop() { process.stop() }

  deinit { stop() }
}
