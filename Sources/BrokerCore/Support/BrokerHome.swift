/// The broker's state directory: creating it (`init`) and opening what it holds.
public struct BrokerHome: Sendable {
    public let paths: BrokerPaths

    public init(paths: BrokerPaths) {
        self.paths = paths
    }

    /// Creates the home (0700), the master key (0600, 32 random bytes) and, unless the state lives
    /// elsewhere (a cluster's PostgreSQL), the SQLite database. Idempotent: an existing key is kept,
    /// never overwritten.
    @discardableResult
    public func initialize(createDatabase: Bool = true) throws -> InitializationReport {
        do {
            try FileIO.makeDirectory(self.paths.home, mode: 0o700)
        } catch {
            throw HomeError.io("cannot create home \(self.paths.home)", error.errnoCode)
        }
        let createdKey: Bool
        if FileIO.exists(self.paths.masterKey) {
            _ = try MasterKeyFile.load(from: self.paths.masterKey)
            createdKey = false
        } else {
            try MasterKeyFile.write(MasterKeyring(keys: [try MasterKey(randomWithID: 1)]), to: self.paths.masterKey)
            createdKey = true
        }
        if createDatabase { _ = try self.openStore() }
        return InitializationReport(createdKey: createdKey)
    }

    public struct InitializationReport: Sendable {
        public let createdKey: Bool
    }

    public func loadKeyring() throws -> MasterKeyring {
        guard FileIO.exists(self.paths.home) else { throw HomeError.notInitialized(self.paths.home) }
        return try MasterKeyFile.load(from: self.paths.masterKey)
    }

    /// Opens the tenant store with the current keyring; fails when the home is not initialised.
    public func openStore() throws -> SQLiteStore {
        try self.openStore(keyring: try self.loadKeyring())
    }

    public func openStore(keyring: MasterKeyring) throws -> SQLiteStore {
        try SQLiteStore(path: self.paths.database, sealer: SecretSealer(keyring: keyring))
    }
}
