import BrokerCore
import PostgresNIO

/// Refresh leases: the cluster's single flight for `get_token`. A lease is two columns of the key's
/// credentials row, timed by the database's clock; taking it, storing the token it was taken for, and
/// fencing off a broker whose lease lapsed are each one statement on that row.
extension PostgresStore {
    /// One broker's request for a key's lease: see `claimLease(for:owner:basis:seconds:)`.
    struct LeaseRequest: Sendable {
        var key: TokenKey
        var owner: String
        var basis: FetchBasis
        var seconds: Double
    }

    /// A token fetched under a lease, to store: see `completeLease(for:owner:revision:token:issuedAtDatabase:lifetime:)`.
    struct LeaseCompletion: Sendable {
        var key: TokenKey
        var owner: String
        var revision: Int64
        var token: String
        var issuedAtDatabase: Double
        var lifetime: Double
    }

    /// Takes `key`'s refresh lease for `owner` for `seconds`, unless another broker holds it or has
    /// stored a newer token than `basis` names.
    ///
    /// The row is read first, so that a credential this broker cannot open (its master-key version is
    /// missing here) or a newer token sealed with such a version throws `StoreError.unreadableSecret`
    /// naming that version before anything is written: such a broker never fetches. The claim itself is
    /// one committed statement, fenced by the revision just read; it withdraws the stored token, because
    /// the `get_token` call it licenses revokes that token upstream.
    ///
    /// Concurrent claims go to the database together (see `RequestCoalescer`): two statements per
    /// batch, not per key.
    public func claimLease(for key: TokenKey, owner: String, basis: FetchBasis, seconds: Double) async throws -> LeaseClaim {
        try await self.leaseClaims.submit(LeaseRequest(key: key, owner: owner, basis: basis, seconds: seconds)) { requests in
            await self.claimLeases(requests)
        }
    }

    /// Stores the token fetched under `owner`'s lease, sealed, with stamps on the database's clock,
    /// releases the lease, and notifies every broker, in one transaction. Returns the key's new
    /// generation, or nil, writing nothing, when the lease is no longer `owner`'s or the credential was
    /// replaced since (its revision is not `revision`): a fetch that lost its lease never overwrites
    /// the token of the broker that took over. Concurrent completions share one transaction.
    public func completeLease(
        for key: TokenKey,
        owner: String,
        revision: Int64,
        token: String,
        issuedAtDatabase: Double,
        lifetime: Double
    ) async throws -> Int64? {
        let completion = LeaseCompletion(key: key, owner: owner, revision: revision, token: token, issuedAtDatabase: issuedAtDatabase, lifetime: lifetime)
        return try await self.leaseCompletions.submit(completion) { completions in
            await self.completeLeases(completions)
        }
    }

    /// `claimLease` for a batch: one read of every row, then one conditional `UPDATE` taking every
    /// lease that can be taken; a key whose row changed in between is read and tried again, twice
    /// at most. A key named twice is claimed after the first claim is decided.
    func claimLeases(_ requests: [LeaseRequest]) async -> [Result<LeaseClaim, any Error>] {
        let (first, repeated) = Self.splitRepeats(requests.map(\.key))
        var results = [Result<LeaseClaim, any Error>?](repeating: nil, count: requests.count)
        var open = first
        for _ in 0..<3 where !open.isEmpty {
            let callerNow = self.clock.unixNow()
            let rows: [TokenKey: LeaseRow]
            do {
                rows = try await self.leaseRows(open.map { requests[$0].key })
            } catch {
                for index in open { results[index] = .failure(error) }
                open = []
                break
            }
            var candidates: [(index: Int, row: LeaseRow, generation: Int64, credential: Credential)] = []
            for index in open {
                let request = requests[index]
                do {
                    switch try self.decideClaim(request, row: rows[request.key], callerNow: callerNow) {
                    case .decided(let claim): results[index] = .success(claim)
                    case .take(let generation, let credential):
                        candidates.append((index, rows[request.key]!, generation, credential))
                    }
                } catch {
                    results[index] = .failure(error)
                }
            }
            open = []
            guard !candidates.isEmpty else { break }
            let taken: [TokenKey: Double]
            do {
                taken = try await self.takeLeases(candidates.map { (requests[$0.index], $0.row.revision, $0.generation) })
            } catch {
                for candidate in candidates { results[candidate.index] = .failure(error) }
                break
            }
            for candidate in candidates {
                if let databaseNow = taken[requests[candidate.index].key] {
                    results[candidate.index] = .success(.granted(candidate.credential, databaseNow: databaseNow))
                } else {
                    // A concurrent writer changed the row after it was read: read it again.
                    open.append(candidate.index)
                }
            }
        }
        // Three passes lost to concurrent writers: let the caller look again shortly.
        for index in open { results[index] = .success(.held(remaining: 1)) }
        if !repeated.isEmpty {
            let later = await self.claimLeases(repeated.map { requests[$0] })
            for (index, result) in zip(repeated, later) { results[index] = result }
        }
        return results.map { $0 ?? .success(.held(remaining: 1)) }
    }

