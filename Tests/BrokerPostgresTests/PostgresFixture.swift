import BrokerCore
import BrokerPostgres
import Logging
import TestSupport

/// What store tests share: a keyring, a clock, and stores on a fresh, migrated database of a private
/// server whose pool runs for as long as the test's body.
struct PostgresFixture: Sendable {
    let server: PostgresServer
    let database: String
    let keyring: MasterKeyring
    let clock: ManualClock

    /// Starts a server and creates a database on it, or returns nil when PostgreSQL is not installed
    /// (the test is then skipped). Call `stop()` in `defer`.
    static func start(database: String = "broker") async throws -> PostgresFixture? {
        guard let server = try await onThread({ try PostgresServer.startOrSkip() }) else { return nil }
        do {
            try await onThread { try server.createDatabase(database) }
            return PostgresFixture(server: server, database: database, keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 1)]), clock: ManualClock())
        } catch {
            server.stop()
            throw error
        }
    }

    func stop() { self.server.stop() }

    var url: DatabaseURL {
        get throws { try DatabaseURL(parsing: self.server.url(database: self.database)) }
    }

    /// Runs `body` with a store on the fixture's database (migrated first unless `migrate` is false).
    func withStore<Result>(
        keyring: MasterKeyring? = nil,
        clock: (any BrokerClock)? = nil,
        options: PostgresStore.Options = PostgresStore.Options(),
        migrate: Bool = true,
        _ body: (PostgresStore) async throws -> Result
    ) async throws -> Result {
        try await PostgresStore.withStore(
            url: try self.url,
            environment: [:],
            sealer: SecretSealer(keyring: keyring ?? self.keyring),
            clock: clock ?? self.clock,
            logger: Logger(label: "test"),
            options: options
        ) { store in
            if migrate { try await store.migrate() }
            return try await body(store)
        }
    }

    /// Runs `sql` on the fixture's database with psql, off the cooperative threads.
    @discardableResult
    func psql(_ sql: String) async throws -> String {
        let server = self.server
        let database = self.database
        return try await onThread { try server.psql(sql, database: database) }
    }
}

/// A tenant with one credential per region given as (region, appid, app key).
func tenant(_ id: String, name: String? = nil, _ credentials: (String, String, String)...) -> TenantDefinition {
    TenantDefinition(id: id, name: name, credentials: credentials.map { CredentialDefinition(region: $0.0, appid: $0.1, appKey: $0.2) })
}
