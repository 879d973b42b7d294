import ArgumentParser
import BrokerCore
import BrokerPostgres
import Logging

/// Where the broker's state lives: the home's SQLite file, or a cluster's PostgreSQL database.
enum StoreLocation {
    case sqlite
    case postgres(DatabaseURL)
}

extension HomeOptions {
    /// `--database-url`, else `SOBOT_BROKER_DATABASE_URL`, else the config file's `database-url`: a
    /// `postgres://` or `postgresql://` URL selects PostgreSQL. A password is taken from the environment
    /// or the (private) config file, never from argv (where `ps` shows it).
    var storeLocation: StoreLocation {
        get throws {
            if let text = self.databaseURL {
                let url = try Self.parse(text, from: "--database-url")
                guard !url.hasPassword else {
                    throw ValidationError(
                        "--database-url must not hold a password (argv is visible to every user): put it in SOBOT_BROKER_DATABASE_URL or PGPASSWORD"
                    )
                }
                return .postgres(url)
            }
            if let text = Environment.variables["SOBOT_BROKER_DATABASE_URL"], !text.isEmpty {
                return .postgres(try Self.parse(text, from: "SOBOT_BROKER_DATABASE_URL"))
            }
            let config = self.configFile
            if let text = config.string("database-url") {
                return .postgres(try Self.parse(text, from: "config file " + config.culprit("database-url")))
            }
            return .sqlite
        }
    }

    private static func parse(_ text: String, from source: String) throws -> DatabaseURL {
        do {
            return try DatabaseURL(parsing: text)
        } catch {
            throw ValidationError("\(source): \(error)")
        }
    }

    /// Runs `body` with the broker's store, and closes it afterwards.
    func withStore<Result: Sendable>(_ body: (any BrokerStore) async throws -> Result) async throws -> Result {
        switch try self.storeLocation {
        case .sqlite:
            let store = AsyncSQLiteStore(try self.brokerHome.openStore())
            do {
                let result = try await body(store)
                await store.close()
                return result
            } catch {
                await store.close()
                throw error
            }
        case .postgres(let url):
            return try await self.withPostgres(url) { try await body($0) }
        }
    }

    /// Runs `body` with the cluster's PostgreSQL store, sealing with this home's master key.
    func withPostgres<Result: Sendable>(_ url: DatabaseURL, _ body: (PostgresStore) async throws -> Result) async throws -> Result {
        let sealer = SecretSealer(keyring: try self.brokerHome.loadKeyring())
        let logger = Logger(label: "sobot-broker") { _ in SwiftLogNoOpLogHandler() }
        return try await PostgresStore.withStore(url: url, environment: Environment.variables, sealer: sealer, clock: SystemClock(), logger: logger) {
            try await body($0)
        }
    }
}
