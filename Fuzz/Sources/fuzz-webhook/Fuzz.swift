// Fuzz target: the webhook gate of `serve` (GitHub HMAC signature, delivery-id and body replay,
// the push payload's ref; GitLab token, event and body replay)
//
// Input: one control byte, header lines (`name: value`, \n-separated), a 0xFF byte, the body.
// Control bits: 0 GitLab instead of GitHub; 1 sign the body with the gate's secret (so the fuzzer
// gets past the signature check to the delivery and the payload; otherwise the header given is
// checked as is, e.g. API-NOTES.md's test vector); 2–3 the configured ref (main, refs/heads/main,
// none, a tag). Every delivery is offered twice, and a GitHub one a third time under a new
// delivery id: the repeats of one that got through must be refused as replays.
import FuzzDriver
import Webhooks

let secret = Array("It's a Secret to Everybody".utf8)

func fuzzOne(_ bytes: [UInt8]) {
    guard let control = bytes.first else { return }
    let rest = bytes.dropFirst()
    let split = rest.firstIndex(of: 0xFF) ?? rest.endIndex
    let body = Array(rest[split...].dropFirst())
    var headers: [String: String] = [:]
    for line in rest[rest.startIndex..<split].split(separator: UInt8(ascii: "\n")) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
        let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased()
        let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: " ")
        headers[name] = value
    }
    let ref: String? = switch (control >> 2) & 3 { case 0: "main"; case 1: "refs/heads/main"; case 2: nil; default: "v1.0" }
    let gate = WebhookGate(githubSecret: secret, gitlabToken: secret, ref: ref)
    if control & 1 == 0 {
        if control & 2 != 0 { headers["x-hub-signature-256"] = WebhookGate.githubSignature(secret: secret, body: body) }
        let first = gate.github(headers: headers, body: body)
        let again = gate.github(headers: headers, body: body)
        _ = first.status
        // A delivery that got past the signature and the replay check once is refused the second time.
        if case .trigger = first, again.status != 409 { fatalError("replayed GitHub delivery was not refused: \(again)") }
        if case .pullRequest(let pr) = first {
            if again.status != 409 { fatalError("replayed pull_request delivery was not refused: \(again)") }
            // What is planned is a well-formed ref and commit, whatever the body said.
            if pr.number < 1 || pr.head.utf8.count != 40 || pr.ref != "refs/pull/\(pr.number)/head" { fatalError("bad pull request: \(pr)") }
        }
        if case .accepted = first, headers["x-github-delivery"].map({ !$0.isEmpty }) == true, again.status != 409 {
            fatalError("replayed GitHub delivery was not refused: \(again)")
        }
        // The same signed body under another delivery id is a replay too.
        headers["x-github-delivery"] = "fuzz-other-" + (headers["x-github-delivery"] ?? "")
        let renamed = gate.github(headers: headers, body: body)
        if first.status < 300, headers["x-github-delivery"]!.utf8.count <= 128, renamed.status != 409 {
            fatalError("the same body under a new delivery id was not refused: \(renamed)")
        }
    } else {
        if control & 2 != 0 { headers["x-gitlab-token"] = String(decoding: secret, as: UTF8.self) }
        let verdict = gate.gitlab(headers: headers, body: body)
        if case .trigger = verdict, gate.gitlab(headers: headers, body: body).status != 409 {
            fatalError("replayed GitLab push was not refused")
        }
        if case .pullRequest = verdict, gate.gitlab(headers: headers, body: body).status != 409 {
            fatalError("replayed GitLab merge request was not refused")
        }
    }
}

extension String {
    func trimmingCharacters(in c: Character) -> String {
        var s = Substring(self)
        while s.first == c { s = s.dropFirst() }
        while s.last == c { s = s.dropLast() }
        return String(s)
    }
}

@main struct Fuzz {
    static func main() { fuzzMain(fuzzOne) }
}