    private enum ClaimDecision {
        case decided(LeaseClaim)
        /// Try to take the lease, fenced by the generation the row must still have.
        case take(generation: Int64, credential: Credential)
    }

    private func decideClaim(_ request: LeaseRequest, row: LeaseRow?, callerNow: Double) throws -> ClaimDecision {
        let key = request.key
        guard let row else { return .decided(.missing) }
        if let holder = row.leaseOwner, holder != request.owner, row.leaseRemaining > 0 {
            return .decided(.held(remaining: row.leaseRemaining))
        }
        var claimGeneration = request.basis.generation
        if row.generation != request.basis.generation, let sealed = row.token {
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
            case .servable(let token): return .decided(.newer(token))
            case .unreadable(_, .unknownKey(let id)):
                throw StoreError.unreadableSecret(tenant: key.tenant, region: key.region, field: "token", reason: .unknownKey(id))
            case .unreadable, .unservable:
                // Unusable (expired, tampered, out of bounds): replace it.
                claimGeneration = row.generation
            }
        }
        do throws(SealingError) {
            let binding = SecretBinding(tenant: key.tenant, region: key.region, field: .appKey)
            let credential = Credential(key: key, appid: row.appid, appKey: try self.sealer.openString(row.appKey, for: binding), revision: row.revision)
            return .take(generation: claimGeneration, credential: credential)
        } catch {
            throw StoreError.unreadableSecret(tenant: key.tenant, region: key.region, field: "app_key", reason: error)
        }
    }

    /// `completeLease` for a batch: every token sealed, then stored with one `UPDATE` and announced
    /// with one `pg_notify` statement, in one transaction. Rows are locked in key order, as an import
    /// locks them, so a batch and an import never deadlock.
    func completeLeases(_ completions: [LeaseCompletion]) async -> [Result<Int64?, any Error>] {
        let (first, repeated) = Self.splitRepeats(completions.map(\.key))
        var results = [Result<Int64?, any Error>?](repeating: nil, count: completions.count)
        let batch = first.map { completions[$0] }
        // Another host may have rotated the master key since this store last read which version to
        // seal with: the first attempt is then refused, and the second seals with the new version
        // (every live broker holds it, or the rotation would have been refused).
        var attempt = 0
        var stored: Result<[TokenKey: Int64], any Error>
        repeat {
            attempt += 1
            do {
                stored = .success(try await self.storeLeasedTokens(batch))
            } catch {
                stored = .failure(error)
            }
        } while attempt == 1 && Self.isKeyRotated(stored)
        for index in first {
            results[index] = stored.map { $0[completions[index].key] }
        }
        if !repeated.isEmpty {
            let later = await self.completeLeases(repeated.map { completions[$0] })
            for (index, result) in zip(repeated, later) { results[index] = result }
        }
        return results.map { $0 ?? .success(nil) }
    }

    private static func isKeyRotated(_ result: Result<[TokenKey: Int64], any Error>) -> Bool {
        guard case .failure(StoreError.keyRotated) = result else { return false }
        return true
    }

    /// Returns the new generation of every key whose lease and revision still matched.
    private func storeLeasedTokens(_ batch: [LeaseCompletion]) async throws -> [TokenKey: Int64] {
        let sealer = try await self.writeSealer()
        let sealed = try batch.map { ByteBuffer(bytes: try sealer.seal($0.token, for: SecretBinding(tenant: $0.key.tenant, region: $0.key.region, field: .token))) }
        return try await self.pool.withTransaction("store tokens") { session in
            try await self.requireCurrentKey(sealer, session: session)
            let rows = try await session.query(
                """
                WITH done AS (
                    SELECT * FROM unnest(
                        \(batch.map(\.key.tenant))::text[], \(batch.map(\.key.region))::text[], \(batch.map(\.owner))::text[],
                        \(batch.map(\.revision))::int8[], \(sealed)::bytea[], \(batch.map(\.issuedAtDatabase))::float8[],
                        \(batch.map(\.lifetime))::float8[]
                    ) AS d (tenant_id, region, owner, revision, token, issued_at, lifetime)
                ), locked AS (
                    SELECT c.tenant_id, c.region FROM credentials c
                    JOIN done d ON c.tenant_id = d.tenant_id AND c.region = d.region
                    WHERE c.lease_owner = d.owner AND c.revision = d.revision
                    ORDER BY c.tenant_id, c.region
                    FOR UPDATE OF c
                )
                UPDATE credentials c SET token = d.token, issued_at = d.issued_at, expires_at = d.issued_at + d.lifetime,
                    generation = c.generation + 1, lease_owner = NULL, lease_until = NULL, refreshed_by = d.owner, refreshed_at = now()
                FROM locked l JOIN done d ON d.tenant_id = l.tenant_id AND d.region = l.region
                WHERE c.tenant_id = l.tenant_id AND c.region = l.region AND c.lease_owner = d.owner AND c.revision = d.revision
                RETURNING c.tenant_id, c.region, c.revision, c.generation
                """
            )
            var generations: [TokenKey: Int64] = [:]
            var payloads: [String] = []
            for row in rows {
                let (tenant, region, revision, generation) = try row.decode((String, String, Int64, Int64).self)
                let key = TokenKey(tenant: tenant, region: region)
                generations[key] = generation
                payloads.append(ClusterChannel.tokenPayload(TokenVersion(key: key, revision: revision, generation: generation)))
            }
            if !payloads.isEmpty {
                try await session.execute("SELECT pg_notify(\(ClusterChannel.name), p) FROM unnest(\(payloads)::text[]) AS p")
            }
            return generations
        }
    }

    /// The positions of each key's first appearance, and of its repeats: a batch handles the first
    /// ones and then the rest, so that one statement never names a row twice.
    private static func splitRepeats(_ keys: [TokenKey]) -> (first: [Int], repeated: [Int]) {
        var seen = Set<TokenKey>()
        var first: [Int] = []
        var repeated: [Int] = []
        for (index, key) in keys.enumerated() {
            if seen.insert(key).inserted { first.append(index) } else { repeated.append(index) }
        }
        return (first, repeated)
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

    /// The claims: one statement that takes each lease and withdraws its token, for every key whose row
    /// still matches what was read (`revision`, and `generation` or a token that is gone or expired)
    /// and whose lease is free, lapsed or the claimant's. Rows are locked in key order, and one that
    /// another transaction holds locked is skipped (read and tried again), so claims never wait on
    /// each other. Returns the database's time at each key whose lease was taken.
    private func takeLeases(_ claims: [(request: LeaseRequest, revision: Int64, generation: Int64)]) async throws -> [TokenKey: Double] {
        let rows = try await self.pool.withSession("take refresh leases") { session in
            try await session.query(
                """
                WITH wanted AS (
                    SELECT * FROM unnest(
                        \(claims.map { $0.request.key.tenant })::text[], \(claims.map { $0.request.key.region })::text[],
                        \(claims.map { $0.request.owner })::text[], \(claims.map { $0.revision })::int8[], \(claims.map { $0.generation })::int8[],
                        \(claims.map { $0.request.seconds })::float8[]
                    ) AS w (tenant_id, region, owner, revision, generation, seconds)
                ), locked AS (
                    SELECT c.tenant_id, c.region, w.owner, w.seconds FROM credentials c
                    JOIN wanted w ON c.tenant_id = w.tenant_id AND c.region = w.region
                    WHERE c.revision = w.revision
                        AND (c.generation = w.generation OR c.token IS NULL OR c.expires_at <= extract(epoch FROM now()))
                        AND (c.lease_owner IS NULL OR c.lease_until <= now() OR c.lease_owner = w.owner)
                    ORDER BY c.tenant_id, c.region
                    FOR UPDATE OF c SKIP LOCKED
                )
                UPDATE credentials c SET lease_owner = l.owner, lease_until = now() + l.seconds * interval '1 second',
                    token = NULL, issued_at = NULL, expires_at = NULL
                FROM locked l
                WHERE c.tenant_id = l.tenant_id AND c.region = l.region
                RETURNING c.tenant_id, c.region, extract(epoch FROM now())::float8
                """
            )
        }
        var taken: [TokenKey: Double] = [:]
        for row in rows {
            let (tenant, region, databaseNow) = try row.decode((String, String, Double).self)
            taken[TokenKey(tenant: tenant, region: region)] = databaseNow
        }
        return taken
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

    private func leaseRows(_ keys: [TokenKey]) async throws -> [TokenKey: LeaseRow] {
        let rows = try await self.pool.withSession("read refresh leases") { session in
            try await session.query(
                """
                SELECT c.tenant_id, c.region, appid, app_key, revision, generation, token, issued_at, expires_at, lease_owner,
                    coalesce(extract(epoch FROM lease_until - now())::float8, 0), extract(epoch FROM now())::float8
                FROM credentials c
                JOIN unnest(\(keys.map(\.tenant))::text[], \(keys.map(\.region))::text[]) AS u (tenant_id, region)
                    ON c.tenant_id = u.tenant_id AND c.region = u.region
                """
            )
        }
        var found: [TokenKey: LeaseRow] = [:]
        for row in rows {
            let (tenant, region, appid, appKey, revision, generation, token, issuedAt, expiresAt, leaseOwner, leaseRemaining, databaseNow) =
                try row.decode((String, String, String, ByteBuffer, Int64, Int64, ByteBuffer?, Double?, Double?, String?, Double, Double).self)
            found[TokenKey(tenant: tenant, region: region)] = LeaseRow(
                appid: appid, appKey: Array(appKey.readableBytesView), revision: revision, generation: generation, token: token, issuedAt: issuedAt,
                expiresAt: expiresAt, leaseOwner: leaseOwner, leaseRemaining: leaseRemaining, databaseNow: databaseNow
            )
        }
        return found
    }
}
