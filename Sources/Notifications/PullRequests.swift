import Basics
import Crypto
import CurlHTTP
import DriverKit
import EmpireModel
import Foundation

/// The plan of a pull request's head as one comment per pull request, edited on each push, and
/// the commit status `ytempire/plan` (DESIGN A10 "Events").
public struct PullRequestPlan: Sendable, Equatable {
  public enum Forge: String, Sendable { case github, gitlab }
  public var forge: Forge
  public var number: Int
  /// The commit planned (40 hex digits).
  public var commit: String
  /// Inert markdown (PlanRenderer.markdown): no value from the repository is markup.
  public var markdown: String
  public var state: CommitStatus.State
  /// At most 140 characters.
  public var description: String
  public init(forge: Forge, number: Int, commit: String, markdown: String, state: CommitStatus.State, description: String) {
    self.forge = forge
    self.number = number
    self.commit = commit
    self.markdown = markdown
    self.state = state
    self.description = description
  }

  /// Opens the comment ytempire owns on a pull request: how it is found again on the next push.
  public static let marker = "<!-- ytempire-plan -->"
  /// GitHub's limit is 65,536 characters; what is longer is cut at a line, with a note.
  static let maxBody = 60_000
  /// Comments read looking for ours: 10 pages of 100.
  static let maxPages = 10

  var body: String {
    var text = markdown
    if text.count > Self.maxBody {
      let cut = text.prefix(Self.maxBody)
      text = String(cut[..<(cut.lastIndex(of: "\n") ?? cut.endIndex)])
      text += "\n\n*The plan is longer than a comment can hold; run `ytempire plan` on this commit for all of it.*\n"
    }
    return Self.marker + "\n" + text
  }
}

extension Notifier {
  /// Posts or edits the plan comment and sets `ytempire/plan` on every forge sink of the pull
  /// request's forge; a plan already posted for this commit (the same text) is not posted again.
  public func pullRequestPlan(_ p: PullRequestPlan) {
    for q in queuesFor(p.forge) {
      let key = "\(q.config.name)\u{1f}pr/\(p.number)"
      let state = "\(p.commit) \(sha256(p.markdown))"
      guard remember(key, state) else { continue }
      enqueue(
        q,
        Job(
          perform: { sink, w in await w.pullRequest(p, sink: sink) }, what: "plan of pull request \(p.number)", memoryKey: key,
          state: state))
    }
  }
}

extension Worker {
  func pullRequest(_ p: PullRequestPlan, sink: ResolvedSink) async -> Notifier.Outcome {
    do {
      try await upsertComment(p, sink: sink)
      let status = CommitStatus(commit: p.commit, state: p.state, description: p.description, context: "ytempire/plan")
      if let r = Payloads.request(status, sink: sink) { _ = try await send(r, what: "status of pull request \(p.number)") }
      return .delivered
    } catch {
      log(
        "plan comment on pull request \(p.number) to \(config.name) failed: \(Redaction.scrub("\(error)", secrets: sink.secrets, urls: true))"
      )
      return .failed
    }
  }

  private func headers(_ sink: ResolvedSink) -> HTTPHeaders {
    let token = String(decoding: sink.key ?? [], as: UTF8.self)
    if config.type == .gitlab { return ["PRIVATE-TOKEN": token, "Content-Type": "application/json", "User-Agent": "ytempire"] }
    return [
      "Authorization": "Bearer \(token)", "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
      "Content-Type": "application/json", "User-Agent": "ytempire",
    ]
  }

  /// Finds the comment that starts with the marker (GitHub issue comments, GitLab merge-request
  /// notes), edits it, or posts a new one; an edit refused (a comment someone else wrote with the
  /// marker) posts a new one.
  func upsertComment(_ p: PullRequestPlan, sink: ResolvedSink) async throws {
    guard let repo = config.repository else { return }
    let base =
      config.type == .gitlab
      ? "\(sink.url)/api/v4/projects/\(PercentEncoding.encode(repo))/merge_requests/\(p.number)/notes"
      : "\(sink.url)/repos/\(repo)/issues/\(p.number)/comments"
    let body = Payloads.json(.object(["body": .string(p.body)]))
    let timeout = config.timeout.swiftDuration
    var existing: Int64?
    for page in 1...PullRequestPlan.maxPages {
      let list = try await send(
        HTTPRequest(method: "GET", url: "\(base)?per_page=100&page=\(page)", headers: headers(sink), timeout: timeout), what: "comments")
      // The forge's answer is parsed as every answer is: depth-limited, into JSONValue.
      guard let items = (try? JSONValue.parse(list.body, maxDepth: 16))?.array else { break }
      existing = items.first { $0["body"]?.string?.hasPrefix(PullRequestPlan.marker) == true }?["id"]?.int
      if existing != nil || items.count < 100 { break }
    }
    if let id = existing {
      let url =
        config.type == .gitlab
        ? "\(base)/\(id)" : "\(sink.url)/repos/\(repo)/issues/comments/\(id)"
      do {
        _ = try await send(
          HTTPRequest(method: config.type == .gitlab ? "PUT" : "PATCH", url: url, headers: headers(sink), body: body, timeout: timeout),
          what: "comment edit")
        return
      } catch {
        log("editing comment \(id) on pull request \(p.number) failed; posting a new one")
      }
    }
    _ = try await send(HTTPRequest(method: "POST", url: base, headers: headers(sink), body: body, timeout: timeout), what: "comment")
  }
}

func sha256(_ s: String) -> String {
  SHA256.hash(data: Data(s.utf8)).map { String(format: "%02x", $0) }.joined()
}
