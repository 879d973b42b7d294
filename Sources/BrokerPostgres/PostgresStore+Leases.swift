import BrokerCore
import PostgresNIO

/// Refresh leases: the cluster's single flight for `get_token`. A lease is two columns of the key's
/// credentials row, timed by the database's clock; taking it, storing the token it was taken for, and
/// fencing off a broker whose lease lapsed are each one statement on that row.
extension PostgresStore {
    /// Takes `key`'s refresh lease for `owner` for `seconds`, unless another broker holds it or has
    /// stored a newer token than `basis` names.
    ///
    /// The row is read first, so that a credential this broker cannot open (its master-key version is
    /// missing here) or a newer token sealed with such a version throws `StoreError.unreadableSecret`
    /// naming that version before anything is written: such a broker never fetches. The claim itself is
    /// one committed statement, fenced by the revision just read; it withdraws the stored token, because
    /// the `get_token` call it licenses revokes that token upstream.
    public func claimLease(for key: TokenKey, owner: String, basis: FetchBasis, seconds: Double) async throws -> LeaseClaim {
        // Each pass reads the row and tries to claim on what it saw; a claim that fails means a
        // concurrent writer changed the row in between, and the next pass sees what it did.
        for _ in 0..<3 {
            let callerNow = self.clock.unixNow()
            guard let row = try await self.leaseRow(key) else { return .missing }
            if let holder = row.leaseOwner, holder != owner, row.leaseRemaining > 0 {
                return .held(remaining: row.leaseRemaining)
            }
            var claimGeneration = basis.generation
            if row.generation != basis.generation, let sealed = row.token {
                let read = self.openToken(
                    key: key,
                    sealed: sealed,
                    issued: row.issuedAt,
                    expires: row.expiresAt,
                    revision: row.revision,
                    generation: row.generation,
                    databaseNow: row.databaseNow,
                    now: Self.unixSeconds(callerNow) ?? .max,
                    callerNow: callerNow
                )
                switch read {
                case .servable(let token): return .newer(token)
                case .unreadable(_, .unknownKey(let id)):
                    throw StoreError.unreadableSecret(tenant: key.tenant, region: key.region, field: "token", reason: .unknownKey(id))
                case .unreadable, .unservable:
                    // Unusable (expired, tampered, out of bounds): replace it.
                    claimGeneration = row.generation
                }
            }
            let credential: Credential
            do throws(SealingError) {
                let binding = SecretBinding(tenant: key.tenant, region: key.region, field: .appKey)
                credential = Credential(key: key, appid: row.appid, appKey: try self.sealer.openString(row.appKey, for: binding), revision: row.revision)
            } catch {
                throw StoreError.unreadableSecret(tenant: key.tenant, region: key.region, field: "app_key", reason: error)
            }
            if let databaseNow = try await self.takeLease(key, owner: owner, revision: row.revision, generation: claimGeneration, seconds: seconds) {
                return .granted(credential, databaseNow: databaseNow)
            }
        }
        // Three passes lost to concurrent writers: let the caller look again shortly.
        return .held(remaining: 1)
    }

    /// Stores the token fetched under `owner`'s lease, sealed, with stamps on the database's clock,
    /// releases the lease, and notifies every broker, in one transaction. Returns the key's new
    /// generation, or nil, writing nothing, when the lease is no longer `owner`'s or the credential was
    /// replaced since (its revision is not `revision`): a fetch that lost its lease never overwrites
    /// the token of the broker that took over.
    public func completeLease(
        for key: TokenKey,
        owner: String,
        revision: Int64,
        token: String,
        issuedAtDatabase: Double,
        lifetime: Double
    ) async throws -> Int64? {
        // Another host may have rotated the master key since this store last read which version to
        // seal with: the first attempt is then refused, and the second seals with the new version
        // (every live broker holds it, or the rotation would have been refused).
        var attempt = 0
        while true {
            attempt += 1
            do {
                let sealer = try await self.writeSealer()
                let sealed = ByteBuffer(bytes: try sealer.seal(token, for: SecretBinding(tenant: key.tenant, region: key.region, field: .token)))
                return try await self.pool.withTransaction("store a token") { session in
                    try await self.requireCurrentKey(sealer, session: session)
                    let rows = try await session.query(
                        """
                        UPDATE credentials SET token = \(sealed), issued_at = \(issuedAtDatabase), expires_at = \(issuedAtDatabase + lifetime),
                            generation = generation + 1, lease_owner = NULL, lease_until = NULL, refreshed_by = \(owner), refreshed_at = now()
                        WHERE tenant_id = \(key.tenant) AND region = \(key.region) AND lease_owner = \(owner) AND revision = \(revision)
                        RETURNING generation
                        """
                    )
                    guard let generation = try rows.first?.decode(Int64.self) else { return nil }
                    let payload = ClusterChannel.tokenPayload(TokenVersion(key: key, revision: revision, generation: generation))
                    try await session.execute("SELECT pg_notify(\(ClusterChannel.name), \(payload))")
                    return generation
                }
            } catch StoreError.keyRotated where attempt == 1 {
                continue
            }
        }
    }

