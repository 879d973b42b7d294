/// Which database holds the broker's state: what `broker.health` reports as `store`.
public enum StoreBackend: String, Sendable {
    /// One host: an embedded SQLite file in the broker's home.
    case sqlite
    /// A cluster: any number of brokers sharing one PostgreSQL database.
    case postgres
}

/// The broker's durable state, whichever database holds it: tenants and their sealed credentials,
/// sealed tokens, access rules and client keys.
///
/// Every secret is sealed (AES-256-GCM, bound to its row) before it reaches the database, so the
/// database never holds a plaintext key or token. Token timestamps are Unix seconds on the caller's
/// wall clock: a backend with a clock of its own rebases them as it reads and writes.
///
/// How a token is fetched (withdrawal, single flight, leases) is not here: see `TokenIssuing`.
public protocol BrokerStore: Sendable {
    var backend: StoreBackend { get }

    // MARK: Tenants and credentials

    /// Adds or replaces every tenant and credential in one transaction: all or nothing. A credential
    /// whose appid changes loses its stored token. With `dryRun` nothing is kept. `progress`, if
    /// given, is told how far the writing has come.
    func upsert(_ tenants: [TenantDefinition], now: Int64, dryRun: Bool, progress: UpsertProgress?) async throws -> UpsertReport

    /// Which of `candidates` are stored with exactly the given app_key. The stored keys are opened and
    /// compared in memory, never returned; one that cannot be opened counts as different. What
    /// `tenant import --dry-run` uses to say "app_key changed" without showing a key.
    func credentialsWithSameAppKey(_ candidates: [TokenKey: String]) async throws -> Set<TokenKey>

    /// Every tenant with its regions, appids and stored-token expiry, ordered by id then region.
    func summaries() async throws -> [TenantSummary]

    /// Removes a tenant (every region) or one region of it, with its tokens; a tenant left with no
    /// region goes, and with it the access rules and client keys naming it.
    func remove(tenant: String, region: String?) async throws -> RemovalReport

    /// Every credential's revision: it grows each time the credential is replaced.
    func credentialRevisions() async throws -> [TokenKey: Int64]

    /// The (tenant, region) keys of one tenant's credentials.
    func credentialKeys(ofTenant tenant: String) async throws -> [TokenKey]

    // MARK: Tokens

    /// The stored token for one key, if unexpired at `now`, readable and servable.
    func token(for key: TokenKey, expiringAfter now: Int64) async throws -> StoredToken?

    /// Every stored, servable token that expires after `now`; rows that cannot be opened are
    /// reported, not fatal.
    func loadTokens(expiringAfter now: Int64) async throws -> (tokens: [StoredToken], unreadable: [TokenKey])

    // MARK: Access rules

    /// Adds or replaces the rule for (subject, tenant).
    func grant(_ rule: AccessRule, now: Int64) async throws

    /// Removes the subject's rules (for one tenant, or all); returns how many were removed.
    func revoke(_ subject: AccessRule.Subject, tenant: String?) async throws -> Int

    func accessRules() async throws -> [AccessRule]

    // MARK: Client keys

    /// Adds a client key with the SHA-256 of its secret (never the secret itself).
    func createClientKey(_ key: ClientKey, secretHash: [UInt8]) async throws

    /// Every client key, oldest first, without its hash: what `access key list` shows.
    func clientKeys() async throws -> [ClientKey]

    /// Every client key with its secret's hash: what a daemon verifies presented keys against.
    func hashedClientKeys() async throws -> [HashedClientKey]

    /// Removes the client key with this id; returns whether there was one.
    func revokeClientKey(id: String) async throws -> Bool

    /// Records when keys were last used (id to Unix seconds). A stored time never moves back, and
    /// this is no configuration change: no broker reloads because of it.
    func recordClientKeyUses(_ uses: [String: Int64]) async throws

    // MARK: Keys and changes

    /// The master-key versions that stored secrets are sealed with.
    func keyIDsInUse() async throws -> Set<UInt32>

    /// Re-seals every secret with the active key of the keyring `readKeyring` returns, in one
    /// transaction that keeps every writer out, records that version as the one writers must seal
    /// with, and adopts the keyring. `readKeyring` runs inside the transaction. Nothing changes on
    /// failure. Returns the keyring and how many secrets were re-sealed.
    func resealAll(with readKeyring: @escaping @Sendable () throws -> MasterKeyring) async throws -> (keyring: MasterKeyring, resealed: Int)

    /// Calls `body` with the master-key versions in use while keeping every writer out, so no
    /// secret can be sealed with a version `body` is about to drop.
    func withKeyIDsInUse<Result: Sendable>(_ body: @escaping @Sendable (Set<UInt32>) throws -> Result) async throws -> Result

    /// A number that changes whenever another process commits a change to tenants, credentials,
    /// access rules or client keys: a watcher that sees it change reloads.
    func changeMarker() async throws -> Int64

    /// Releases the database connection(s).
    func close() async
}

extension BrokerStore {
    /// `upsert` without progress reports.
    public func upsert(_ tenants: [TenantDefinition], now: Int64, dryRun: Bool) async throws -> UpsertReport {
        try await self.upsert(tenants, now: now, dryRun: dryRun, progress: nil)
    }
}
