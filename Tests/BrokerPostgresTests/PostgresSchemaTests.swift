import BrokerCore
import BrokerPostgres
import TestSupport
import Testing

@Suite(.heavy) struct PostgresSchemaTests {
    @Test func migratingTwiceChangesNothing() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await fixture.withStore { store in
            try await store.migrate()
            #expect(try await store.changeMarker() == 0)
        }
        #expect(try await fixture.psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM sobot_broker_schema") == "1,2,3")
        #expect(try await fixture.psql("SELECT count(*) FROM configuration_version") == "1")
    }

    @Test func brokersStartingAtOnceMigrateOnce() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Four migrations queue on one advisory lock; with the whole suite on two cores the last
            // one waited past the daemon's default bound (10 s seen), so the bound here is generous.
            var options = PostgresStore.Options()
            options.timeout = .seconds(30)
            for _ in 0..<4 {
                group.addTask { try await fixture.withStore(options: options) { _ in } }
            }
            try await group.waitForAll()
        }
        #expect(try await fixture.psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM sobot_broker_schema") == "1,2,3")
    }

    /// A database from before the revision sequence (schema 1) gets one that starts above every
    /// revision it holds, so no credential's revision ever goes back.
    @Test func aVersionOneDatabaseGetsRevisionsAboveItsOwn() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await fixture.withStore { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", "k1"))], now: 1, dryRun: false)
        }
        try await fixture.psql(
            """
            ALTER TABLE credentials ALTER COLUMN revision SET DEFAULT 1; DROP SEQUENCE credential_revision; DROP TABLE client_keys;
            UPDATE credentials SET revision = 7; DELETE FROM sobot_broker_schema WHERE version >= 2
            """
        )
        try await fixture.withStore { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", "k1")), tenant("globex", ("us", "2", "k2"))], now: 2, dryRun: false)
            let revisions = try await store.credentialRevisions()
            #expect(revisions[TokenKey(tenant: "acme", region: "sg")] ?? 0 > 7)
            #expect(revisions[TokenKey(tenant: "globex", region: "us")] ?? 0 > 7)
        }
    }

    @Test func aNewerSchemaIsRefused() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await fixture.withStore { _ in }
        try await fixture.psql("INSERT INTO sobot_broker_schema VALUES (99, now())")
        await #expect {
            try await fixture.withStore { _ in }
        } throws: { error in
            guard case StoreError.newerSchema(let found, let supported) = error else { return false }
            return found == 99 && supported == 3
        }
    }

    @Test func aStoreWithoutSchemaSaysToRunInit() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        await #expect {
            try await fixture.withStore(migrate: false) { try await $0.summaries() }
        } throws: { error in
            let store = error as? PostgresStoreError
            return store?.sqlState == "42P01" && "\(error)".contains("sobot-broker init") && !"\(error)".contains("\n")
        }
    }
}
