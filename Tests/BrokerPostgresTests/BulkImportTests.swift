import BrokerCore
import BrokerPostgres
import TestSupport
import Testing

/// `tenant import` at scale: one transaction of multi-row statements, all or nothing.
@Suite(.heavy) struct BulkImportTests {
    private static func tenants(_ count: Int, keyPrefix: String = "app-key") -> [TenantDefinition] {
        (0..<count).map { index in
            tenant("t\(index)", name: "Tenant \(index)", ("sg", "\(index)", "\(keyPrefix)-sg-\(index)"), ("us", "\(index + 1)", "\(keyPrefix)-us-\(index)"))
        }
    }

    /// 100,000 tenants with two credentials each, sealing included; the time is printed, not asserted.
    @Test func aHundredThousandTenantsImportInOneTransaction() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await withOwnThread { try await fixture.withStore(options: Self.generous) { store in
            let definitions = Self.tenants(100_000)
            let clock = ContinuousClock()
            let start = clock.now
            let report = try await store.upsert(definitions, now: 1_000, dryRun: false)
            let imported = clock.now - start
            #expect(report == UpsertReport(tenantsAdded: 100_000, tenantsUpdated: 0, credentialsWritten: 200_000))
            let again = clock.now
            let second = try await store.upsert(definitions, now: 1_001, dryRun: false)
            let replaced = clock.now - again
            #expect(second == UpsertReport(tenantsAdded: 0, tenantsUpdated: 100_000, credentialsWritten: 200_000))
            let listed = clock.now
            let summaries = try await store.summaries()
            let listing = clock.now - listed
            #expect(summaries.count == 100_000 && summaries.allSatisfy { $0.regions.count == 2 })
            print("100,000 tenants, 200,000 credentials: import \(imported), replace \(replaced), list \(listing)")
        } }
        #expect(try await fixture.psql("SELECT count(*), min(revision), max(revision) FROM credentials") == "200000|200001|400000", "the replacement gave every credential a new revision, above all the first import's")
    }

    /// A row PostgreSQL refuses (a NUL byte) in the last statement of a batch: nothing at all is kept,
    /// and the error quotes no value.
    @Test func anInvalidLastRowLeavesNothingBehind() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        var definitions = Self.tenants(25_000, keyPrefix: "secret-app-key")
        definitions.append(tenant("z-last", ("sg", "bad\u{0}appid", "secret-app-key-last")))
        try await withOwnThread { try await fixture.withStore(options: Self.generous) { store in
            await #expect {
                _ = try await store.upsert(definitions, now: 1_000, dryRun: false)
            } throws: { error in
                let message = "\(error)"
                return (error as? PostgresStoreError)?.sqlState?.hasPrefix("22") == true && !message.contains("secret-app-key")
                    && !message.contains("bad") && !message.contains("\n")
            }
            let summaries = try await store.summaries()
            let marker = try await store.changeMarker()
            #expect(summaries.isEmpty && marker == 0)
        } }
        #expect(try await fixture.psql("SELECT (SELECT count(*) FROM tenants) + (SELECT count(*) FROM credentials)") == "0")
    }

    /// Seconds per statement for a slow, shared test machine; the default of 5 s is the daemon's.
    private static var generous: PostgresStore.Options {
        var options = PostgresStore.Options()
        options.timeout = .seconds(30)
        return options
    }
}
