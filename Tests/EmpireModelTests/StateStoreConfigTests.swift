import Foundation
import Testing
import YAMLKit

@testable import EmpireModel

/// `stateStore:` in ytempire.yaml (DESIGN A10, docs/configuration.md): the shared PostgreSQL state.
@Suite struct StateStoreConfigTests {
  typealias C = ReconcilerConfigTests

  /// Loads `minimal()` plus `extra`; the first line of `extra` is line 6 of the file.
  static func load(_ extra: String) -> (config: ReconcilerConfig?, diagnostics: [Diagnostic]) {
    C.load(C.minimal(extra))
  }

  @Test("a full section loads: url as written, password reference, tls verify-full with caFile made absolute; listed with the secrets")
  func fullSection() throws {
    let (config, diags) = Self.load(
      """
      stateStore:
        url: postgres://ytempire@db.internal:5432/ytempire
        password: {env: YTEMPIRE_STATE_PASSWORD}
        tls: {mode: verify-full, caFile: certs/ca.pem}
      """)
    #expect(diags.isEmpty, "\(diags.map(\.rendered))")
    let c = try #require(config)
    let s = try #require(c.stateStore)
    #expect(s.url == "postgres://ytempire@db.internal:5432/ytempire")
    #expect(s.password?.source == .env("YTEMPIRE_STATE_PASSWORD"))
    #expect(s.password?.path == "stateStore.password")
    #expect(s.password?.mark.line == 8)
    #expect(s.tlsMode == .verifyFull)
    #expect(s.caFile == C.base + "/certs/ca.pem")
    #expect(
      s == StateStoreSettings(url: s.url, password: s.password, tlsMode: .verifyFull, caFile: "/etc/ytempire/certs/ca.pem"))
    #expect(c.stateDir == "/var/lib/ytempire")
    let refs = c.allSecretRefs
    #expect(refs.contains { $0.path == "stateStore.password" && $0.source == .env("YTEMPIRE_STATE_PASSWORD") })

