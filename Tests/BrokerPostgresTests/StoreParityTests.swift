import BrokerCore
import BrokerPostgres
import TestSupport
import Synchronization
import Testing

/// The PostgreSQL store does what the SQLite store does: one scenario runs against both, and their
/// transcripts (every result and error, as text) must be the same.
@Suite(.heavy) struct StoreParityTests {
    @Test func everyOperationMatchesSQLite() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        let directory = TemporaryDirectory("parity")
        let sqlite = try SQLiteStore(path: directory.file("broker.db"), sealer: SecretSealer(keyring: fixture.keyring))
        let expected = try await Self.scenario(AsyncSQLiteStore(sqlite), now: Int64(fixture.clock.unixNow())) { key, value in
            let now = fixture.clock.unixNow()
            let revision = try sqlite.credentialRevisions()[key]!
            _ = try sqlite.save(StoredToken(key: key, value: value, issuedAt: now, expiresAt: now + 3600), fetchedUnder: revision)
        }
        let actual = try await fixture.withStore { store in
            try await Self.scenario(store, now: Int64(fixture.clock.unixNow())) { key, value in
                try await store.storeToken(value, for: key)
            }
        }
        #expect(actual.count == expected.count)
        for (line, (got, wanted)) in zip(actual, expected).enumerated() {
            #expect(got == wanted, "line \(line)")
        }
    }

    /// Every BrokerStore operation, with its results and errors written down as lines.
    private static func scenario(
        _ store: any BrokerStore,
        now: Int64,
        storeToken: (TokenKey, String) async throws -> Void
    ) async throws -> [String] {
        var lines: [String] = []
        func record(_ label: String, _ body: () async throws -> Any) async {
            do {
                lines.append("\(label): \(try await body())")
            } catch {
                lines.append("\(label) failed: \(error)")
            }
        }
        let sg = TokenKey(tenant: "acme", region: "sg")
        let us = TokenKey(tenant: "acme", region: "us")

        await record("add") {
            try await store.upsert([tenant("acme", name: "Acme", ("sg", "1", "key-sg"), ("us", "7", "key-us")), tenant("beta", ("sg", "2", "key-b"))], now: now, dryRun: false)
        }
        await record("summaries") { try await store.summaries().map(Self.describe) }
        try await storeToken(sg, "token-sg")
        try await storeToken(us, "token-us")
        await record("tokens") { try await store.loadTokens(expiringAfter: now).tokens.map { "\($0.key)=\($0.value) r\($0.revision) g\($0.generation)" }.sorted() }

        // Same appid: the token stays. New appid: it goes. Both revisions grow. A nil name keeps the name.
        await record("replace") {
            try await store.upsert([tenant("acme", ("sg", "1", "key-sg-2"), ("us", "8", "key-us-2"))], now: now + 1, dryRun: false)
        }
        await record("sg token") { try await store.token(for: sg, expiringAfter: now).map { "\($0.value) r\($0.revision) g\($0.generation)" } ?? "none" }
        await record("us token") { try await store.token(for: us, expiringAfter: now).map(\.value) ?? "none" }
        // What `tenant import --dry-run` asks: which stored keys equal the file's (compared in memory).
        await record("same app keys") {
            let candidates = [sg: "key-sg-2", us: "key-us", TokenKey(tenant: "beta", region: "sg"): "key-b", TokenKey(tenant: "ghost", region: "sg"): "k"]
            return try await store.credentialsWithSameAppKey(candidates).sorted().map(\.description)
        }
        await record("revisions") { try await store.credentialRevisions().sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } }
        await record("summaries") { try await store.summaries().map(Self.describe) }

        // A dry run reports and keeps nothing.
        await record("dry run") { try await store.upsert([tenant("gamma", ("sg", "3", "key-g")), tenant("acme", name: "Renamed")], now: now, dryRun: true) }
        await record("summaries") { try await store.summaries().map(Self.describe) }

        // Repeats in one batch apply in order: the last name and key win, revisions count every write,
        // and an appid that changes and changes back still loses the token.
        try await storeToken(us, "token-us-2")
        await record("repeats") {
            try await store.upsert(
                [tenant("acme", name: "A1", ("us", "9", "k1")), tenant("acme", ("us", "8", "k2")), tenant("delta", name: "D", ("sg", "4", "k3")), tenant("delta")],
                now: now + 2,
                dryRun: false
            )
        }
        await record("us token") { try await store.token(for: us, expiringAfter: now).map(\.value) ?? "none" }
        await record("revisions") { try await store.credentialRevisions().sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } }
        await record("summaries") { try await store.summaries().map(Self.describe) }
        await record("keys") { try await store.credentialKeys(ofTenant: "acme") }
        await record("no keys") { try await store.credentialKeys(ofTenant: "nobody") }

        // Access rules.
        await record("grant") { try await store.grant(AccessRule(subject: .uid(1000), tenant: "beta", methods: ["token.get"]), now: now) }
        await record("grant") { try await store.grant(AccessRule(subject: .uid(1000), tenant: "beta", methods: ["*"]), now: now) }
        await record("grant") { try await store.grant(AccessRule(subject: .gid(50), tenant: "*", methods: ["marketing.*", "token.get"]), now: now) }
        await record("grant") { try await store.grant(AccessRule(subject: .uid(7), tenant: "acme", methods: ["token.get"]), now: now) }
        await record("rules") { try await store.accessRules().map(Self.describe) }
        await record("revoke none") { try await store.revoke(.uid(4242), tenant: nil) }
        await record("revoke one") { try await store.revoke(.uid(7), tenant: "acme") }
        await record("grant") { try await store.grant(AccessRule(subject: .uid(7), tenant: "acme", methods: ["token.get"]), now: now) }

        // Client keys: listed oldest first, uses that never move back, revocation.
        for (id, tenant, created) in [("00000000000a", "acme", now), ("00000000000b", "*", now), ("00000000000c", "beta", now - 1)] {
            await record("create key") {
                try await store.createClientKey(
                    ClientKey(id: id, name: tenant == "acme" ? "ci" : nil, tenant: tenant, methods: ["sobot.request", "token.get"], createdAt: created),
                    secretHash: Array(repeating: UInt8(created & 0xff), count: 32)
                )
            }
        }
        await record("uses") { try await store.recordClientKeyUses(["00000000000a": now + 5, "00000000000c": now + 2, "ffffffffffff": now]) }
        await record("uses") { try await store.recordClientKeyUses(["00000000000a": now + 1]) }
        await record("revoke key") { try await store.revokeClientKey(id: "00000000000b") }
        await record("revoke unknown key") { try await store.revokeClientKey(id: "ffffffffffff") }
        await record("keys") { try await store.clientKeys().map(Self.describe) }
        await record("hashes") { try await store.hashedClientKeys().map { "\($0.key.id)=\(Hex.encode($0.secretHash).prefix(8))" } }

        // Removal: one region, the last region (the tenant and its rules go), a whole tenant, errors.
        await record("remove us") { try await store.remove(tenant: "acme", region: "us") }
        await record("remove sg") { try await store.remove(tenant: "acme", region: "sg") }
        await record("remove beta") { try await store.remove(tenant: "beta", region: nil) }
        await record("remove unknown") { try await store.remove(tenant: "nobody", region: nil) }
        await record("remove unknown region") { try await store.remove(tenant: "delta", region: "eu") }
        await record("rules") { try await store.accessRules().map(Self.describe) }
        await record("keys") { try await store.clientKeys().map(Self.describe) }
        await record("summaries") { try await store.summaries().map(Self.describe) }
        await record("tokens") { try await store.loadTokens(expiringAfter: now).tokens.map(\.key) }
        await record("key ids") { try await store.keyIDsInUse() }
        // Last: a dry run may use up PostgreSQL revision numbers, which the lines above compare.
        await record("dry run progress") {
            let written = LargestCount()
            _ = try await store.upsert([tenant("acme", ("sg", "1", "key-sg-2")), tenant("gamma", ("us", "3", "key-g"))], now: now + 1, dryRun: true, progress: written.record)
            return written.largest
        }
        return lines
    }

    private static func describe(_ summary: TenantSummary) -> String {
        "\(summary.id) (\(summary.name ?? "-")): " + summary.regions.map { "\($0.region)=\($0.appid)\($0.tokenExpiresAt == nil ? "" : "+token")" }.joined(separator: " ")
    }

    private static func describe(_ rule: AccessRule) -> String {
        "\(rule.subject) \(rule.tenant) \(rule.methods)"
    }

    private static func describe(_ key: ClientKey) -> String {
        "\(key.id) \(key.name ?? "-") \(key.tenant) \(key.methods) created \(key.createdAt) used \(key.lastUsedAt.map(String.init) ?? "never")"
    }
}

extension PostgresStore {
    /// Stores `value` as a one-hour token for `key` the way a broker does: take the lease, complete it.
    func storeToken(_ value: String, for key: TokenKey, owner: String = "test") async throws {
        let revision = try await self.credentialRevisions()[key]!
        let generation = try await self.changes(since: nil).tokens.first { $0.key == key }!.generation
        guard case .granted(_, let databaseNow) = try await self.claimLease(for: key, owner: owner, basis: FetchBasis(revision: revision, generation: generation), seconds: 30) else {
            throw PostgresServerError("no lease for \(key)")
        }
        _ = try await self.completeLease(for: key, owner: owner, revision: revision, token: value, issuedAtDatabase: databaseNow, lifetime: 3600)
    }
}

/// The largest count an upsert's progress reported.
private final class LargestCount: Sendable {
    private let value = Mutex(0)

    @Sendable func record(_ count: Int) { self.value.withLock { $0 = max($0, count) } }

    var largest: Int { self.value.withLock { $0 } }
}
