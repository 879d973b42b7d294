import BrokerCore
import BrokerPostgres
import TestSupport
import Testing

/// How brokers learn what others did: `changes(since:)`, the configuration version, heartbeats.
@Suite(.heavy) struct ChangeTrackingTests {
    let sg = TokenKey(tenant: "acme", region: "sg")
    let us = TokenKey(tenant: "acme", region: "us")

    @Test func aReadReturnsWhatWasWrittenSinceTheLastOne() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await fixture.withStore { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", "k1"), ("us", "2", "k2"))], now: 1_000, dryRun: false)
            let everything = try await store.changes(since: nil)
            #expect(everything.configurationChanged)
            #expect(everything.tokens.sorted { $0.key < $1.key } == [TokenVersion(key: sg, revision: 1, generation: 0), TokenVersion(key: us, revision: 2, generation: 0)])

            let quiet = try await store.changes(since: everything.horizon)
            #expect(quiet.tokens.isEmpty && !quiet.configurationChanged)

            try await store.storeToken("tok", for: sg)
            let token = try await store.changes(since: quiet.horizon)
            #expect(token.tokens.last == TokenVersion(key: sg, revision: 1, generation: 1))
            #expect(!token.tokens.contains { $0.key == us })
            #expect(!token.configurationChanged)

            try await store.grant(AccessRule(subject: .uid(1), tenant: "acme", methods: ["*"]), now: 1_000)
            let rule = try await store.changes(since: token.horizon)
            #expect(rule.tokens.isEmpty && rule.configurationChanged)
        }
    }

    /// The case a timestamp or sequence watermark gets wrong: a transaction that wrote before the read
    /// but commits after it. The horizon (the read's snapshot xmin) is below its id, so the next read
    /// finds its row.
    @Test func aCommitThatOverlapsAReadIsNotMissed() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await fixture.withStore { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", "k1"))], now: 1_000, dryRun: false)
            let start = try await store.changes(since: nil)
            async let held: String = fixture.psql(
                "BEGIN; UPDATE credentials SET generation = 41; SELECT pg_sleep(1.5); UPDATE credentials SET generation = 42; COMMIT;"
            )
            let writing = try await eventually {
                try await fixture.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted") != "0"
            }
            #expect(writing)
            let during = try await store.changes(since: start.horizon)
            #expect(during.tokens.isEmpty)
            _ = try await held
            let after = try await store.changes(since: during.horizon)
            #expect(after.tokens == [TokenVersion(key: sg, revision: 1, generation: 42)])
            #expect(try await store.changes(since: after.horizon).tokens.isEmpty)
        }
    }

    @Test func theConfigurationVersionCountsConfigurationChangesOnly() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await fixture.withStore { store in
            var marker = try await store.changeMarker()
            func changed() async throws -> Bool {
                let now = try await store.changeMarker()
                defer { marker = now }
                return now != marker
            }
            _ = try await store.upsert([tenant("acme", ("sg", "1", "k1"))], now: 1_000, dryRun: false)
            #expect(try await changed())
            _ = try await store.upsert([tenant("beta", ("sg", "2", "k2"))], now: 1_000, dryRun: true)
            #expect(try await !changed())
            try await store.storeToken("tok", for: sg)
            #expect(try await !changed())
            try await store.grant(AccessRule(subject: .gid(5), tenant: "*", methods: ["*"]), now: 1_000)
            #expect(try await changed())
            #expect(try await store.revoke(.gid(6), tenant: nil) == 0)
            #expect(try await !changed())
            #expect(try await store.revoke(.gid(5), tenant: nil) == 1)
            #expect(try await changed())
            _ = try await store.remove(tenant: "acme", region: nil)
            #expect(try await changed())
        }
    }

    @Test func membersAreTheBrokersSeenLately() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await fixture.withStore { store in
            try await store.heartbeat(id: "b1", host: "alpha", pid: 10, version: "1.0", keyIDs: [1, 2])
            try await store.heartbeat(id: "b2", host: "beta", pid: 20, version: "1.0", keyIDs: [UInt32.max])
            try await store.heartbeat(id: "b3", host: "gamma", pid: 30, version: "0.9", keyIDs: [1])
            try await fixture.psql("UPDATE brokers SET last_seen = now() - interval '1 minute' WHERE id = 'b3'")
            let members = try await store.members(seenWithin: 30)
            #expect(members.map(\.id) == ["b1", "b2"])
            #expect(members[0].host == "alpha" && members[0].pid == 10 && members[0].keyIDs == [1, 2] && members[0].secondsSinceSeen < 5)
            #expect(members[1].keyIDs == [UInt32.max])

            let started = try await fixture.psql("SELECT started_at FROM brokers WHERE id = 'b1'")
            try await store.heartbeat(id: "b1", host: "alpha", pid: 10, version: "1.0", keyIDs: [1, 2, 3])
            #expect(try await fixture.psql("SELECT started_at FROM brokers WHERE id = 'b1'") == started)
            #expect(try await store.members(seenWithin: 30)[0].keyIDs == [1, 2, 3])

            try await store.leaveCluster(id: "b1")
            #expect(try await store.members(seenWithin: 3600).map(\.id) == ["b2", "b3"])
        }
    }
}
