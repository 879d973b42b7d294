import BrokerCore
import Logging
import Metrics
import Synchronization

/// What every connection of one server shares, read from any of its loops' threads.
final class ConnectionServices: Sendable {
    let dispatcher: RPCDispatcher
    /// Read directly by the fast path for `token.get`.
    let cache: TokenCache
    let clock: any BrokerClock
    let access: AccessControl
    let audit: AuditLog?
    let logger: Logger
    let maximumLineLength: Int
    let maximumConnections: Int
    /// `token.get`s answered by the fast path (the dispatcher counts the rest).
    let fastTokenGets = Counter(label: BrokerMetrics.rpcRequests, dimensions: [("method", "token.get"), ("code", "ok")])
    private let connectionsGauge = Gauge(label: BrokerMetrics.connections)
    private let openConnections = Atomic<Int>(0)

    init(
        dispatcher: RPCDispatcher,
        cache: TokenCache,
        clock: any BrokerClock,
        access: AccessControl,
        audit: AuditLog?,
        logger: Logger,
        maximumLineLength: Int,
        maximumConnections: Int
    ) {
        self.dispatcher = dispatcher
        self.cache = cache
        self.clock = clock
        self.access = access
        self.audit = audit
        self.logger = logger
        self.maximumLineLength = maximumLineLength
        self.maximumConnections = maximumConnections
    }

    /// Counts a new connection; false (and not counted) when that would pass the limit.
    func admitConnection() -> Bool {
        let count = self.openConnections.add(1, ordering: .relaxed).newValue
        guard count <= self.maximumConnections else {
            self.openConnections.subtract(1, ordering: .relaxed)
            return false
        }
        self.connectionsGauge.record(count)
        return true
    }

    func connectionClosed() {
        self.connectionsGauge.record(self.openConnections.subtract(1, ordering: .relaxed).newValue)
    }
}
