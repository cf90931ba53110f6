import DriverKit
import Foundation
import Testing

@testable import YouTubeDriver

/// Messages a person reads: what failed, for which channel, said once.
@Suite("YouTube error messages")
struct YouTubeMessageTests {
  @Test("an answer without a reason shows its status once, not \"HTTP 302 HTTP 302\"")
  func statusOnce() {
    let (reason, message) = ErrorText.parse(Array("<html>moved</html>".utf8), status: 302)
    let e = YouTubeError(operation: "channels.list", channel: "tech-daily", status: 302, reason: reason, message: message)
    #expect(e.description == "youtube channels.list for tech-daily: HTTP 302")
    let q = YouTubeError(operation: "channels.list", channel: "tech-daily", status: 403, reason: "quotaExceeded", message: "spent")
    #expect(q.description == "youtube channels.list for tech-daily: HTTP 403 quotaExceeded: spent")
    #expect(CallFailure(status: 302, reason: "HTTP 302", message: "moved").description == "HTTP 302: moved")
  }

  @Test("a batched channels.list failure is each channel's, and says it was the batch's call and whose credentials sent it")
  func batchAttribution() {
    let paid = YouTubeError(operation: "channels.list", channel: "tech-daily", status: 500, reason: "backendError", message: "try later")
    let batch = ["tech-daily", "science-simplified", "history-hub"]
    let other = YouTubeDriver.batchFailure(paid, channel: "science-simplified", batch: batch)
    #expect(
      other == "youtube channels.list for science-simplified: HTTP 500 backendError: try later "
        + "(one batched channels.list for 3 channels (tech-daily, science-simplified, history-hub), sent with the credentials of tech-daily)"
    )
    let payer = YouTubeDriver.batchFailure(paid, channel: "tech-daily", batch: batch)
    #expect(
      payer.hasPrefix("youtube channels.list for tech-daily: HTTP 500 backendError: try later (one batched channels.list for 3 channels"))
    #expect(!payer.contains("sent with"))
    // A batch of one is that channel's own call.
    #expect(YouTubeDriver.batchFailure(paid, channel: "tech-daily", batch: ["tech-daily"]) == "\(paid)")
    // No channel of the batch could get a token: each is told its own reason.
    let none = YouTubeDriver.NoWorkingCredentials(errors: [
      "tech-daily":
        "youtube oauth.token for tech-daily: credentialsNotConfigured: no secret named youtube-tech-daily in the reconciler config (secrets:)",
      "history-hub": "youtube oauth.token for history-hub: HTTP 400 invalid_grant: Token has been expired or revoked.",
    ])
    #expect(
      YouTubeDriver.batchFailure(none, channel: "history-hub", batch: batch)
        == "youtube oauth.token for history-hub: HTTP 400 invalid_grant: Token has been expired or revoked. (no channel of its channels.list batch of 3 has working credentials)"
    )
    #expect(!YouTubeDriver.batchFailure(none, channel: "tech-daily", batch: batch).contains("history-hub"))
    struct Other: Error, CustomStringConvertible { var description: String { "circuit open" } }
    #expect(
      YouTubeDriver.batchFailure(Other(), channel: "history-hub", batch: batch)
        == "youtube channels.list for history-hub: one batched channels.list for 3 channels (tech-daily, science-simplified, history-hub) failed: circuit open"
    )
  }

  @Test("a secret error names the reference once and the file once")
  func secretOnce() {
    let e = SecretUnavailable(
      name: "secrets.youtube-tech-daily",
      reason: "secrets.youtube-tech-daily: secret file /run/secrets/yt is a FIFO; only a regular file is read")
    #expect(e.description == "secret secrets.youtube-tech-daily: secret file /run/secrets/yt is a FIFO; only a regular file is read")
  }
}
