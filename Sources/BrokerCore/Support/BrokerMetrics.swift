import Metrics

/// The broker's metric names, in one place. Recorded through swift-metrics; the daemon chooses the
/// backend (Prometheus), and without one they cost nothing.
public enum BrokerMetrics {
    /// JSON-RPC requests by method and outcome (`ok` or the error code).
    public static let rpcRequests = "sobot_broker_rpc_requests_total"
    /// Calls to Sobot, by region, endpoint and outcome (`ok`, `rejected`, `unavailable`), with latency.
    public static let upstreamCalls = "sobot_broker_upstream_call_seconds"
    /// `get_token` fetches, by region, outcome and kind (`background` or `on_demand`).
    public static let tokenFetches = "sobot_broker_token_fetches_total"
    /// Tokens by state (`valid`, `stale`, `expired`, `missing`), set when metrics are read.
    public static let tokens = "sobot_broker_tokens"
    /// Open client connections.
    public static let connections = "sobot_broker_connections"
    /// Keys whose last fetch failed, by region and `TokenError.failureClass`; set when metrics are read.
    public static let failingCredentials = "sobot_broker_failing_credentials"
    /// Seconds until the soonest expiry of any held token (0 when one has expired or none is held).
    public static let soonestExpiry = "sobot_broker_token_soonest_expiry_seconds"

    /// The `# HELP` text of each of the broker's metrics.
    public static let help: [String: String] = [
        rpcRequests: "JSON-RPC requests by method and outcome (ok or the error code).",
        upstreamCalls: "Calls to Sobot by region, endpoint and outcome (ok, rejected, unavailable), in seconds.",
        tokenFetches: "get_token fetches by region, outcome and kind (background or on_demand).",
        tokens: "Tokens held, by state (valid, stale, expired, missing).",
        connections: "Open client connections.",
        failingCredentials: "Credentials whose last token fetch failed, by region and failure class.",
        soonestExpiry: "Seconds until the soonest expiry of any held token; 0 when one has expired or none is held.",
    ]

    static func recordUpstreamCall(region: String, endpoint: String, outcome: String, duration: Duration) {
        Self.upstreamTimer(region: region, endpoint: endpoint, outcome: outcome).recordNanoseconds(duration.nanoseconds)
    }

    static func upstreamTimer(region: String, endpoint: String, outcome: String) -> Timer {
        Timer(label: Self.upstreamCalls, dimensions: [("region", region), ("endpoint", endpoint), ("outcome", outcome)])
    }

    static func recordTokenFetch(region: String, outcome: String, background: Bool) {
        Counter(label: Self.tokenFetches, dimensions: [("region", region), ("outcome", outcome), ("kind", background ? "background" : "on_demand")])
            .increment()
    }
}
