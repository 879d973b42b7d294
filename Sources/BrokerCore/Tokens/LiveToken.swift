/// The token currently held for one (tenant, region).
///
/// `issuedAt` and `expiresAt` are monotonic moments (see `BrokerClock`): what freshness and the
/// refresh schedule are decided on. `expiresAtUnix` is the same moment as a wall-clock stamp, fixed
/// when the token is issued: what clients and the store are given.
public struct LiveToken: Sendable, Equatable {
    public let value: String
    /// When the request that produced it was sent: a conservative stamp.
    public let issuedAt: Double
    public let expiresAt: Double
    public let expiresAtUnix: Int64

    public init(value: String, issuedAt: Double, expiresAt: Double, expiresAtUnix: Int64) {
        self.value = value
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.expiresAtUnix = expiresAtUnix
    }

    public var lifetime: Double { self.expiresAt - self.issuedAt }

    /// The contract's floor: a token is handed out with at least min(60 s, 10% of its lifetime) left
    /// while the upstream is healthy.
    public var servingMargin: Double { min(60, 0.1 * self.lifetime) }

    public func remaining(at now: Double) -> Double { self.expiresAt - now }

    /// The last moment it is servable without reservation, with its serving margin still left.
    public var freshUntil: Double { self.expiresAt - self.servingMargin }

    /// Servable without reservation: enough life left.
    public func isFresh(at now: Double) -> Bool { now <= self.freshUntil }

    /// Not yet expired: what is served, as a last resort, while the upstream is failing.
    public func isUnexpired(at now: Double) -> Bool { self.expiresAt > now }
}
