import BrokerCore
import Logging

/// Brings one broker's token cache and configuration up to date with what the other brokers
/// committed: tokens they stored (adopted when newer than the one held) and configuration changes
/// (reloaded). Fed by notifications, by a catch-up read after every (re)connection, and by a poll.
public actor ChangeFollower {
    private let feed: any ClusterFeed
    private let tokens: TokenManager
    private let reloadConfiguration: @Sendable () async throws -> Void
    private let outage: OutageLog
    private let logger: Logger
    /// Where the next catch-up read starts: see `ChangeBatch.horizon`.
    private var horizon: UInt64

    /// - Parameter horizon: read before the token engine loaded, so nothing committed since is missed.
    public init(
        feed: any ClusterFeed,
        tokens: TokenManager,
        horizon: UInt64,
        outage: OutageLog,
        logger: Logger,
        reloadConfiguration: @escaping @Sendable () async throws -> Void
    ) {
        self.feed = feed
        self.tokens = tokens
        self.horizon = horizon
        self.outage = outage
        self.logger = logger
        self.reloadConfiguration = reloadConfiguration
    }

    /// Reads everything committed since the last catch-up. Catch-ups run one at a time (this is an
    /// actor, and the horizon only moves forward once a read has been applied).
    public func catchUp() async {
        do {
            let batch = try await self.feed.changes(since: self.horizon)
            if batch.configurationChanged { try await self.reloadConfiguration() }
            for version in batch.tokens {
                try await self.follow(version.key, generation: version.generation)
            }
            self.horizon = max(self.horizon, batch.horizon)
            self.outage.succeeded()
        } catch {
            self.outage.failed(error)
        }
    }

    /// Handles one notification payload; one this version does not know is ignored.
    public func received(_ payload: String) async {
        do {
            switch ClusterChannel.parse(payload) {
            case .token(let key, let generation): try await self.follow(key, generation: generation)
            case .configuration: try await self.reloadConfiguration()
            case nil: self.logger.debug("ignored an unknown cluster notification")
            }
        } catch {
            self.outage.failed(error)
        }
    }

    /// Adopts the key's stored token when it is newer than the one held. Untracked keys are left to
    /// the configuration reload that tracks them.
    private func follow(_ key: TokenKey, generation: Int64) async throws {
        guard let held = await self.tokens.heldGeneration(of: key), generation > held else { return }
        let now = Int64(self.tokens.clock.unixNow())
        if let stored = try await self.feed.token(for: key, expiringAfter: now) {
            await self.tokens.adoptStored(stored)
        }
    }
}