    // Absent: SQLite in stateDir.
    let (plain, plainDiags) = C.load(C.minimal())
    #expect(plainDiags.isEmpty)
    #expect(try #require(plain).stateStore == nil)
  }

  @Test("without tls the mode comes from the URL's sslmode, else disable; the same mode in both places is fine")
  func sslmodeFromURL() throws {
    func settings(_ body: String) throws -> StateStoreSettings {
      let (config, diags) = Self.load("stateStore: {\(body)}")
      #expect(diags.isEmpty, "\(diags.map(\.rendered))")
      return try #require(config?.stateStore)
    }
    let require = try settings("url: \"postgresql://u@db/ytempire?sslmode=require\"")
    #expect(require.tlsMode == .require)
    #expect(require.url == "postgresql://u@db/ytempire?sslmode=require")
    #expect(require.password == nil && require.caFile == nil)
    #expect(try settings("url: \"postgres://u@db/ytempire?sslmode=verify-full\"").tlsMode == .verifyFull)
    #expect(try settings("url: \"postgres://u@db/ytempire?sslmode=disable\"").tlsMode == .disable)
    #expect(try settings("url: \"postgres://u@db/ytempire\"").tlsMode == .disable)
    let both = try settings("url: \"postgres://u@db/ytempire?sslmode=verify-full\", tls: {mode: verify-full, caFile: /etc/ssl/ca.pem}")
    #expect(both.tlsMode == .verifyFull && both.caFile == "/etc/ssl/ca.pem")
    // caFile with a TLS mode from the URL.
    let fromURL = try settings("url: \"postgres://u@db/ytempire?sslmode=require\", tls: {caFile: ca.pem}")
    #expect(fromURL.tlsMode == .require && fromURL.caFile == "/etc/ytempire/ca.pem")
    #expect(try settings("url: \"postgres://u@db/ytempire\", tls: {mode: require}").tlsMode == .require)
  }

  @Test("a sqlite: URL is a located error: SQLite is the default, in stateDir")
  func sqliteURL() throws {
    let (config, diags) = Self.load(
      """
      stateStore:
        url: sqlite:///var/lib/ytempire/state.sqlite
      """)
    #expect(config == nil)
    let errors = C.errors(diags)
    #expect(errors.count == 1, "\(diags.map(\.rendered))")
    let e = try #require(errors.first)
    #expect(e.code == "invalid-url")
    #expect(e.line == 7 && e.column == 8)
    #expect(e.message.contains("stateStore.url"))
    #expect(e.message.contains("SQLite is the default state store"))
    #expect(e.message.contains("stateDir"))
    #expect(e.message.contains("remove stateStore"))
    #expect(!e.message.contains("/var/lib/ytempire/state.sqlite"))
    #expect(e.rendered.hasPrefix("ytempire.yaml:7:8: error:"))
  }

  @Test("another scheme is an error naming the accepted form, without the rest of the URL")
  func otherScheme() throws {
    let (config, diags) = Self.load("stateStore: {url: \"http://admin:hunter2@db.internal:5432/ytempire\"}")
    #expect(config == nil)
    let e = try #require(C.errors(diags).first)
    #expect(C.errors(diags).count == 1)
    #expect(e.code == "invalid-url")
    #expect(e.line == 6)
    #expect(e.message.contains("scheme 'http'"))
    #expect(e.message.contains("postgres://user@host:5432/database"))
    #expect(!e.message.contains("db.internal") && !e.message.contains("hunter2"))

    // Not even a scheme: nothing of it is repeated.
    let (_, d2) = Self.load("stateStore: {url: \"s3cr3t-pasted-here\"}")
    let e2 = try #require(C.errors(d2).first)
    #expect(e2.code == "invalid-url")
    #expect(e2.message.contains("postgres://user@host:5432/database"))
    #expect(!e2.message.contains("s3cr3t"))
  }

  @Test("the config store's postgres URL checks apply: user, database, port, parameters, sslmode values")
  func postgresChecks() {
    func codes(_ url: String) -> [String] {
      let (config, diags) = Self.load("stateStore: {url: \"\(url)\"}")
      if !C.errors(diags).isEmpty { #expect(config == nil) }
      return diags.map(\.code)
    }
    #expect(codes("postgres://u@db:5432/ytempire") == [])
    #expect(codes("postgres://db:5432/ytempire") == ["invalid-url"])
    #expect(codes("postgres://u@db:5432/") == ["invalid-url"])
    #expect(codes("postgres://u@db:5432/a/b") == ["invalid-url"])
    #expect(codes("postgres://u@db:70000/ytempire") == ["out-of-range"])
    #expect(codes("postgres://u@db/ytempire?sslmode=prefer") == ["invalid-url"])
    #expect(codes("postgres://u@db/ytempire?connect_timeout=5") == ["invalid-url"])
    #expect(codes("postgres://u@/ytempire") == ["invalid-url"])
  }

  @Test("a tls.mode that is not disable, require or verify-full is an invalid-enum with did-you-mean")
  func badTLSMode() throws {
    let (config, diags) = Self.load(
      """
      stateStore:
        url: postgres://u@db/ytempire
        tls:
          mode: verify-ful
          caFile: ca.pem
      """)
    #expect(config == nil)
    let errors = C.errors(diags)
    #expect(errors.count == 1, "\(diags.map(\.rendered))")
    let e = try #require(errors.first)
    #expect(e.code == "invalid-enum")
    #expect(e.line == 9 && e.column == 11)
    #expect(e.message.contains("stateStore.tls.mode"))
    #expect(e.message.contains("disable, require, verify-full"))
    #expect(e.message.contains("(did you mean 'verify-full'?)"))
  }

  @Test("caFile without TLS (mode disable, written or by default) is a located error")
  func caFileWithDisable() throws {
    let (config, diags) = Self.load(
      """
      stateStore:
        url: postgres://u@db/ytempire
        tls: {mode: disable, caFile: certs/ca.pem}
      """)
    #expect(config == nil)
    let e = try #require(C.errors(diags).first)
    #expect(C.errors(diags).count == 1)
    #expect(e.code == "invalid-value")
    #expect(e.line == 8 && e.column == 24)
    #expect(e.message.contains("stateStore.tls.caFile"))
    #expect(e.message.contains("verify-full"))

    // No mode anywhere: disable, so the same error.
    let (c2, d2) = Self.load("stateStore: {url: \"postgres://u@db/ytempire\", tls: {caFile: ca.pem}}")
    #expect(c2 == nil)
    #expect(C.errors(d2).map(\.code) == ["invalid-value"])
    // sslmode=disable in the URL counts as well.
    let (c3, d3) = Self.load("stateStore: {url: \"postgres://u@db/ytempire?sslmode=disable\", tls: {caFile: ca.pem}}")
    #expect(c3 == nil)
    #expect(C.errors(d3).map(\.code) == ["invalid-value"])
  }

  @Test("sslmode in the URL and a different tls.mode are mutually exclusive")
  func sslmodeConflict() throws {
    let (config, diags) = Self.load(
      """
      stateStore:
        url: postgres://u:hunter2@db.internal/ytempire?sslmode=require
        tls: {mode: verify-full}
      """)
    #expect(config == nil)
    let errors = C.errors(diags)
    #expect(errors.count == 1, "\(diags.map(\.rendered))")
    let e = try #require(errors.first)
    #expect(e.code == "mutually-exclusive")
    #expect(e.line == 8 && e.column == 15)
    #expect(e.message.contains("stateStore.tls.mode is verify-full"))
    #expect(e.message.contains("sslmode=require"))
    #expect(!e.message.contains("hunter2") && !e.message.contains("db.internal"))
  }

  @Test("a password in the URL and password: both is an error; in the URL alone it is a literal-secret warning")
  func passwordTwice() throws {
    let (config, diags) = Self.load(
      """
      stateStore:
        url: postgres://u:hunter2@db.internal/ytempire
        password: {env: YTEMPIRE_STATE_PASSWORD}
      """)
    #expect(config == nil)
    let e = try #require(C.errors(diags).first)
    #expect(C.errors(diags).count == 1)
    #expect(e.code == "mutually-exclusive")
    #expect(e.line == 8 && e.column == 3)
    #expect(e.message.contains("stateStore.url has a password and stateStore.password is set too"))

    let (c2, d2) = Self.load("stateStore: {url: \"postgres://u:hunter2@db.internal/ytempire\"}")
    #expect(c2?.stateStore?.password == nil)
    #expect(c2?.stateStore?.url == "postgres://u:hunter2@db.internal/ytempire")
    let w = try #require(C.warnings(d2).first)
    #expect(d2.count == 1)
    #expect(w.code == "literal-secret")
    #expect(w.message.hasPrefix("stateStore.url has a password in the URL"))
    // The state store's host is an endpoint: a literal elsewhere is flagged because of it.
    let (_, d3) = C.load(
      C.minimal("stateStore: {url: \"postgres://u@db.internal/ytempire\"}\nsecrets: {a: {value: x}}", url: "/srv/empire"))
    #expect(d3.map(\.code) == ["literal-secret"])
    #expect(d3.first?.notes.first?.message.contains("stateStore.url points at db.internal") == true)
  }

  @Test("unknown keys under stateStore and stateStore.tls get did-you-mean; url is required")
  func unknownKeys() throws {
    let (config, diags) = Self.load(
      """
      stateStore:
        url: postgres://u@db/ytempire
        passwrd: {env: P}
        tls: {mode: require, cafile: ca.pem}
      """)
    #expect(config == nil)
    let errors = C.errors(diags)
    #expect(errors.map(\.code) == ["unknown-field", "unknown-field"], "\(diags.map(\.rendered))")
    #expect(errors[0].line == 8 && errors[0].column == 3)
    #expect(errors[0].message.contains("passwrd"))
    #expect(errors[0].message.contains("did you mean 'password'?"))
    #expect(errors[1].line == 9)
    #expect(errors[1].message.contains("did you mean 'caFile'?"))

    let (c2, d2) = Self.load("stateStore: {password: {env: P}}")
    #expect(c2 == nil)
    #expect(C.errors(d2).map(\.code) == ["missing-field"])
    #expect(C.errors(d2).first?.message.contains("url") == true)

    // A misspelt section name is an unknown top-level key.
    let (c3, d3) = Self.load("stateStor: {url: \"postgres://u@db/ytempire\"}")
    #expect(c3 == nil)
    #expect(C.errors(d3).first?.message.contains("did you mean 'stateStore'?") == true)
  }

  @Test("no diagnostic repeats the password written in the URL")
  func passwordNeverShown() {
    let secret = "hunter2-Zq9"
    let bodies = [
      "url: \"sqlite://u:\(secret)@x/state.sqlite\"",
      "url: \"http://u:\(secret)@db/ytempire\"",
      "url: \"mysql://u:\(secret)@db/ytempire\"",
      "url: \"postgres://u:\(secret)@db/ytempire\", password: {env: P}",
      "url: \"postgres://u:\(secret)@db/ytempire?sslmode=require\", tls: {mode: disable}",
      "url: \"postgres://u:\(secret)@db/ytempire?sslmode=prefer\"",
      "url: \"postgres://u:\(secret)@db/ytempire?x=1\"",
      "url: \"postgres://u:\(secret)@db:99999/ytempire\"",
      "url: \"postgres://u:\(secret)@db/\"",
      "url: \"postgres://:\(secret)@db/ytempire\"",
      "url: \"postgres://u:\(secret)@db/ytempire\", tls: {mode: verify-ful}",
      "url: \"postgres://u:\(secret)@db/ytempire\", tls: {caFile: ca.pem}",
      "url: \"postgres://u:\(secret)@db.internal/ytempire\"",
    ]
    for body in bodies {
      let (_, diags) = Self.load("stateStore: {\(body)}")
      #expect(!diags.isEmpty, "\(body)")
      for d in diags {
        #expect(!d.rendered.contains(secret), "\(d.rendered)")
        #expect(!d.message.contains(secret))
      }
    }
  }
}
