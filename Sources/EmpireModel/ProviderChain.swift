import YAMLKit

public struct ProviderChainSpec: Sendable {
  public struct Defaults: Sendable {
    public var temperature: Double?
    public var maxTokens: Int?
    public var timeout: ModelDuration?
  }
  public enum AudioFormat: String, Sendable, CaseIterable { case mp3, wav, ogg }
  public struct Audio: Sendable {
    public var sampleRate: Int?
    public var bitDepth: Int?
    public var channels: Int?
    public var format: AudioFormat?
    public var bitrate: String?
    public var maxCharsPerRequest: Int?
  }
  public struct Cost: Sendable, Equatable {
    public var inputPer1kTokens: Double?
    public var outputPer1kTokens: Double?
    public var per1kChars: Double?
    /// Price per image by size ("1024x1024"); a single price is stored under "*".
    public var perImage: [String: Double]?
  }
  public struct HealthCheck: Sendable {
    public var path: String
    public var interval: ModelDuration?
  }
  public struct Provider: Sendable {
    public var name: String
    public var model: String?
    public var endpoint: String
    public var weight: Double
    public var credentials: String?
    public var rateLimit: Reference?
    public var cost: Cost?
    public var voices: [Voice: String]?
    public var healthCheck: HealthCheck?
    public var cacheTTL: ModelDuration?
    public var timeout: ModelDuration?
    public var mark: SourceMark
  }

  public var capability: Capability
  public var cacheTTL: ModelDuration?
  public var defaults: Defaults?
  public var audio: Audio?
  public var providers: [Provider]
}

extension NodeDecoder {
  func providerChainSpec(_ node: YAMLNode, _ path: String) -> ProviderChainSpec? {
    guard let f = mapping(node, path, known: ["capability", "cacheTTL", "defaults", "audio", "providers"]) else { return nil }
    requireFields(f, ["capability", "providers"])
    let capability = enumeration(f, "capability", Capability.self)
    let cacheTTL = duration(f, "cacheTTL")

    var defaults: ProviderChainSpec.Defaults?
    if let n = f.value("defaults"), let d = mapping(n, f.sub("defaults"), known: ["temperature", "maxTokens", "timeout"]) {
      defaults = .init(
        temperature: number(d, "temperature", min: 0, max: 2), maxTokens: int(d, "maxTokens", min: 1), timeout: duration(d, "timeout"))
    }

    var audio: ProviderChainSpec.Audio?
    if let n = f.value("audio"),
      let a = mapping(n, f.sub("audio"), known: ["sampleRate", "bitDepth", "channels", "format", "bitrate", "maxCharsPerRequest"])
    {
      if let capability, capability != .tts {
        diags.error(
          .invalidValue, "\(f.sub("audio")) only applies to tts chains; this chain's capability is \(capability.rawValue)",
          at: f.keyMark("audio")!)
      }
      audio = .init(
        sampleRate: int(a, "sampleRate", min: 8000, max: 192_000),
        bitDepth: int(a, "bitDepth", min: 8, max: 32),
        channels: int(a, "channels", min: 1, max: 2),
        format: enumeration(a, "format", ProviderChainSpec.AudioFormat.self),
        bitrate: pattern(a, "bitrate", what: "a bitrate such as 128k") { s in
          s.hasSuffix("k") && s.count > 1 && s.dropLast().allSatisfy(\.isNumber)
        },
        maxCharsPerRequest: int(a, "maxCharsPerRequest", min: 1))
    }

    var providers: [ProviderChainSpec.Provider] = []
    if let items = list(f, "providers") {
      if items.isEmpty { diags.error(.outOfRange, "\(f.sub("providers")) must list at least one provider", at: f.value("providers")!.mark) }
      for (p, n) in items {
        if let prov = provider(n, p, capability: capability) { providers.append(prov) }
      }
      checkUnique(providers.map { Reference(name: $0.name, mark: $0.mark) }, in: f.sub("providers"))
    }
    guard let capability else { return nil }
    return ProviderChainSpec(capability: capability, cacheTTL: cacheTTL, defaults: defaults, audio: audio, providers: providers)
  }

  private func provider(_ n: YAMLNode, _ p: String, capability: Capability?) -> ProviderChainSpec.Provider? {
    guard
      let m = mapping(
        n, p,
        known: [
          "name", "model", "endpoint", "weight", "credentials", "rateLimit", "cost",
          "voices", "healthCheck", "cacheTTL", "timeout",
        ])
    else { return nil }
    requireFields(m, ["name", "endpoint", "weight"])
    let name = self.name(m, "name")
    let model = string(m, "model", maxLength: 200, minLength: 1)
    let endpoint = url(m, "endpoint")
    let weight = number(m, "weight", min: 0, max: 1, exclusiveMin: true)
    let credentials = secretRef(m, "credentials")
    let rateLimit = self.name(m, "rateLimit")

    var cost: ProviderChainSpec.Cost?
    if let cn = m.value("cost"),
      let c = mapping(cn, m.sub("cost"), known: ["inputPer1kTokens", "outputPer1kTokens", "per1kChars", "perImage"])
    {
      var perImage: [String: Double]?
      if let pi = c.value("perImage") {
        if case .mapping = pi.value, let es = entries(pi, c.sub("perImage")) {
          var map: [String: Double] = [:]
          for e in es {
            let parts = e.key.split(separator: "x")
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else {
              diags.error(.invalidValue, "image size '\(e.key)' in \(c.sub("perImage")) must be WIDTHxHEIGHT such as 1024x1024", at: e.mark)
              continue
            }
            if let v = number(e.value, "\(c.sub("perImage")).\(e.key)", min: 0) { map[e.key] = v }
          }
          perImage = map
        } else if let v = number(pi, c.sub("perImage"), min: 0) {
          perImage = ["*": v]
        }
      }
      cost = .init(
        inputPer1kTokens: number(c, "inputPer1kTokens", min: 0),
        outputPer1kTokens: number(c, "outputPer1kTokens", min: 0),
        per1kChars: number(c, "per1kChars", min: 0),
        perImage: perImage)
    }

    var voices: [Voice: String]?
    if let vn = m.value("voices") {
      if let capability, capability != .tts {
        diags.error(
          .invalidValue, "\(m.sub("voices")) only applies to tts providers; this chain's capability is \(capability.rawValue)",
          at: m.keyMark("voices")!)
      }
      if let vm = mapping(vn, m.sub("voices"), known: Voice.allCases.map(\.rawValue)) {
        var out: [Voice: String] = [:]
        for v in Voice.allCases {
          if let s = string(vm, v.rawValue, maxLength: 200, minLength: 1) { out[v] = s }
        }
        voices = out
      }
    }

    var health: ProviderChainSpec.HealthCheck?
    if let hn = m.value("healthCheck"), let h = mapping(hn, m.sub("healthCheck"), known: ["path", "interval"]) {
      let path = pattern(h, "path", what: "a path starting with '/'") { $0.hasPrefix("/") && !$0.contains(" ") }
      health = .init(path: path ?? "/", interval: duration(h, "interval"))
    }
    let cacheTTL = duration(m, "cacheTTL")
    let timeout = duration(m, "timeout")
    guard let name, let endpoint, let weight else { return nil }
    return .init(
      name: name.name, model: model, endpoint: endpoint, weight: weight, credentials: credentials, rateLimit: rateLimit,
      cost: cost, voices: voices, healthCheck: health, cacheTTL: cacheTTL, timeout: timeout, mark: name.mark)
  }
}
