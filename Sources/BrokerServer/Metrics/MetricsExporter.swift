#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import Metrics
import Prometheus

/// Renders the broker's metrics as Prometheus text. The first exporter made in a process bootstraps
/// swift-metrics with a Prometheus backend (the bootstrap is process-wide and happens once).
public struct MetricsExporter: Sendable {
    private static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    let tokens: TokenManager

    public init(tokens: TokenManager) {
        _ = Self.registry
        self.tokens = tokens
    }

    /// The Prometheus exposition text, with the token gauges brought up to date first, `# HELP` on
    /// every metric, then build info and the process's own metrics.
    public func render() async -> String {
        let statuses = await self.tokens.statuses()
        var counts: [TokenState: Int] = [.valid: 0, .stale: 0, .expired: 0, .missing: 0]
        var failing: [String: [String: Int]] = [:]
        var soonestExpiry: Int64?
        for status in statuses {
            counts[status.state, default: 0] += 1
            failing[status.key.region, default: [:]][status.failureClass ?? "", default: 0] += 1
            if let expiry = status.expiresAt { soonestExpiry = min(soonestExpiry ?? expiry, expiry) }
        }
        for (state, count) in counts {
            Gauge(label: BrokerMetrics.tokens, dimensions: [("state", state.rawValue)]).record(count)
        }
        // Every (region, class) is written, zeros included, so a recovered class reads 0, not its last count.
        for (region, byClass) in failing {
            for failureClass in TokenError.failureClasses {
                Gauge(label: BrokerMetrics.failingCredentials, dimensions: [("region", region), ("class", failureClass)])
                    .record(byClass[failureClass] ?? 0)
            }
        }
        let now = Int64(time(nil))
        // No token held anywhere reads as 0: nothing will be served until one is fetched.
        Gauge(label: BrokerMetrics.soonestExpiry).record(max(0, (soonestExpiry ?? now) - now))
        var text: [UInt8] = []
        Self.registry.emit(into: &text)
        return MetricsHelp.annotate(String(decoding: text, as: UTF8.self))
            + "# HELP sobot_broker_build_info The broker's version; always 1.\n# TYPE sobot_broker_build_info gauge\n"
            + "sobot_broker_build_info{version=\"\(BrokerVersion.current)\"} 1\n"
            + ProcessMetrics.render()
    }
}
