import NIOPosix

/// `SQLiteStore` as a `BrokerStore`: every call runs on NIO's blocking thread pool, never on the
/// caller's executor, because SQLite blocks.
public struct AsyncSQLiteStore: BrokerStore {
    public let database: SQLiteStore

    public init(_ database: SQLiteStore) {
        self.database = database
    }

    public var backend: StoreBackend { .sqlite }

    private func run<Result: Sendable>(_ body: @escaping @Sendable (SQLiteStore) throws -> Result) async throws -> Result {
        let database = self.database
        return try await NIOThreadPool.singleton.runIfActive { try body(database) }
    }

    public func upsert(_ tenants: [TenantDefinition], now: Int64, dryRun: Bool, progress: UpsertProgress?) async throws -> UpsertReport {
        try await self.run { try $0.upsert(tenants, now: now, dryRun: dryRun, progress: progress) }
    }

    public func credentialsWithSameAppKey(_ candidates: [TokenKey: String]) async throws -> Set<TokenKey> {
        try await self.run { try $0.credentialsWithSameAppKey(candidates) }
    }

    public func summaries() async throws -> [TenantSummary] {
        try await self.run { try $0.summaries() }
    }

    public func remove(tenant: String, region: String?) async throws -> RemovalReport {
        try await self.run { try $0.remove(tenant: tenant, region: region) }
    }

    public func credentialRevisions() async throws -> [TokenKey: Int64] {
        try await self.run { try $0.credentialRevisions() }
    }

    public func credentialKeys(ofTenant tenant: String) async throws -> [TokenKey] {
        try await self.run { try $0.credentialKeys(ofTenant: tenant) }
    }

    public func token(for key: TokenKey, expiringAfter now: Int64) async throws -> StoredToken? {
        try await self.run { try $0.token(for: key, expiringAfter: now) }
    }

    public func loadTokens(expiringAfter now: Int64) async throws -> (tokens: [StoredToken], unreadable: [TokenKey]) {
        try await self.run { try $0.loadTokens(expiringAfter: now) }
    }

    public func grant(_ rule: AccessRule, now: Int64) async throws {
        try await self.run { try $0.grant(rule, now: now) }
    }

    public func revoke(_ subject: AccessRule.Subject, tenant: String?) async throws -> Int {
        try await self.run { try $0.revoke(subject, tenant: tenant) }
    }

    public func accessRules() async throws -> [AccessRule] {
        try await self.run { try $0.accessRules() }
    }

    public func createClientKey(_ key: ClientKey, secretHash: [UInt8]) async throws {
        try await self.run { try $0.createClientKey(key, secretHash: secretHash) }
    }

    public func clientKeys() async throws -> [ClientKey] {
        try await self.run { try $0.clientKeys() }
    }

    public func hashedClientKeys() async throws -> [HashedClientKey] {
        try await self.run { try $0.hashedClientKeys() }
    }

    public func revokeClientKey(id: String) async throws -> Bool {
        try await self.run { try $0.revokeClientKey(id: id) }
    }

    public func recordClientKeyUses(_ uses: [String: Int64]) async throws {
        try await self.run { try $0.recordClientKeyUses(uses) }
    }

    public func keyIDsInUse() async throws -> Set<UInt32> {
        try await self.run { try $0.keyIDsInUse() }
    }

    public func resealAll(
        with readKeyring: @escaping @Sendable () throws -> MasterKeyring
    ) async throws -> (keyring: MasterKeyring, resealed: Int) {
        try await self.run { try $0.resealAll(with: readKeyring) }
    }

    public func withKeyIDsInUse<Result: Sendable>(_ body: @escaping @Sendable (Set<UInt32>) throws -> Result) async throws -> Result {
        try await self.run { try $0.withKeyIDsInUse(body) }
    }

    public func changeMarker() async throws -> Int64 {
        try await self.run { try $0.dataVersion() }
    }

    public func close() async {}
}
