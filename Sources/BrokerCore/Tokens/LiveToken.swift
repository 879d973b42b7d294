/// The token currently held for one (tenant, region).
public struct LiveToken: Sendable, Equatable {
    public let value: String
    /// Unix seconds (when the request that produced it was sent: a conservative stamp).
    public let issuedAt: Double
    public let expiresAt: Double

    public init(value: String, issuedAt: Double, expiresAt: Double) {
        self.value = value
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }

    public var lifetime: Double { self.expiresAt - self.issuedAt }

    /// The contract's floor: a token is handed out with at least min(60 s, 10% of its lifetime) left
    /// while the upstream is healthy.
    public var servingMargin: Double { min(60, 0.1 * self.lifetime) }

    public func remaining(at now: Double) -> Double { self.expiresAt - now }

    /// Servable without reservation: enough life left.
    public func isFresh(at now: Double) -> Bool { self.remaining(at: now) >= self.servingMargin }

    /// Not yet expired: what is served, as a last resort, while the upstream is failing.
    public func isUnexpired(at now: Double) -> Bool { self.expiresAt > now }
}
