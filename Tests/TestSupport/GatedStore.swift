import BrokerCore

/// A gate that readers pass while it is open and wait at while it is closed: lets a test stop a
/// reload at a chosen suspension point, do something meanwhile, and let it go on.
public actor ReadGate {
    private var isOpen = true
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public func close() { self.isOpen = false }

    public func open() {
        self.isOpen = true
        let released = self.waiting
        self.waiting = []
        for continuation in released { continuation.resume() }
    }

    /// How many readers wait at the gate now.
    public var waitingCount: Int { self.waiting.count }

    public func pass() async {
        guard !self.isOpen else { return }
        await withCheckedContinuation { self.waiting.append($0) }
    }
}

/// A real store whose token reads wait at `gate` after reading: a reader held there resumes with
/// what the database held when it read, however the database changed meanwhile. Everything else is
/// the wrapped store's own behaviour.
public struct GatedStore: BrokerStore {
    public let wrapped: any BrokerStore
    public let gate: ReadGate

    public init(_ wrapped: any BrokerStore, gate: ReadGate) {
        self.wrapped = wrapped
        self.gate = gate
    }

    public var backend: StoreBackend { self.wrapped.backend }

    public func token(for key: TokenKey, expiringAfter now: Int64) async throws -> StoredToken? {
        let token = try await self.wrapped.token(for: key, expiringAfter: now)
        await self.gate.pass()
        return token
    }

    public func loadTokens(expiringAfter now: Int64) async throws -> (tokens: [StoredToken], unreadable: [TokenKey]) {
        let loaded = try await self.wrapped.loadTokens(expiringAfter: now)
        await self.gate.pass()
        return loaded
    }

    public func upsert(_ tenants: [TenantDefinition], now: Int64, dryRun: Bool, progress: UpsertProgress?) async throws -> UpsertReport {
        try await self.wrapped.upsert(tenants, now: now, dryRun: dryRun, progress: progress)
    }

    public func credentialsWithSameAppKey(_ candidates: [TokenKey: String]) async throws -> Set<TokenKey> {
        try await self.wrapped.credentialsWithSameAppKey(candidates)
    }

    public func summaries() async throws -> [TenantSummary] { try await self.wrapped.summaries() }

    public func remove(tenant: String, region: String?) async throws -> RemovalReport {
        try await self.wrapped.remove(tenant: tenant, region: region)
    }

    public func credentialRevisions() async throws -> [TokenKey: Int64] { try await self.wrapped.credentialRevisions() }

    public func credentialKeys(ofTenant tenant: String) async throws -> [TokenKey] {
        try await self.wrapped.credentialKeys(ofTenant: tenant)
    }

    public func grant(_ rule: AccessRule, now: Int64) async throws { try await self.wrapped.grant(rule, now: now) }

    public func revoke(_ subject: AccessRule.Subject, tenant: String?) async throws -> Int {
        try await self.wrapped.revoke(subject, tenant: tenant)
    }

    public func accessRules() async throws -> [AccessRule] { try await self.wrapped.accessRules() }

    public func createClientKey(_ key: ClientKey, secretHash: [UInt8]) async throws {
        try await self.wrapped.createClientKey(key, secretHash: secretHash)
    }

    public func clientKeys() async throws -> [ClientKey] { try await self.wrapped.clientKeys() }

    public func hashedClientKeys() async throws -> [HashedClientKey] { try await self.wrapped.hashedClientKeys() }

    public func revokeClientKey(id: String) async throws -> Bool { try await self.wrapped.revokeClientKey(id: id) }

    public func recordClientKeyUses(_ uses: [String: Int64]) async throws { try await self.wrapped.recordClientKeyUses(uses) }

    public func keyIDsInUse() async throws -> Set<UInt32> { try await self.wrapped.keyIDsInUse() }

    public func resealAll(with readKeyring: @escaping @Sendable () throws -> MasterKeyring) async throws -> (keyring: MasterKeyring, resealed: Int) {
        try await self.wrapped.resealAll(with: readKeyring)
    }

    public func withKeyIDsInUse<Result: Sendable>(_ body: @escaping @Sendable (Set<UInt32>) throws -> Result) async throws -> Result {
        try await self.wrapped.withKeyIDsInUse(body)
    }

    public func changeMarker() async throws -> Int64 { try await self.wrapped.changeMarker() }

    public func close() async { await self.wrapped.close() }
}
