import Basics
import Testing

@Suite struct PercentEncodingTests {
  @Test func unreservedStaysReservedIsEncoded() {
    let unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    #expect(PercentEncoding.encode(unreserved) == unreserved)
    #expect(PercentEncoding.encode(":/?#[]@!$&'()*+,;=") == "%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D")
    #expect(PercentEncoding.encode("a b%c") == "a%20b%25c")
    #expect(PercentEncoding.encode("é€😀") == "%C3%A9%E2%82%AC%F0%9F%98%80")
    #expect(PercentEncoding.encode("") == "")
  }

  @Test(arguments: ["", "plain", "a b/c&d=e+f%g", "policy/with/slashes", "é€😀 \u{0} \n", "100%", "%2F"])
  func roundTrip(_ s: String) {
    #expect(PercentEncoding.decode(PercentEncoding.encode(s)) == s)
  }

  @Test func decodeRejectsBrokenEscapes() {
    #expect(PercentEncoding.decode("%") == nil)
    #expect(PercentEncoding.decode("%4") == nil)
    #expect(PercentEncoding.decode("%zz") == nil)
    #expect(PercentEncoding.decode("%FF") == nil)  // not UTF-8
    #expect(PercentEncoding.decode("a%2fb%2Fc+d") == "a/b/c+d")
  }
}
