import YAMLKit

public enum WorkflowTemplate: String, Sendable, CaseIterable, Codable {
  case contentGeneration = "content-generation"
  case analyticsCollection = "analytics-collection"
}

public struct ScheduleSpec: Sendable {
  public enum Workflow: Sendable {
    case template(WorkflowTemplate)
    case file(String)
  }
  public enum Trigger: Sendable {
    case every(ModelDuration)
    case cron(CronExpression)
  }
  public enum Targets: Sendable {
    case channels([Reference])
    case selector(matchLabels: [String: String], mark: SourceMark)
  }
  /// A template parameter value.
  public enum Parameter: Sendable, Equatable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case duration(ModelDuration)
    case list([String])
  }

  public var workflow: Workflow
  public var trigger: Trigger
  public var timezone: String
  public var targets: Targets
  public var parameters: [String: Parameter]
  public var services: [String: String]
  public var timeout: ModelDuration?
  public var active: Bool
  /// Where `workflowFile` is written (for diagnostics about the file).
  public var workflowMark: SourceMark? = nil
}

extension NodeDecoder {
  func scheduleSpec(_ node: YAMLNode, _ path: String) -> ScheduleSpec? {
    guard
      let f = mapping(
        node, path,
        known: [
          "workflow", "workflowFile", "trigger", "channels", "channelSelector",
          "parameters", "services", "timeout", "active",
        ])
    else { return nil }
    requireFields(f, ["trigger"])
    exactlyOne(f, "workflow", "workflowFile")
    exactlyOne(f, "channels", "channelSelector")

    var workflow: ScheduleSpec.Workflow?
    if let t = enumeration(f, "workflow", WorkflowTemplate.self) { workflow = .template(t) }
    if let file = relativePath(f, "workflowFile", suffix: ".json") { workflow = workflow ?? .file(file) }

    var trigger: ScheduleSpec.Trigger?
    var timezone = "UTC"
    if let tn = f.value("trigger"), let t = mapping(tn, f.sub("trigger"), known: ["every", "cron", "timezone"]) {
      exactlyOne(t, "every", "cron")
      if let d = duration(t, "every") {
        if d.milliseconds < 60_000 {
          diags.error(.outOfRange, "\(t.sub("every")) is \(d); schedules run at most once a minute", at: t.value("every")!.mark)
        } else {
          trigger = .every(d)
        }
      }
      if let cn = t.value("cron"), let s = string(cn, t.sub("cron")) {
        do {
          let c = try CronExpression(parsing: s)
          if trigger == nil { trigger = .cron(c) }
          if c.canNeverFire {
            diags.warning(
              .cronNeverFires, "\(t.sub("cron")) '\(s)' can never fire: no chosen month has the chosen day of the month", at: cn.mark)
          }
        } catch {
          diags.error(.invalidCron, "\(t.sub("cron")) '\(s)': \(error.message)", at: cn.mark)
        }
      }
      timezone = self.timezone(t, "timezone") ?? "UTC"
    }

    var targets: ScheduleSpec.Targets?
    if let refs = nameList(f, "channels") {
      checkUnique(refs, in: f.sub("channels"), what: "channel")
      targets = .channels(refs)
    }
    if let sn = f.value("channelSelector"), let s = mapping(sn, f.sub("channelSelector"), known: ["matchLabels"]) {
      requireFields(s, ["matchLabels"])
      if let labels = stringMap(s, "matchLabels", keyCheck: Names.labelKeyProblem) {
        targets = targets ?? .selector(matchLabels: labels, mark: sn.mark)
      }
    }

    var parameters: [String: ScheduleSpec.Parameter] = [:]
    if let pn = f.value("parameters") {
      let p = f.sub("parameters")
      switch workflow {
      case .template(.contentGeneration):
        if let m = mapping(pn, p, known: ["viralityThreshold", "style", "duration", "voice", "visualStyle", "readyWebhook"]) {
          if let v = number(m, "viralityThreshold", min: 0, max: 1) { parameters["viralityThreshold"] = .number(v) }
          if let v = pattern(m, "style", what: "an identifier such as educational", Names.isIdentifier) { parameters["style"] = .string(v) }
          if let v = duration(m, "duration") { parameters["duration"] = .duration(v) }
          if let v = enumeration(m, "voice", Voice.self) { parameters["voice"] = .string(v.rawValue) }
          if let v = pattern(m, "visualStyle", what: "an identifier such as modern_dynamic", Names.isIdentifier) {
            parameters["visualStyle"] = .string(v)
          }
          if let v = pattern(m, "readyWebhook", what: "a webhook suffix (lowercase letters, digits, '-')", Names.isValid) {
            parameters["readyWebhook"] = .string(v)
          }
        }
      case .template(.analyticsCollection):
        if let m = mapping(pn, p, known: ["metrics", "dimensions", "lookback", "batchSize", "retention"]) {
          if let v = stringList(m, "metrics") { parameters["metrics"] = .list(v) }
          if let v = stringList(m, "dimensions") { parameters["dimensions"] = .list(v) }
          if let v = duration(m, "lookback") { parameters["lookback"] = .duration(v) }
          if let v = int(m, "batchSize", min: 1) { parameters["batchSize"] = .number(Double(v)) }
          if let v = duration(m, "retention") { parameters["retention"] = .duration(v) }
        }
      case .file, .none:
        if let es = entries(pn, p) {
          for e in es {
            let ep = "\(p).\(e.key)"
            if isRejected(e.value) { continue }
            guard case .scalar(let s, let style) = e.value.value else {
              diags.error(.typeMismatch, "\(ep) must be a string, number or boolean, found \(describe(e.value))", at: e.value.mark)
              continue
            }
            if style == .plain {
              switch CoreScalar.resolve(s) {
              case .bool(let b): parameters[e.key] = .bool(b)
              case .int(let i): parameters[e.key] = .number(Double(i))
              case .float(let d) where d.isFinite: parameters[e.key] = .number(d)
              case .float:
                // n8n parameters are JSON, which has no NaN or infinity.
                diags.error(
                  .invalidValue,
                  "\(ep) is \(describe(e.value)); NaN and infinity are not allowed, write a finite number or quote it as a string",
                  at: e.value.mark)
              default: parameters[e.key] = .string(s)
              }
            } else {
              parameters[e.key] = .string(s)
            }
          }
        }
      }
    }

    let services = serviceMap(f, "services") { self.url($0, $1) } ?? [:]
    let timeout = duration(f, "timeout")
    let active = bool(f, "active") ?? true

    guard let workflow, let trigger, let targets else { return nil }
    return ScheduleSpec(
      workflow: workflow, trigger: trigger, timezone: timezone, targets: targets,
      parameters: parameters, services: services, timeout: timeout, active: active,
      workflowMark: f.value("workflowFile")?.mark)
  }
}
