import BrokerCore
import Foundation
import BrokerPostgres
import TestSupport
import Testing

/// What the database holds: sealed secrets bound to their rows, and stamps on its own clock.
@Suite(.heavy) struct SecretsAndClockTests {
    let sg = TokenKey(tenant: "acme", region: "sg")

    @Test func theDatabaseNeverHoldsAPlaintextKeyOrToken() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        let appKey = "APPKEY-plaintext-4711"
        let token = "TOKEN-plaintext-0815"
        try await fixture.withStore { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", appKey))], now: 1_000, dryRun: false)
            try await store.storeToken(token, for: sg)
            #expect(try await store.token(for: sg, expiringAfter: Int64(fixture.clock.unixNow()))?.value == token)
        }
        let stored = try await fixture.psql("SELECT encode(app_key, 'hex') || ' ' || encode(token, 'hex') FROM credentials")
        #expect(stored.count > 100)
        for secret in [appKey, token] {
            let hex = secret.utf8.map { String(format: "%02x", $0) }.joined()
            #expect(!stored.contains(hex))
            #expect(!stored.contains(hex.dropFirst(8).prefix(16)))
        }
        // Nowhere else either: the whole database, as a dump would have it.
        let everything = try await fixture.psql(
            "SELECT string_agg(t::text, ' ') FROM (SELECT * FROM tenants) t UNION ALL SELECT string_agg(c::text, ' ') FROM credentials c"
        )
        #expect(!everything.contains(appKey) && !everything.contains(token))
    }

    @Test func aSealedValueMovedToAnotherRowDoesNotOpen() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await fixture.withStore { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", "k1"), ("us", "2", "k2"))], now: 1_000, dryRun: false)
            try await store.storeToken("tok-sg", for: sg)
            try await fixture.psql(
                """
                UPDATE credentials u SET token = s.token, issued_at = s.issued_at, expires_at = s.expires_at
                FROM credentials s WHERE s.region = 'sg' AND u.region = 'us'
                """
            )
            let now = Int64(fixture.clock.unixNow())
            let us = TokenKey(tenant: "acme", region: "us")
            #expect(try await store.token(for: us, expiringAfter: now) == nil)
            let loaded = try await store.loadTokens(expiringAfter: now)
            #expect(loaded.tokens.map(\.key) == [sg])
            #expect(loaded.unreadable == [us])
        }
    }

    /// Stamps live on the database's clock; every caller reads them on its own. A broker whose clock
    /// is hours off still sees the token's true remaining lifetime. (The test's clock stands still
    /// while the database's runs: a token read `age` seconds after it was stored has aged as much.)
    @Test func stampsAreRebasedToTheCallersClock() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await fixture.withStore { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", "k1"))], now: 1_000, dryRun: false)
            let stored = ContinuousClock.now
            try await store.storeToken("tok", for: sg)
            for skew in [0.0, -50_000, 7_200] {
                fixture.clock.jumpWallClock(by: skew)
                let now = fixture.clock.unixNow()
                let token = try #require(try await store.token(for: sg, expiringAfter: Int64(now)))
                let age = Double((ContinuousClock.now - stored).components.seconds) + 1
                #expect(token.expiresAt <= now + 3600 + 0.5 && token.expiresAt > now + 3600 - age - 0.5)
                #expect(token.issuedAt <= now + 0.5 && token.issuedAt > now - age - 0.5)
                let summary = try #require(try await store.summaries()[0].regions[0].tokenExpiresAt)
                #expect(Double(summary) <= now + 3600 + 0.5 && Double(summary) > now + 3600 - age - 1.5)  // whole seconds
                #expect(try await store.token(for: sg, expiringAfter: Int64(now + 3_600 - age) - 5) != nil)
                #expect(try await store.token(for: sg, expiringAfter: Int64(now) + 3_601) == nil)
                #expect(try await store.loadTokens(expiringAfter: Int64(now + 3_600 - age) - 5).tokens.count == 1)
                #expect(try await store.loadTokens(expiringAfter: Int64(now) + 3_601).tokens.isEmpty)
            }
        }
    }

    /// A `double precision` column takes NaN and infinity: such stamps (a row written by hand) make the
    /// token unservable, never a crash.
    @Test func hostileStampsAreUnservable() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await fixture.withStore { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", "k1"))], now: 1_000, dryRun: false)
            try await store.storeToken("tok", for: sg)
            let now = Int64(fixture.clock.unixNow())
            for (issued, expires) in [("'NaN'", "'NaN'"), ("0", "'Infinity'"), ("'-Infinity'", "expires_at"), ("1e300", "1e300"), ("expires_at - 700000", "expires_at")] {
                try await fixture.psql("UPDATE credentials SET issued_at = \(issued), expires_at = \(expires)")
                #expect(try await store.token(for: sg, expiringAfter: now) == nil)
                #expect(try await store.loadTokens(expiringAfter: now).tokens.isEmpty)
                _ = try await store.summaries()
                try await store.storeToken("tok", for: sg)
            }
        }
    }
}
