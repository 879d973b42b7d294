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
        public var timeout: Duration = .seconds(5)
        /// The most connections this store opens at once.
        public var maximumConnections = 4

        public init() {}
    }

    public let url: DatabaseURL
    let pool: BoundedPool
    let clock: any BrokerClock
    private let environment: [String: String]
    private let options: Options
    let sealerState: Mutex<SecretSealer>

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
