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

    /// The Prometheus exposition text, with the token-state gauges brought up to date first.
    public func render() async -> String {
        var counts: [TokenState: Int] = [.valid: 0, .stale: 0, .expired: 0, .missing: 0]
        for status in await self.tokens.statuses() { counts[status.state, default: 0] += 1 }
        for (state, count) in counts {
            Gauge(label: BrokerMetrics.tokens, dimensions: [("state", state.rawValue)]).record(count)
        }
        var text: [UInt8] = []
        Self.registry.emit(into: &text)
        return String(decoding: text, as: UTF8.self)
    }
}
