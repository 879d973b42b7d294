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
    /// Keys other brokers stored a token for, with the newest generation heard of, not yet read.
    private var pending: [TokenKey: Int64] = [:]
    private var draining = false

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
                self.pending[version.key] = max(self.pending[version.key] ?? 0, version.generation)
            }
            try await self.drain()
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
            case .token(let key, let generation):
                self.pending[key] = max(self.pending[key] ?? 0, generation)
                try await self.drain()
            case .configuration: try await self.reloadConfiguration()
            case nil: self.logger.debug("ignored an unknown cluster notification")
            }
        } catch {
            self.outage.failed(error)
        }
    }

    /// Adopts every pending key's stored token that is newer than the one held, a batch at a time:
    /// notifications that arrive while a batch is read join the next one, so a burst of refreshes on
    /// other brokers costs a few queries here, not one per key.
    private func drain() async throws {
        guard !self.draining else { return }
        self.draining = true
        defer { self.draining = false }
        while !self.pending.isEmpty {
            let batch = self.pending
            self.pending = [:]
            do {
                let wanted = await self.tokens.newer(batch)
                let now = Int64(self.tokens.clock.unixNow())
                for start in stride(from: 0, to: wanted.count, by: 1000) {
                    let keys = Array(wanted[start..<min(start + 1000, wanted.count)])
                    await self.tokens.adoptStored(try await self.feed.tokens(for: keys, expiringAfter: now))
                }
            } catch {
                // Read again next time (the poll's overlap would find them too).
                self.pending.merge(batch) { max($0, $1) }
                throw error
            }
        }
    }
}
