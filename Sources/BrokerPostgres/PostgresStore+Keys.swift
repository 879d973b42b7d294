import BrokerCore
import PostgresNIO

/// Master-key versions and rotation.
///
/// Writers are kept out by table locks: `resealAll` and `withKeyIDsInUse` lock `sealing_key`, then
/// `credentials`, IN EXCLUSIVE MODE, which waits for every transaction that writes credentials (or
/// checked `sealing_key` FOR SHARE, as each writer of a secret does first) and holds off new ones,
/// readers still welcome. Every transaction that touches both tables takes `sealing_key` first, so
/// none can deadlock with a rotation.
extension PostgresStore {
    /// The master-key versions that stored secrets are sealed with.
    public func keyIDsInUse() async throws -> Set<UInt32> {
        try await self.pool.withSession("read the master-key versions in use") { session in
            try await Self.keyIDsInUse(session)
        }
    }

    /// Calls `body` with the master-key versions in use while keeping every writer out, so no secret can
    /// be sealed with a version `body` is about to drop.
    public func withKeyIDsInUse<Result: Sendable>(_ body: @escaping @Sendable (Set<UInt32>) throws -> Result) async throws -> Result {
        try await self.pool.withTransaction("read the master-key versions in use") { session in
            try await session.execute("LOCK TABLE sealing_key, credentials IN EXCLUSIVE MODE")
            return try body(try await Self.keyIDsInUse(session))
        }
    }

    /// Re-seals every secret with the active key of the keyring `readKeyring` returns, in one
    /// transaction that keeps every writer out, records that version in `sealing_key`, and adopts the
    /// keyring. Nothing changes on failure.
    ///
    /// The cluster interlock: the rotation is refused (`PostgresStoreError.keyVersionMissing`) while
    /// any broker seen in the last 30 s does not list the new version among its keys, since that
    /// broker could open none of the re-sealed secrets.
    public func resealAll(with readKeyring: @escaping @Sendable () throws -> MasterKeyring) async throws -> (keyring: MasterKeyring, resealed: Int) {
        let result = try await self.pool.withTransaction("re-seal the secrets") { session in
            try await session.execute("LOCK TABLE sealing_key, credentials IN EXCLUSIVE MODE")
            let keyring = try readKeyring()
            let activeID = keyring.active.id
            let lacking = try await Self.members(session: session, seenWithin: 30, lacking: activeID)
            guard lacking.isEmpty else { throw PostgresStoreError.keyVersionMissing(keyID: activeID, brokers: lacking) }
            let resealed = try await Self.reseal(session: session, sealer: SecretSealer(keyring: keyring))
            try await session.execute(
                """
                INSERT INTO sealing_key (singleton, key_id) VALUES (1, \(Int64(activeID)))
                ON CONFLICT (singleton) DO UPDATE SET key_id = excluded.key_id
                """
            )
            try await Self.bumpConfiguration(session: session)
            return (keyring, resealed)
        }
        self.adopt(result.0)
        self.forgetRecordedSealingKey()
        return result
    }

    /// Opens every app key and token with `sealer`'s keyring and seals it again with its active key.
    private static func reseal(session: Session, sealer: SecretSealer) async throws -> Int {
        let rows = try await session.query("SELECT tenant_id, region, app_key, token FROM credentials ORDER BY tenant_id, region")
        var tenants: [String] = []
        var regions: [String] = []
        var appKeys: [ByteBuffer] = []
        var tokenTenants: [String] = []
        var tokenRegions: [String] = []
        var tokens: [ByteBuffer] = []
        for row in rows {
            let (tenant, region, appKey, token) = try row.decode((String, String, ByteBuffer, ByteBuffer?).self)
            tenants.append(tenant)
            regions.append(region)
            appKeys.append(try Self.reseal(appKey, binding: SecretBinding(tenant: tenant, region: region, field: .appKey), sealer: sealer))
            if let token {
                tokenTenants.append(tenant)
                tokenRegions.append(region)
                tokens.append(try Self.reseal(token, binding: SecretBinding(tenant: tenant, region: region, field: .token), sealer: sealer))
            }
        }
        for range in Self.chunks(tenants.count) {
            try await session.execute(
                """
                UPDATE credentials c SET app_key = u.sealed
                FROM unnest(\(Array(tenants[range]))::text[], \(Array(regions[range]))::text[], \(Array(appKeys[range]))::bytea[]) AS u (tenant_id, region, sealed)
                WHERE c.tenant_id = u.tenant_id AND c.region = u.region
                """
            )
        }
        for range in Self.chunks(tokenTenants.count) {
            try await session.execute(
                """
                UPDATE credentials c SET token = u.sealed
                FROM unnest(\(Array(tokenTenants[range]))::text[], \(Array(tokenRegions[range]))::text[], \(Array(tokens[range]))::bytea[]) AS u (tenant_id, region, sealed)
                WHERE c.tenant_id = u.tenant_id AND c.region = u.region
                """
            )
        }
        return appKeys.count + tokens.count
    }

    private static func reseal(_ sealed: ByteBuffer, binding: SecretBinding, sealer: SecretSealer) throws -> ByteBuffer {
        var plaintext: [UInt8]
        do throws(SealingError) {
            plaintext = try sealer.open(Array(sealed.readableBytesView), for: binding)
        } catch {
            throw StoreError.unreadableSecret(tenant: binding.tenant, region: binding.region, field: binding.field.rawValue, reason: error)
        }
        defer { plaintext.wipe() }
        return ByteBuffer(bytes: try sealer.seal(plaintext, for: binding))
    }

    /// The longest sealed value per distinct header (format and key version: the first five bytes, see
    /// `SecretSealer`), so the database sends a handful of rows, not every secret; the longest, so a
    /// truncated value cannot hide its group's version.
    private static func keyIDsInUse(_ session: Session) async throws -> Set<UInt32> {
        let rows = try await session.query(
            """
            SELECT DISTINCT ON (substring(sealed FROM 1 FOR 5)) sealed
            FROM (SELECT app_key AS sealed FROM credentials UNION ALL SELECT token FROM credentials WHERE token IS NOT NULL) s
            ORDER BY substring(sealed FROM 1 FOR 5), length(sealed) DESC
            """
        )
        var ids: Set<UInt32> = []
        for row in rows {
            if let id = SecretSealer.keyID(of: Array(try row.decode(ByteBuffer.self).readableBytesView)) { ids.insert(id) }
        }
        return ids
    }
}
