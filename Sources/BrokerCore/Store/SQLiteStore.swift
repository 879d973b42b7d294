import Synchronization

/// The broker's durable state in SQLite: tenants, their sealed credentials, and sealed tokens.
///
/// Every secret is sealed (AES-256-GCM, bound to its row) before it is bound to a statement, so the
/// database file, its WAL and its shared memory never hold a plaintext key or token.
/// Calls block on SQLite: the daemon runs them on a thread pool, never on an event loop.
public final class SQLiteStore: Sendable {
    private struct State: ~Copyable {
        let connection: SQLiteConnection
        var sealer: SecretSealer
    }

    private let state: Mutex<State>

    public init(path: String, sealer: SecretSealer) throws {
        let connection = try SQLiteConnection(path: path)
        try Schema.migrate(connection)
        self.state = Mutex(State(connection: connection, sealer: sealer))
    }

    /// Runs `body` with exclusive use of the connection.
    func withConnection<Result: Sendable>(_ body: (SQLiteConnection) throws -> Result) throws -> Result {
        try self.state.withLock { state in try body(state.connection) }
    }

    // MARK: Tenants

    /// Adds or replaces every tenant and credential in one transaction: all or nothing.
    /// A credential whose appid changes loses its stored token (it belonged to the old appid).
    /// With `dryRun` the same work is done and then rolled back. `progress` hears of each tenant written.
    @discardableResult
    public func upsert(_ tenants: [TenantDefinition], now: Int64, dryRun: Bool = false, progress: UpsertProgress? = nil) throws -> UpsertReport {
        try self.state.withLock { state in
            let connection = state.connection
            let sealer = state.sealer
            try connection.execute("BEGIN IMMEDIATE")
            do {
                try Self.requireCurrentKey(sealer, connection: connection)
                let report = try Self.write(tenants, now: now, connection: connection, sealer: sealer, progress: progress)
                try connection.execute(dryRun ? "ROLLBACK" : "COMMIT")
                return report
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
    }

    private static func write(
        _ tenants: [TenantDefinition],
        now: Int64,
        connection: SQLiteConnection,
        sealer: SecretSealer,
        progress: UpsertProgress?
    ) throws -> UpsertReport {
        let findTenant = try connection.statement("SELECT 1 FROM tenants WHERE id = ?")
        let upsertTenant = try connection.statement(
            """
            INSERT INTO tenants (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET name = coalesce(excluded.name, tenants.name), updated_at = excluded.updated_at
            """
        )
        let findAppID = try connection.statement("SELECT appid FROM credentials WHERE tenant_id = ? AND region = ?")
        let upsertCredential = try connection.statement(
            """
            INSERT INTO credentials (tenant_id, region, appid, app_key, created_at, updated_at, revision) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (tenant_id, region) DO UPDATE
            SET appid = excluded.appid, app_key = excluded.app_key, updated_at = excluded.updated_at,
                revision = excluded.revision
            """
        )
        let nextRevision = try connection.statement("UPDATE revision_counter SET value = value + 1 RETURNING value")
        let deleteToken = try connection.statement("DELETE FROM tokens WHERE tenant_id = ? AND region = ?")
        var report = UpsertReport()
        for (index, tenant) in tenants.enumerated() {
            var exists = false
            try findTenant.forEachRow([.text(tenant.id)]) { _ in exists = true }
            if exists { report.tenantsUpdated += 1 } else { report.tenantsAdded += 1 }
            try upsertTenant.run([.text(tenant.id), tenant.name.sqliteValue, .integer(now), .integer(now)])
            for credential in tenant.credentials {
                let binding = SecretBinding(tenant: tenant.id, region: credential.region, field: .appKey)
                let sealedKey = try sealer.seal(credential.appKey, for: binding)
                var previousAppID: String?
                try findAppID.forEachRow([.text(tenant.id), .text(credential.region)]) { previousAppID = $0.text(0) }
                var revision: Int64 = 0
                try nextRevision.forEachRow { revision = $0.int64(0) }
                try upsertCredential.run([
                    .text(tenant.id), .text(credential.region), .text(credential.appid), .blob(sealedKey),
                    .integer(now), .integer(now), .integer(revision),
                ])
                if let previousAppID, previousAppID != credential.appid {
                    try deleteToken.run([.text(tenant.id), .text(credential.region)])
                }
                report.credentialsWritten += 1
            }
            progress?(index + 1)
        }
        return report
    }

    /// Which of `candidates` are stored with exactly the given app_key, compared in memory; a stored
    /// key that cannot be opened counts as different.
    public func credentialsWithSameAppKey(_ candidates: [TokenKey: String]) throws -> Set<TokenKey> {
        try self.state.withLock { state in
            var same: Set<TokenKey> = []
            try state.connection.statement("SELECT tenant_id, region, app_key FROM credentials").forEachRow { row in
                let key = TokenKey(tenant: row.text(0), region: row.text(1))
                guard let candidate = candidates[key] else { return }
                let binding = SecretBinding(tenant: key.tenant, region: key.region, field: .appKey)
                if let stored = try? state.sealer.openString(row.blob(2), for: binding), stored == candidate { same.insert(key) }
            }
            return same
        }
    }

    /// Every tenant with its regions, appids and stored-token expiry, ordered by id then region.
    public func summaries() throws -> [TenantSummary] {
        try self.state.withLock { state in
            var tenants: [TenantSummary] = []
            let query = try state.connection.statement(
                """
                SELECT t.id, t.name, c.region, c.appid, k.expires_at
                FROM tenants t
                LEFT JOIN credentials c ON c.tenant_id = t.id
                LEFT JOIN tokens k ON k.tenant_id = c.tenant_id AND k.region = c.region
                ORDER BY t.id, c.region
                """
            )
            try query.forEachRow { row in
                let id = row.text(0)
                if tenants.last?.id != id {
                    tenants.append(TenantSummary(id: id, name: row.optionalText(1), regions: []))
                }
                guard !row.isNull(2) else { return }
                tenants[tenants.count - 1].regions.append(
                    .init(region: row.text(2), appid: row.text(3), tokenExpiresAt: row.isNull(4) ? nil : row.int64(4))
                )
            }
            return tenants
        }
    }

    /// Removes a tenant (every region) or one region of it, with its tokens, in one transaction. A
    /// tenant left with no region is removed too, and with it the access rules and client keys that
    /// name it.
    @discardableResult
    public func remove(tenant: String, region: String?) throws -> RemovalReport {
        try self.state.withLock { state in
            let connection = state.connection
            return try connection.transaction {
                var removed = 0
                try connection.statement("SELECT count(*) FROM credentials WHERE tenant_id = ? AND (?2 IS NULL OR region = ?2)")
                    .forEachRow([.text(tenant), region.sqliteValue]) { removed = Int($0.int64(0)) }
                var tenantExists = false
                try connection.statement("SELECT 1 FROM tenants WHERE id = ?").forEachRow([.text(tenant)]) { _ in
                    tenantExists = true
                }
                guard tenantExists else { throw StoreError.unknownTenant(tenant) }
                if let region {
                    guard removed > 0 else { throw StoreError.unknownRegion(tenant: tenant, region: region) }
                    try connection.statement("DELETE FROM credentials WHERE tenant_id = ? AND region = ?")
                        .run([.text(tenant), .text(region)])
                    try connection.statement(
                        "DELETE FROM tenants WHERE id = ? AND NOT EXISTS (SELECT 1 FROM credentials WHERE tenant_id = ?1)"
                    ).run([.text(tenant)])
                } else {
                    try connection.statement("DELETE FROM tenants WHERE id = ?").run([.text(tenant)])
                }
                try connection.statement("DELETE FROM access_rules WHERE tenant = ?1 AND NOT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)")
                    .run([.text(tenant)])
                let rules = connection.changes
                try connection.statement("DELETE FROM client_keys WHERE tenant = ?1 AND NOT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)")
                    .run([.text(tenant)])
                return RemovalReport(credentials: removed, accessRules: rules, clientKeys: connection.changes)
            }
        }
    }

    // MARK: Credentials

    /// Every (tenant, region) that has a credential.
    public func credentialKeys() throws -> [TokenKey] {
        try self.state.withLock { state in
            var keys: [TokenKey] = []
            try state.connection.statement("SELECT tenant_id, region FROM credentials ORDER BY tenant_id, region")
                .forEachRow { keys.append(TokenKey(tenant: $0.text(0), region: $0.text(1))) }
            return keys
        }
    }

    /// Every credential's revision (it grows each time the credential is replaced), for reloads that
    /// must notice a new key without opening any secret.
    public func credentialRevisions() throws -> [TokenKey: Int64] {
        try self.state.withLock { state in
            var revisions: [TokenKey: Int64] = [:]
            try state.connection.statement("SELECT tenant_id, region, revision FROM credentials")
                .forEachRow { revisions[TokenKey(tenant: $0.text(0), region: $0.text(1))] = $0.int64(2) }
            return revisions
        }
    }

    /// SQLite's `data_version`: changes whenever another connection (another process) commits.
    public func dataVersion() throws -> Int64 {
        try self.state.withLock { state in
            var version: Int64 = 0
            try state.connection.statement("PRAGMA data_version").forEachRow { version = $0.int64(0) }
            return version
        }
    }

    /// The stored token for one key, if unexpired at `now`, readable and servable (`IssuedToken.isServable`).
    public func token(for key: TokenKey, expiringAfter now: Int64) throws -> StoredToken? {
        try self.state.withLock { state -> StoredToken? in
            var found: StoredToken?
            try state.connection.statement(
                """
                SELECT k.token, k.issued_at, k.expires_at, c.revision, c.generation
                FROM tokens k JOIN credentials c ON c.tenant_id = k.tenant_id AND c.region = k.region
                WHERE k.tenant_id = ? AND k.region = ? AND k.expires_at > ?
                """
            ).forEachRow([.text(key.tenant), .text(key.region), .integer(now)]) { row in
                let binding = SecretBinding(tenant: key.tenant, region: key.region, field: .token)
                if let value = try? state.sealer.openString(row.blob(0), for: binding),
                    IssuedToken.isServable(storedValue: value, issuedAt: row.int64(1), expiresAt: row.int64(2), now: now)
                {
                    found = StoredToken(
                        key: key, value: value, issuedAt: Double(row.int64(1)), expiresAt: Double(row.int64(2)), revision: row.int64(3), generation: row.int64(4)
                    )
                }
            }
            return found
        }
    }

    /// The opened credential for `key`, or nil when there is none.
    public func credential(for key: TokenKey) throws -> Credential? {
        try self.state.withLock { state in try Self.credential(for: key, connection: state.connection, sealer: state.sealer) }
    }

    /// The opened credential for a `get_token` call, after withdrawing `key`'s stored token.
    ///
    /// `get_token` revokes the token it replaces, so the stored one must be gone, durably, before the
    /// call is made: otherwise a new token that then cannot be saved (disk full, a held write lock)
    /// leaves a revoked one behind for the next start to serve. Throws, and the call must not be made,
    /// when the withdrawal cannot be written; with no token stored there is nothing to withdraw.
    public func credentialForFetch(_ key: TokenKey) throws -> Credential? {
        try self.state.withLock { state in
            let connection = state.connection
            guard let credential = try Self.credential(for: key, connection: connection, sealer: state.sealer) else { return nil }
            var stored = false
            try connection.statement("SELECT 1 FROM tokens WHERE tenant_id = ? AND region = ?")
                .forEachRow([.text(key.tenant), .text(key.region)]) { _ in stored = true }
            guard stored else { return credential }
            // This one commit is synced to disk (WAL commits otherwise are not): a power cut must not
            // bring the withdrawn token back once the upstream has revoked it.
            try connection.execute("PRAGMA synchronous = FULL")
            defer { try? connection.execute("PRAGMA synchronous = NORMAL") }
            try connection.statement("DELETE FROM tokens WHERE tenant_id = ? AND region = ?").run([.text(key.tenant), .text(key.region)])
            return credential
        }
    }

    private static func credential(for key: TokenKey, connection: SQLiteConnection, sealer: SecretSealer) throws -> Credential? {
        var found: (appid: String, sealed: [UInt8], revision: Int64)?
        try connection.statement("SELECT appid, app_key, revision FROM credentials WHERE tenant_id = ? AND region = ?")
            .forEachRow([.text(key.tenant), .text(key.region)]) { found = ($0.text(0), $0.blob(1), $0.int64(2)) }
        guard let found else { return nil }
        let binding = SecretBinding(tenant: key.tenant, region: key.region, field: .appKey)
        do throws(SealingError) {
            let appKey = try sealer.openString(found.sealed, for: binding)
            return Credential(key: key, appid: found.appid, appKey: appKey, revision: found.revision)
        } catch {
            throw StoreError.unreadableSecret(tenant: key.tenant, region: key.region, field: "app_key", reason: error)
        }
    }

    // MARK: Tokens

    /// Persists the live token for its key, sealed and bound to the row, and returns the key's new
    /// generation. Nothing is written, and nil returned, when the credential has been removed
    /// meanwhile or, with `revision`, replaced since the token's fetch read it: a token fetched for
    /// an old credential never lands on a new one.
    @discardableResult
    public func save(_ token: StoredToken, fetchedUnder revision: Int64? = nil) throws -> Int64? {
        try self.state.withLock { state in
            let binding = SecretBinding(tenant: token.key.tenant, region: token.key.region, field: .token)
            let sealed = try state.sealer.seal(token.value, for: binding)
            let connection = state.connection
            return try connection.transaction { () -> Int64? in
                try Self.requireCurrentKey(state.sealer, connection: connection)
                var generation: Int64?
                try connection.statement(
                    """
                    UPDATE credentials SET generation = generation + 1
                    WHERE tenant_id = ?1 AND region = ?2 AND (?3 IS NULL OR revision = ?3)
                    RETURNING generation
                    """
                ).forEachRow([.text(token.key.tenant), .text(token.key.region), revision.map(SQLiteValue.integer) ?? .null]) { generation = $0.int64(0) }
                guard let generation else { return nil }
                try connection.statement(
                    """
                    INSERT INTO tokens (tenant_id, region, token, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
                    ON CONFLICT (tenant_id, region) DO UPDATE
                    SET token = excluded.token, issued_at = excluded.issued_at, expires_at = excluded.expires_at
                    """
                ).run([
                    .text(token.key.tenant), .text(token.key.region), .blob(sealed), .integer(Int64(token.issuedAt.rounded(.down))),
                    .integer(Int64(token.expiresAt.rounded(.down))),
                ])
                return generation
            }
        }
    }

    /// Every stored, servable (`IssuedToken.isServable`) token that expires after `now`. Rows that
    /// fail to open are reported, not fatal; for those and for unservable ones the engine fetches a
    /// new token.
    public func loadTokens(expiringAfter now: Int64) throws -> (tokens: [StoredToken], unreadable: [TokenKey]) {
        try self.state.withLock { state in
            var tokens: [StoredToken] = []
            var unreadable: [TokenKey] = []
            try state.connection.statement(
                """
                SELECT k.tenant_id, k.region, k.token, k.issued_at, k.expires_at, c.revision, c.generation
                FROM tokens k JOIN credentials c ON c.tenant_id = k.tenant_id AND c.region = k.region
                WHERE k.expires_at > ?
                """
            ).forEachRow([.integer(now)]) { row in
                let key = TokenKey(tenant: row.text(0), region: row.text(1))
                let binding = SecretBinding(tenant: key.tenant, region: key.region, field: .token)
                guard let value = try? state.sealer.openString(row.blob(2), for: binding) else {
                    unreadable.append(key)
                    return
                }
                guard IssuedToken.isServable(storedValue: value, issuedAt: row.int64(3), expiresAt: row.int64(4), now: now) else { return }
                tokens.append(
                    StoredToken(
                        key: key, value: value, issuedAt: Double(row.int64(3)), expiresAt: Double(row.int64(4)), revision: row.int64(5), generation: row.int64(6)
                    )
                )
            }
            return (tokens, unreadable)
        }
    }

    // MARK: Key rotation

    /// Re-seals every secret with the active key of the keyring `readKeyring` returns, in one write
    /// transaction, records that key as the one writers must seal with, and adopts the keyring.
    ///
    /// `readKeyring` runs with the write lock held, so no writer commits between it and the re-seal:
    /// a keyring read from the key file there holds every version a stored secret is sealed with.
    /// On any failure nothing in the database changes. Returns the keyring and the re-sealed count.
    public func resealAll(with readKeyring: @Sendable () throws -> MasterKeyring) throws -> (keyring: MasterKeyring, resealed: Int) {
        try self.state.withLock { state in
            let connection = state.connection
            let (keyring, count) = try connection.transaction {
                let keyring = try readKeyring()
                let sealer = SecretSealer(keyring: keyring)
                let count =
                    try Self.reseal(table: "credentials", column: "app_key", field: .appKey, connection: connection, sealer: sealer)
                    + Self.reseal(table: "tokens", column: "token", field: .token, connection: connection, sealer: sealer)
                try connection.statement(
                    "INSERT INTO sealing_key (singleton, key_id) VALUES (1, ?) ON CONFLICT (singleton) DO UPDATE SET key_id = excluded.key_id"
                ).run([.integer(Int64(keyring.active.id))])
                return (keyring, count)
            }
            state.sealer = SecretSealer(keyring: keyring)
            return (keyring, count)
        }
    }

    /// Throws when `key rotate` has re-sealed the store with a newer key version than `sealer`'s:
    /// the rotation may already have dropped the version `sealer` would seal with. Call it inside
    /// the write transaction, so no rotation can commit between the check and the write.
    private static func requireCurrentKey(_ sealer: SecretSealer, connection: SQLiteConnection) throws {
        let loaded = sealer.keyring.active.id
        try connection.statement("SELECT key_id FROM sealing_key WHERE key_id > ?").forEachRow([.integer(Int64(loaded))]) { row in
            throw StoreError.keyRotated(loaded: loaded, current: row.int64(0))
        }
    }

    private static func reseal(
        table: StaticString,
        column: StaticString,
        field: SecretBinding.Field,
        connection: SQLiteConnection,
        sealer: SecretSealer
    ) throws -> Int {
        var rows: [(tenant: String, region: String, sealed: [UInt8])] = []
        try connection.statement("SELECT tenant_id, region, \(column) FROM \(table)").forEachRow {
            rows.append(($0.text(0), $0.text(1), $0.blob(2)))
        }
        let update = try connection.statement("UPDATE \(table) SET \(column) = ? WHERE tenant_id = ? AND region = ?")
        for row in rows {
            let binding = SecretBinding(tenant: row.tenant, region: row.region, field: field)
            var plaintext: [UInt8]
            do throws(SealingError) {
                plaintext = try sealer.open(row.sealed, for: binding)
            } catch {
                throw StoreError.unreadableSecret(tenant: row.tenant, region: row.region, field: field.rawValue, reason: error)
            }
            defer { plaintext.wipe() }
            try update.run([.blob(try sealer.seal(plaintext, for: binding)), .text(row.tenant), .text(row.region)])
        }
        return rows.count
    }

    /// The master-key versions that stored secrets are sealed with.
    public func keyIDsInUse() throws -> Set<UInt32> {
        try self.state.withLock { state in try Self.keyIDsInUse(state.connection) }
    }

    /// Calls `body` with the master-key versions in use while holding the write lock, so no writer
    /// can add a secret until `body` (which may drop the other versions from the key file) returns.
    public func withKeyIDsInUse<Result: Sendable>(_ body: @Sendable (Set<UInt32>) throws -> Result) throws -> Result {
        try self.state.withLock { state in
            let connection = state.connection
            return try connection.transaction { try body(try Self.keyIDsInUse(connection)) }
        }
    }

    private static func keyIDsInUse(_ connection: SQLiteConnection) throws -> Set<UInt32> {
        var ids: Set<UInt32> = []
        for sql in ["SELECT app_key FROM credentials", "SELECT token FROM tokens"] {
            try connection.statement(sql).forEachRow { row in
                if let id = SecretSealer.keyID(of: row.blob(0)) { ids.insert(id) }
            }
        }
        return ids
    }
}

extension SQLiteStore {
    /// The (tenant, region) keys of one tenant's credentials, as stored.
    public func credentialKeys(ofTenant tenant: String) throws -> [TokenKey] {
        try self.withConnection { connection in
            var keys: [TokenKey] = []
            try connection.statement("SELECT tenant_id, region FROM credentials WHERE tenant_id = ? ORDER BY region")
                .forEachRow([.text(tenant)]) { keys.append(TokenKey(tenant: $0.text(0), region: $0.text(1))) }
            return keys
        }
    }
}