    /// Gives `key`'s lease up after a failed fetch, if `owner` still holds it, so that another broker
    /// (or this one, later) can try at once rather than when the lease lapses.
    public func releaseLease(for key: TokenKey, owner: String) async throws {
        try await self.pool.withSession("release a refresh lease") { session in
            try await session.execute(
                """
                UPDATE credentials SET lease_owner = NULL, lease_until = NULL
                WHERE tenant_id = \(key.tenant) AND region = \(key.region) AND lease_owner = \(owner)
                """
            )
        }
    }

    /// The claim: one statement that takes the lease and withdraws the token, or does nothing when the
    /// row no longer matches what the caller read. Returns the database's time when it took the lease.
    private func takeLease(_ key: TokenKey, owner: String, revision: Int64, generation: Int64, seconds: Double) async throws -> Double? {
        try await self.pool.withSession("take a refresh lease") { session in
            try await session.query(
                """
                UPDATE credentials SET lease_owner = \(owner), lease_until = now() + \(seconds) * interval '1 second',
                    token = NULL, issued_at = NULL, expires_at = NULL
                WHERE tenant_id = \(key.tenant) AND region = \(key.region) AND revision = \(revision)
                    AND (generation = \(generation) OR token IS NULL OR expires_at <= extract(epoch FROM now()))
                    AND (lease_owner IS NULL OR lease_until <= now() OR lease_owner = \(owner))
                RETURNING extract(epoch FROM now())::float8
                """
            ).first?.decode(Double.self)
        }
    }

    /// What a claim decides on: the credential, the stored token and the lease.
    private struct LeaseRow {
        var appid: String
        var appKey: [UInt8]
        var revision: Int64
        var generation: Int64
        var token: ByteBuffer?
        var issuedAt: Double?
        var expiresAt: Double?
        var leaseOwner: String?
        /// Seconds until the lease lapses (negative once it has); 0 without a lease.
        var leaseRemaining: Double
        var databaseNow: Double
    }

    private func leaseRow(_ key: TokenKey) async throws -> LeaseRow? {
        let rows = try await self.pool.withSession("read a refresh lease") { session in
            try await session.query(
                """
                SELECT appid, app_key, revision, generation, token, issued_at, expires_at, lease_owner,
                    coalesce(extract(epoch FROM lease_until - now())::float8, 0), extract(epoch FROM now())::float8
                FROM credentials WHERE tenant_id = \(key.tenant) AND region = \(key.region)
                """
            )
        }
        guard let row = rows.first else { return nil }
        let (appid, appKey, revision, generation, token, issuedAt, expiresAt, leaseOwner, leaseRemaining, databaseNow) =
            try row.decode((String, ByteBuffer, Int64, Int64, ByteBuffer?, Double?, Double?, String?, Double, Double).self)
        return LeaseRow(
            appid: appid, appKey: Array(appKey.readableBytesView), revision: revision, generation: generation, token: token, issuedAt: issuedAt,
            expiresAt: expiresAt, leaseOwner: leaseOwner, leaseRemaining: leaseRemaining, databaseNow: databaseNow
        )
    }
}
