import Basics
import Testing

@Suite struct HostPortTests {
  @Test func valid() throws {
    #expect(try HostPort.parse("127.0.0.1:9400") == HostPort(host: "127.0.0.1", port: 9400))
    #expect(try HostPort.parse("db.internal:1") == HostPort(host: "db.internal", port: 1))
    #expect(try HostPort.parse("h:65535").port == 65535)
    #expect(try HostPort.parse("h:08080").port == 8080)
    #expect(try HostPort.parse("h:0", allowingPortZero: true).port == 0)
    #expect(try HostPort.parse("h", defaultPort: 22) == HostPort(host: "h", port: 22))
    #expect(try HostPort.parse("h:", defaultPort: 443) == HostPort(host: "h", port: 443))
    #expect(HostPort(host: "h", port: 1).description == "h:1")
  }

  @Test func ipv6() throws {
    #expect(try HostPort.parse("[::1]:9400") == HostPort(host: "::1", port: 9400))
    #expect(try HostPort.parse("[2001:db8::7]:22") == HostPort(host: "2001:db8::7", port: 22))
    #expect(try HostPort.parse("[::1]", defaultPort: 80) == HostPort(host: "::1", port: 80))
    #expect(HostPort(host: "::1", port: 9400).description == "[::1]:9400")
    #expect(throws: HostPort.ParseError.ipv6WithoutBrackets) { try HostPort.parse("::1:9400") }
    #expect(throws: HostPort.ParseError.unclosedBracket) { try HostPort.parse("[::1:9400") }
    #expect(throws: HostPort.ParseError.unclosedBracket) { try HostPort.parse("[::1]x:9400") }
    #expect(throws: HostPort.ParseError.notIPv6("not-v6")) { try HostPort.parse("[not-v6]:1") }
    #expect(throws: HostPort.ParseError.missingHost) { try HostPort.parse("[]:1") }
  }

  @Test(arguments: ["0", "65536", "99999999999999999999", "000000000000000000065536"])
  func outOfRangeDoesNotTrap(_ port: String) {
    #expect(throws: HostPort.ParseError.portOutOfRange(port)) { try HostPort.parse("h:\(port)") }
  }

  @Test func zeroOnlyWhenAllowed() {
    #expect(throws: HostPort.ParseError.portOutOfRange("0")) { try HostPort.parse("h:0") }
    #expect(throws: HostPort.ParseError.portOutOfRange("65536")) { try HostPort.parse("h:65536", allowingPortZero: true) }
  }

  @Test func missingPartsAndGarbage() {
    #expect(throws: HostPort.ParseError.missingPort) { try HostPort.parse("h") }
    #expect(throws: HostPort.ParseError.missingPort) { try HostPort.parse("h:") }
    #expect(throws: HostPort.ParseError.missingPort) { try HostPort.parse("[::1]") }
    #expect(throws: HostPort.ParseError.missingHost) { try HostPort.parse(":80") }
    #expect(throws: HostPort.ParseError.missingHost) { try HostPort.parse("") }
    #expect(throws: HostPort.ParseError.portNotANumber("http")) { try HostPort.parse("h:http") }
    #expect(throws: HostPort.ParseError.portNotANumber("+80")) { try HostPort.parse("h:+80") }
    #expect(throws: HostPort.ParseError.portNotANumber("-1")) { try HostPort.parse("h:-1") }
    #expect(throws: HostPort.ParseError.portNotANumber("８０")) { try HostPort.parse("h:８０") }
    #expect(throws: HostPort.ParseError.invalidHost("a b")) { try HostPort.parse("a b:80") }
    #expect(throws: HostPort.ParseError.invalidHost("u@h")) { try HostPort.parse("u@h:80") }
    #expect(throws: HostPort.ParseError.invalidHost("h/p")) { try HostPort.parse("h/p:80") }
    // Every error says what is wrong.
    #expect("\(HostPort.ParseError.portOutOfRange("0"))" == "the port 0 is outside 1-65535")
  }

  @Test func loopback() {
    for h in [
      "127.0.0.1", "127.1.2.3", "127.255.255.255", "localhost", "LOCALHOST", "localhost.", "::1", "[::1]",
      "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "[::ffff:127.9.9.9]",
    ] {
      #expect(HostPort.isLoopback(h), "\(h)")
    }
    for h in [
      "0.0.0.0", "::", "128.0.0.1", "10.0.0.1", "127.0.0", "127.0.0.1.2", "127.0.0.256", "127.example.com",
      "localhost.example.com", "::2", "::ffff:10.0.0.1", "example.com", "", "+127.0.0.1", "127.0.0.+1",
    ] {
      #expect(!HostPort.isLoopback(h), "\(h)")
    }
    #expect(HostPort(host: "::1", port: 1).isLoopback)
  }
}
