import CloudflareDriver
import ConfigStoreDriver
import DriverKit
import EmpireModel
import N8nDriver
import PrometheusDriver
import Reconciler
import VaultDriver
import YouTubeDriver

extension Workspace {
  /// The drivers the configuration enables, and what it leaves unreconciled.
  func drivers() throws(WorkspaceError) -> ([any Driver], [UnconfiguredIntegration]) {
    var drivers: [any Driver] = []
    var missing: [UnconfiguredIntegration] = []
    let i = config.integrations
    if let y = i.youtube {
      let secrets = config.secrets
      drivers.append(
        YouTubeDriver(
          config: YouTubeDriverConfig(
            endpoint: y.endpoint, tokenEndpoint: y.tokenEndpoint, clientId: secret(y.clientId), clientSecret: secret(y.clientSecret),
            credentials: { [self] name in secrets[name].map { secret($0) } }, cache: store)))
    } else {
      missing.append(.init(name: "youtube", kinds: [.channel], reason: "no integrations.youtube entry in the configuration"))
    }
    // The runtime config store defaults to a SQLite file in the state directory.
    let url = i.configStore?.url ?? "sqlite://\(config.stateDir)/runtime.sqlite"
    do {
      drivers.append(try ConfigStoreDriver(url: url, password: i.configStore?.password.map { secret($0) }))
    } catch {
      throw WorkspaceError(.integration, "integrations.configStore: \(error)")
    }
    if let n = i.n8n {
      drivers.append(
        N8nDriver(
          config: N8nDriverConfig(
            endpoint: n.endpoint, apiKey: secret(n.apiKey), credential: n.credential,
            configStoreIsPostgres: url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"))))
    } else {
      missing.append(.init(name: "n8n", kinds: [.schedule], reason: "no integrations.n8n entry in the configuration"))
    }
    if let c = i.cloudflare {
      drivers.append(CloudflareDriver(config: CloudflareDriverConfig(endpoint: c.endpoint, token: secret(c.token), accountId: c.accountId)))
    } else {
      missing.append(.init(name: "cloudflare", kinds: [.cdnZone], reason: "no integrations.cloudflare entry in the configuration"))
    }
    if let v = i.vault {
      drivers.append(
        VaultDriver(
          config: VaultDriverConfig(
            endpoint: v.endpoint, token: secret(v.token),
            auditFilePath: v.auditFilePath ?? VaultDriverConfig.defaultAuditFilePath)))
    } else {
      missing.append(.init(name: "vault", kinds: [.securityPolicy], reason: "no integrations.vault entry in the configuration"))
    }
    if let p = i.prometheus {
      drivers.append(PrometheusDriver(config: PrometheusDriverConfig(endpoint: p.endpoint, rulesFile: p.rulesFile, promtool: p.promtool)))
    } else {
      missing.append(.init(name: "prometheus", kinds: [.monitor], reason: "no integrations.prometheus entry in the configuration"))
    }
    return (drivers, missing)
  }
}
