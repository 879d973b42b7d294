import BrokerCore
import BrokerPostgres
import Logging
import ServiceLifecycle

/// What a daemon's store brings with it: how tokens are fetched (single flight on one host, leases in
/// a cluster), the services that keep the daemon in step with other processes, and the cluster size.
struct DaemonBackend: Sendable {
    let store: any BrokerStore
    let issuer: any TokenIssuing
    /// The services to run beside the engine, given it and the reload they may trigger.
    let services: @Sendable (TokenManager, BrokerReload) -> [any Service]
    let cluster: ClusterView?
    /// Adopts the key file's current keyring (on SIGHUP); a single host's store keeps the one it loaded.
    let reloadKeyring: @Sendable (MasterKeyring) -> Void
    /// Stops what runs outside the service group (the PostgreSQL pool); after the group has stopped.
    let stop: @Sendable () async -> Void

    /// One host: the home's SQLite file, watched for other processes' commits.
    static func sqlite(home: BrokerHome, client: SobotClient, clock: any BrokerClock, logger: Logger) throws -> DaemonBackend {
        let database = try home.openStore()
        let store = AsyncSQLiteStore(database)
        return DaemonBackend(
            store: store,
            issuer: SobotTokenIssuer(store: database, client: client, clock: clock, logger: logger),
            services: { _, reload in [StoreWatcher(store: store, reload: reload, logger: logger)] },
            cluster: nil,
            reloadKeyring: { _ in },
            stop: {}
        )
    }

    /// A cluster: the shared PostgreSQL database, leases, a `LISTEN` watcher with a poll behind it,
    /// and a heartbeat. The pool starts at once (loading tokens needs it), before the service group.
    static func postgres(
        url: DatabaseURL,
        environment: [String: String],
        home: BrokerHome,
        client: SobotClient,
        clock: any BrokerClock,
        logger: Logger
    ) async throws -> DaemonBackend {
        let keyring = try home.loadKeyring()
        let store = PostgresStore(url: url, environment: environment, sealer: SecretSealer(keyring: keyring), clock: clock, logger: logger)
        let pool = Task { try? await store.run() }
        let horizon: UInt64
        do {
            try await store.migrate()
            try await store.recordSealingKeyIfUnset()
            // Read before the engine loads, so the first catch-up sees whatever commits meanwhile.
            horizon = try await store.changes(since: UInt64(Int64.max)).horizon
        } catch {
            pool.cancel()
            throw error
        }
        let memberID = ProcessIdentity.newMemberID()
        let outage = OutageLog(logger: logger)
        let heartbeat = ClusterHeartbeat(memberID: memberID, membership: store, keyIDs: { store.keyIDs }, outage: outage)
        logger.info("joining the cluster", metadata: ["broker": "\(memberID)", "database": "\(url.redacted())"])
        return DaemonBackend(
            store: store,
            issuer: LeasedTokenIssuer(
                leases: store,
                client: client,
                clock: clock,
                owner: memberID,
                // Longer than the upstream call's whole deadline, so a lease never lapses under a live call.
                leaseSeconds: client.timeouts.total + 5,
                logger: logger
            ),
            services: { tokens, reload in
                let follower = ChangeFollower(feed: store, tokens: tokens, horizon: horizon, outage: outage, logger: logger) {
                    try await reload()
                }
                return [ClusterWatcher(feed: store, follower: follower, outage: outage, logger: logger), heartbeat]
            },
            cluster: ClusterView(
                liveMembers: { heartbeat.members },
                members: { try await store.members(seenWithin: 30) },
                refreshers: { try await store.refreshers() }
            ),
            reloadKeyring: { store.reloadKeyring($0) },
            stop: {
                pool.cancel()
                _ = await pool.value
            }
        )
    }
}
