import BrokerCore
import BrokerPostgres
import TestSupport
import Testing

/// Refresh leases: one fetch per key across the cluster, fenced by owner and revision.
@Suite(.heavy) struct LeaseTests {
    let key = TokenKey(tenant: "acme", region: "sg")
    let fresh = FetchBasis(revision: 1, generation: 0)

    private func withAcme(_ fixture: PostgresFixture, _ body: (PostgresStore) async throws -> Void) async throws {
        try await fixture.withStore { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", "app-key-1"))], now: 1_000, dryRun: false)
            try await body(store)
        }
    }

    @Test func aSecondOwnerWaitsForTheFirst() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await self.withAcme(fixture) { store in
            guard case .granted(let credential, _) = try await store.claimLease(for: key, owner: "a", basis: fresh, seconds: 30) else {
                Issue.record("the first claim was not granted")
                return
            }
            #expect(credential.appid == "1" && credential.appKey == "app-key-1" && credential.revision == 1)
            guard case .held(let remaining) = try await store.claimLease(for: key, owner: "b", basis: fresh, seconds: 30) else {
                Issue.record("the second owner was not held off")
                return
            }
            #expect(remaining > 25 && remaining <= 30)
            // The holder may claim again (a retry after its own failure).
            guard case .granted = try await store.claimLease(for: key, owner: "a", basis: fresh, seconds: 30) else {
                Issue.record("the holder could not claim again")
                return
            }
        }
    }

    @Test func aLapsedOrReleasedLeaseCanBeTaken() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await self.withAcme(fixture) { store in
            _ = try await store.claimLease(for: key, owner: "a", basis: fresh, seconds: 0.2)
            try await Task.sleep(for: .milliseconds(300))
            guard case .granted = try await store.claimLease(for: key, owner: "b", basis: fresh, seconds: 30) else {
                Issue.record("a lapsed lease was not taken over")
                return
            }
            try await store.releaseLease(for: key, owner: "a")  // not a's any more: changes nothing
            guard case .held = try await store.claimLease(for: key, owner: "c", basis: fresh, seconds: 30) else {
                Issue.record("a stale release freed b's lease")
                return
            }
            try await store.releaseLease(for: key, owner: "b")
            guard case .granted = try await store.claimLease(for: key, owner: "c", basis: fresh, seconds: 30) else {
                Issue.record("a released lease was not free")
                return
            }
        }
    }

    @Test func completingStoresTheTokenAndBumpsTheGeneration() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await self.withAcme(fixture) { store in
            guard case .granted(_, let databaseNow) = try await store.claimLease(for: key, owner: "a", basis: fresh, seconds: 30) else { return }
            #expect(try await store.completeLease(for: key, owner: "a", revision: 1, token: "tok-1", issuedAtDatabase: databaseNow, lifetime: 3600) == 1)
            let stored = try #require(try await store.token(for: key, expiringAfter: Int64(fixture.clock.unixNow())))
            #expect(stored.value == "tok-1" && stored.generation == 1 && stored.revision == 1)
            #expect(abs(stored.expiresAt - fixture.clock.unixNow() - 3600) < 2)
            #expect(try await store.refreshers() == [key: "a"])
            // The lease went with the completion: a second completion is fenced off.
            #expect(try await store.completeLease(for: key, owner: "a", revision: 1, token: "tok-x", issuedAtDatabase: databaseNow, lifetime: 3600) == nil)
            guard case .granted(_, let later) = try await store.claimLease(for: key, owner: "b", basis: FetchBasis(revision: 1, generation: 1), seconds: 30) else {
                Issue.record("no lease on the current generation")
                return
            }
            // Taking the lease withdrew the token: get_token is about to revoke it.
            #expect(try await store.token(for: key, expiringAfter: Int64(fixture.clock.unixNow())) == nil)
            #expect(try await store.completeLease(for: key, owner: "b", revision: 1, token: "tok-2", issuedAtDatabase: later, lifetime: 3600) == 2)
            #expect(try await store.refreshers() == [key: "b"])
        }
    }

    @Test func aFetchThatLostItsLeaseOrCredentialWritesNothing() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await self.withAcme(fixture) { store in
            guard case .granted(_, let startedAt) = try await store.claimLease(for: key, owner: "a", basis: fresh, seconds: 0.2) else { return }
            try await Task.sleep(for: .milliseconds(300))
            guard case .granted(_, let bStartedAt) = try await store.claimLease(for: key, owner: "b", basis: fresh, seconds: 30) else { return }
            #expect(try await store.completeLease(for: key, owner: "a", revision: 1, token: "late", issuedAtDatabase: startedAt, lifetime: 3600) == nil)
            // The credential is replaced while b fetches: b's token belongs to the old one.
            _ = try await store.upsert([tenant("acme", ("sg", "1", "app-key-2"))], now: 1_001, dryRun: false)
            #expect(try await store.completeLease(for: key, owner: "b", revision: 1, token: "stale", issuedAtDatabase: bStartedAt, lifetime: 3600) == nil)
            #expect(try await store.token(for: key, expiringAfter: Int64(fixture.clock.unixNow())) == nil)
            #expect(try await fixture.psql("SELECT generation FROM credentials") == "0")
        }
    }

    @Test func anOldBasisGetsTheNewerToken() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await self.withAcme(fixture) { store in
            try await store.storeToken("tok-1", for: key, owner: "a")
            guard case .newer(let token) = try await store.claimLease(for: key, owner: "b", basis: fresh, seconds: 30) else {
                Issue.record("the newer token was not returned")
                return
            }
            #expect(token.value == "tok-1" && token.generation == 1 && token.revision == 1)
            #expect(abs(token.expiresAt - fixture.clock.unixNow() - 3600) < 2)
            // Nothing was withdrawn: the token is still stored.
            #expect(try await store.token(for: key, expiringAfter: Int64(fixture.clock.unixNow()))?.value == "tok-1")
        }
    }

    @Test func anExpiredNewerTokenIsReplaced() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await self.withAcme(fixture) { store in
            try await store.storeToken("tok-1", for: key, owner: "a")
            try await fixture.psql("UPDATE credentials SET issued_at = issued_at - 7200, expires_at = expires_at - 7200")
            guard case .granted = try await store.claimLease(for: key, owner: "b", basis: fresh, seconds: 30) else {
                Issue.record("an expired token blocked the claim")
                return
            }
        }
    }

    @Test func anUnknownKeyIsMissing() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await self.withAcme(fixture) { store in
            guard case .missing = try await store.claimLease(for: TokenKey(tenant: "acme", region: "us"), owner: "a", basis: fresh, seconds: 30) else {
                Issue.record("a missing credential was not reported")
                return
            }
        }
    }

    /// A broker whose key file lacks the version a secret is sealed with never fetches: it throws an
    /// error naming that version, and withdraws nothing.
    @Test func aMissingKeyVersionIsNamedAndNothingIsWithdrawn() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        let rotated = try fixture.keyring.addingFreshKey()
        try await fixture.withStore(keyring: rotated) { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", "app-key-1"))], now: 1_000, dryRun: false)
            _ = try await store.resealAll { rotated }
        }
        try await fixture.withStore { store in
            await #expect {
                _ = try await store.claimLease(for: key, owner: "old", basis: fresh, seconds: 30)
            } throws: { error in
                guard case StoreError.unreadableSecret(_, _, "app_key", .unknownKey(2)) = error else { return false }
                return "\(error)".contains("master key version 2")
            }
        }
        #expect(try await fixture.psql("SELECT count(*) FROM credentials WHERE lease_owner IS NOT NULL") == "0")
        try await fixture.withStore(keyring: rotated) { store in try await store.storeToken("tok-2", for: key, owner: "new") }
        try await fixture.withStore { store in
            await #expect {
                _ = try await store.claimLease(for: key, owner: "old", basis: fresh, seconds: 30)
            } throws: { error in
                guard case StoreError.unreadableSecret(_, _, "token", .unknownKey(2)) = error else { return false }
                return true
            }
        }
        #expect(try await fixture.psql("SELECT token IS NOT NULL AND lease_owner IS NULL FROM credentials") == "t")
    }
}
