import BrokerCore
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The broker's durable state in PostgreSQL, shared by every broker of a cluster: tenants, their sealed
/// credentials, each key's sealed token with its refresh lease, access rules, and the brokers' heartbeats.
///
/// Every secret is sealed with the same `SecretSealer` and row binding as in SQLite before it is bound to
/// a statement, so the database, its WAL and its backups never hold a plaintext key or token. Token
/// stamps are kept on the database's clock, which every broker shares, and rebased to the caller's wall
/// clock as they are read.
///
/// The store is a `Service`: `run()` runs its connection pool, and every call needs it running (put the
/// store in a `ServiceGroup`, or use `withStore` for a one-shot command). Every call is bounded by
/// `Options.timeout`, and fails with a one-line `PostgresStoreError` when the database does not answer.
public final class PostgresStore: BrokerStore, Service {
    public struct Options: Sendable {
        /// How long a call may wait for a pooled connection, and then for each statement's answer.
        /// The server is asked to give up on a statement after the same time (`statement_timeout`), so
        /// no abandoned statement holds its locks for longer.
        public var timeout: Duration = .seconds(10)
        /// The most connections this store opens at once.
        public var maximumConnections = 4

        public init() {}
    }

    public let url: DatabaseURL
    let pool: BoundedPool
    let clock: any BrokerClock
    let logger: Logger
    private let environment: [String: String]
    private let options: Options
    private let sealerState: Mutex<SecretSealer>
    /// The version `sealing_key` records, as last read: what writers seal with (see `writeSealer()`).
    private let recordedSealingKey = Mutex<UInt32?>(nil)
    /// Concurrent lease claims and completions, gathered into one statement per batch.
    let leaseClaims = RequestCoalescer<LeaseRequest, LeaseClaim>(maximumBatch: 512)
    let leaseCompletions = RequestCoalescer<LeaseCompletion, Int64?>(maximumBatch: 512)

