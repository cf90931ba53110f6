import Basics
import Testing

@Suite struct RedactionTests {
  let m = Redaction.mask

  @Test func oneMask() {
    #expect(Redaction.mask == "[redacted]")
  }

  @Test func urlUserinfoAndSecretQueryParameters() {
    #expect(
      Redaction.url("https://user:pw@h.example:8443/p?key=k1&part=snippet#frag")
        == "https://\(m)@h.example:8443/p?key=\(m)&part=snippet#frag")
    #expect(
      Redaction.url("https://h.example/token?client_secret=s&CLIENT_ID=abc&Access_Token=t")
        == "https://h.example/token?client_secret=\(m)&CLIENT_ID=abc&Access_Token=\(m)")
    // The last @ of the authority ends the userinfo (a password may contain '@').
    #expect(Redaction.url("http://u:p@ss@127.0.0.1:9/x") == "http://\(m)@127.0.0.1:9/x")
    // An @ in the path is not userinfo.
    #expect(Redaction.url("https://h.example/users/@me") == "https://h.example/users/@me")
    #expect(Redaction.url("https://h.example/plain") == "https://h.example/plain")
    #expect(Redaction.urlWithoutQuery("https://u@h.example/p?token=x#f") == "https://\(m)@h.example/p")
  }

  @Test func urlsInFreeText() {
    #expect(
      Redaction.urls(in: "fetch https://u:pw@h.example/x.git?token=abc#f failed")
        == "fetch https://\(m)@h.example/x.git?\(m) failed")
    #expect(
      Redaction.urls(in: "'ssh://git@h/p' and (http://h/q#secret) end")
        == "'ssh://\(m)@h/p' and (http://h/q#\(m)) end")
    #expect(Redaction.urls(in: "no url here: a@b") == "no url here: a@b")
    // Idempotent: redacting twice changes nothing more.
    let once = Redaction.urls(in: "x https://a:b@h/p?q=1 y")
    #expect(Redaction.urls(in: once) == once)
  }

  @Test func queryAndJSONBodies() {
    #expect(
      Redaction.query("client_id=abc&client_secret=xyz&refresh_token=r&grant_type=refresh_token&flag")
        == "client_id=abc&client_secret=\(m)&refresh_token=\(m)&grant_type=refresh_token&flag")
    #expect(
      Redaction.json(#"{"access_token": "a.b.c", "name": "n", "x_secret":"s", "nested": {"id_token" : "t"}}"#)
        == #"{"access_token": "[redacted]", "name": "n", "x_secret": "[redacted]", "nested": {"id_token": "[redacted]"}}"#)
    #expect(
      Redaction.body(Array("password=hunter22&user=u".utf8), contentType: "application/x-www-form-urlencoded")
        == "password=\(m)&user=u")
    #expect(
      Redaction.body(Array(repeating: 0, count: 10), contentType: "application/octet-stream") == "<10 bytes application/octet-stream>")
    #expect(Redaction.body([], contentType: nil) == nil)
  }

  @Test func scrubMasksEveryOccurrence() {
    let s = "tok-\(Int.random(in: 1000...9999))-abcdef"
    #expect(Redaction.scrub("a \(s) b \(s)", secrets: [s]) == "a \(m) b \(m)")
    #expect(Redaction.scrub("\(s)\(s)", secrets: [s]) == "\(m)\(m)")
    // Too short to mask.
    #expect(Redaction.scrub("abc def", secrets: ["abc"]) == "abc def")
    #expect(Redaction.scrub("nothing", secrets: []) == "nothing")
  }

  @Test func overlappingAndContainedSecretsLeaveNothing() {
    // "12345678ABCD" and "ABCDEFGH" overlap in "ABCD": one mask covers both, no tail survives.
    let out = Redaction.scrub("x 12345678ABCDEFGH y", secrets: ["12345678ABCD", "ABCDEFGH"])
    #expect(out == "x \(m) y")
    #expect(!out.contains("EFGH") && !out.contains("1234"))
    // One secret inside another: masked whole, whichever order they are given in.
    #expect(Redaction.scrub("[outer-secret-value]", secrets: ["secret", "outer-secret-value"]) == "[\(m)]")
    #expect(Redaction.scrub("[outer-secret-value]", secrets: ["outer-secret-value", "secret"]) == "[\(m)]")
  }

  @Test func limitCutsAfterMasking() {
    let secret = "S3CR3T-VALUE-XYZ"
    let text = String(repeating: "a", count: 18) + secret + " tail"
    let out = Redaction.scrub(text, secrets: [secret], limit: 20)
    #expect(out == String(repeating: "a", count: 18) + "[r…")
    #expect(!out.contains("S3"))
    #expect(Redaction.scrub("short", limit: 5) == "short")
    #expect(Redaction.scrub("sixsix", limit: 5) == "sixsi…")
    #expect(Redaction.scrub("sixsix", limit: 0) == "…")
  }

  @Test func registeredSecretsAndTheirEncodedSpelling() {
    let value = "reg istered/\(Int.random(in: 100_000...999_999))"
    Redaction.registerSecret(value)
    #expect(Redaction.scrub("echo: \(value)") == "echo: \(m)")
    #expect(Redaction.scrub("form: q=\(PercentEncoding.encode(value))&x=1") == "form: q=\(m)&x=1")
    // Shorter than 8 characters: not registered (too common a word).
    Redaction.registerSecret("seven77")
    #expect(Redaction.scrub("seven77") == "seven77")
  }

  @Test func scrubWithURLs() {
    #expect(
      Redaction.scrub("push to https://x:tok@h/r.git?a=b failed: tokentoken", secrets: ["tokentoken"], urls: true)
        == "push to https://\(m)@h/r.git?\(m) failed: \(m)")
  }
}
