/// The numbers that govern refresh, retry and start-up pacing. Defaults follow the contract.
public struct TokenPolicy: Sendable {
    /// Background refresh happens at this fraction of a token's lifetime, chosen per key.
    public var refreshWindow: ClosedRange<Double> = 0.5...0.75
    /// Random jitter, as a fraction of the window, added to each key's fixed point.
    public var refreshJitter: Double = 0.04
    /// Recoverable failures back off exponentially with full jitter between these bounds (seconds).
    public var backoffBase: Double = 1
    public var backoffCap: Double = 300
    /// How long a non-recoverable rejection (bad signature, no API configuration, edition) is held
    /// before the upstream is asked again.
    public var rejectionHold: Double = 600
    /// Seconds before a key whose refresh could not be coordinated (the cluster's database is away)
    /// is tried again, drawn at random so that keys do not retry together.
    public var coordinationRetry: ClosedRange<Double> = 2...5
    /// Background acquisition per region: at most this many starts per second…
    public var backgroundRatePerRegion: Double = 20
    /// …and at most this many in flight. On-demand requests bypass both.
    public var backgroundConcurrencyPerRegion: Int = 4

    public init() {}
}