    /// - Parameters:
    ///   - environment: where `PGPASSWORD` is looked up when the URL carries no password.
    ///   - sealer: seals and opens every secret; `resealAll` replaces it with the rotated keyring.
    ///   - clock: the caller's wall clock, that token stamps are rebased to.
    public init(
        url: DatabaseURL,
        environment: [String: String],
        sealer: SecretSealer,
        clock: any BrokerClock,
        logger: Logger,
        options: Options = Options()
    ) {
        self.url = url
        self.environment = environment.filter { $0.key == "PGPASSWORD" }
        self.options = options
        self.clock = clock
        self.logger = logger
        self.sealerState = Mutex(sealer)
        // postgres-nio traces every row it receives: keep it at warnings, so no sealed secret is logged.
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .warning)
        var configuration = url.clientConfiguration(environment: environment)
        configuration.options.connectTimeout = options.timeout
        configuration.options.maximumConnections = options.maximumConnections
        configuration.options.additionalStartupParameters.append(("statement_timeout", "\(Int(options.timeout.seconds * 1000))"))
        let client = PostgresClient(configuration: configuration, backgroundLogger: quiet)
        let environment = self.environment
        let poolLogger = quiet
        self.pool = BoundedPool(client: client, timeout: options.timeout, logger: poolLogger) {
            await Self.diagnoseConnection(url: url, environment: environment, timeout: options.timeout, logger: poolLogger)
        }
    }

    public var backend: StoreBackend { .postgres }

    /// Runs the connection pool until the task is cancelled or the service group shuts down.
    public func run() async throws {
        await self.pool.client.run()
    }

    /// Runs `body` with a store whose pool runs meanwhile, and stops the pool after it: for commands
    /// that use the database once and exit.
    public static func withStore<Result>(
        url: DatabaseURL,
        environment: [String: String],
        sealer: SecretSealer,
        clock: any BrokerClock,
        logger: Logger,
        options: Options = Options(),
        _ body: (PostgresStore) async throws -> Result
    ) async throws -> Result {
        let store = PostgresStore(url: url, environment: environment, sealer: sealer, clock: clock, logger: logger, options: options)
        return try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
            group.addTask { try await store.run() }
            defer { group.cancelAll() }
            return try await body(store)
        }
    }

    /// Creates or upgrades the schema (see `PostgresSchema`); safe to run from several brokers at once.
    public func migrate() async throws {
        try await PostgresSchema.migrate(self.pool)
    }

    /// The configuration of a dedicated connection to this database, for the daemon's `LISTEN`.
    public func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var configuration = try self.url.connectionConfiguration(environment: self.environment)
        configuration.options.connectTimeout = TimeAmount(self.options.timeout)
        return configuration
    }

    /// The pool closes when `run()` ends; there is nothing else to release.
    public func close() async {}

    /// `configuration_version`: bumped by every committed change to tenants, credentials or access rules.
    public func changeMarker() async throws -> Int64 {
        try await self.pool.withSession("read the configuration version") { session in
            try await session.query("SELECT version FROM configuration_version")[0].decode(Int64.self)
        }
    }

    // MARK: Sealing

    /// The sealer of the keyring this store last loaded or rotated to: it opens every version the key
    /// file holds.
    var sealer: SecretSealer { self.sealerState.withLock { $0 } }

    /// The master-key versions this store's keyring holds: what the broker's heartbeat advertises.
    public var keyIDs: [UInt32] { self.sealer.keyring.keys.map(\.id) }

    /// Replaces the keyring with the key file's current contents (`SIGHUP` after a new version was
    /// distributed): secrets sealed with versions it adds can then be opened, and a rotation to one
    /// of them is no longer refused on this broker's account.
    public func reloadKeyring(_ keyring: MasterKeyring) {
        self.adopt(keyring)
    }

    /// The sealer for writing secrets: it seals with the version `sealing_key` records, which every
    /// broker of the cluster holds, not with a newer one only this host's key file may have (`key
    /// add`). With no version recorded yet it seals with the keyring's newest. Throws, naming the
    /// version, when the key file lacks the recorded one.
    func writeSealer() async throws -> SecretSealer {
        let recorded: UInt32?
        if let cached = self.recordedSealingKey.withLock({ $0 }) {
            recorded = cached
        } else {
            let rows = try await self.pool.withSession("read the sealing key version") { session in
                try await session.query("SELECT key_id FROM sealing_key")
            }
            recorded = try rows.first.map { UInt32(clamping: try $0.decode(Int64.self)) }
            self.recordedSealingKey.withLock { $0 = recorded }
        }
        let sealer = self.sealer
        guard let recorded else { return sealer }
        do throws(SealingError) {
            return try SecretSealer(keyring: sealer.keyring, sealingKeyID: recorded)
        } catch {
            throw StoreError.keyVersionMissing(recorded)
        }
    }

    /// Records the keyring's newest version as the one to seal with, unless one is recorded already:
    /// `init` and `serve` do it, so that a version added to one host's key file later (`key add`) is
    /// not sealed with before every broker holds it.
    func forgetRecordedSealingKey() {
        self.recordedSealingKey.withLock { $0 = nil }
    }

    public func recordSealingKeyIfUnset() async throws {
        let active = Int64(self.sealer.keyring.active.id)
        try await self.pool.withSession("record the sealing key version") { session in
            try await session.execute("INSERT INTO sealing_key (singleton, key_id) VALUES (1, \(active)) ON CONFLICT (singleton) DO NOTHING")
        }
        self.recordedSealingKey.withLock { $0 = nil }
    }

    func adopt(_ keyring: MasterKeyring) {
        self.sealerState.withLock { $0 = SecretSealer(keyring: keyring) }
    }

    /// Throws when `key rotate` has re-sealed the store with a newer key version than `sealer`'s, which
    /// may already be dropped from the key file. Call it first in a transaction that writes a secret:
    /// the row lock (FOR SHARE) keeps a rotation out until the transaction ends, and taking it before
    /// any credentials row keeps the lock order of `resealAll`, so the two cannot deadlock.
    func requireCurrentKey(_ sealer: SecretSealer, session: Session) async throws {
        let loaded = sealer.sealingKeyID
        let rows = try await session.query("SELECT key_id FROM sealing_key FOR SHARE")
        if let current = try rows.first?.decode(Int64.self), current != Int64(loaded) {
            self.recordedSealingKey.withLock { $0 = nil }
            throw StoreError.keyRotated(loaded: loaded, current: current)
        }
    }

    /// Bumps `configuration_version` and tells every listening broker, both with the transaction.
    static func bumpConfiguration(session: Session) async throws {
        try await session.execute(
            """
            WITH bumped AS (
                UPDATE configuration_version SET version = version + 1, changed_xid = pg_current_xact_id() RETURNING version
            )
            SELECT pg_notify(\(ClusterChannel.name), \(ClusterChannel.configurationPayload)) FROM bumped
            """
        )
    }

    // MARK: Connection diagnosis

    /// Why no pooled connection came: one direct attempt, bounded by `timeout`, and what it met.
    private static func diagnoseConnection(url: DatabaseURL, environment: [String: String], timeout: Duration, logger: Logger) async -> String {
        do {
            var configuration = try url.connectionConfiguration(environment: environment)
            configuration.options.connectTimeout = TimeAmount(timeout)
            let attempt = configuration
            let connected: Bool? = try await withTimeLimit(timeout) {
                let connection = try await PostgresConnection.connect(configuration: attempt, id: 0, logger: logger)
                try? await connection.close()
                return true
            }
            return connected == nil ? "\(url.redacted()) accepts connections but does not answer" : "every pooled connection stayed busy"
        } catch {
            return PostgresStoreError.explain(error)
        }
    }
}
