import BrokerCore
import Foundation
import TestSupport
import Testing

@Suite struct TenantStoreTests {
    static func definitions(_ count: Int, keyPrefix: String = "PLAINTEXT-APPKEY") -> [TenantDefinition] {
        (0..<count).map { index in
            TenantDefinition(
                id: "tenant-\(index)",
                name: "Tenant \(index)",
                credentials: [
                    CredentialDefinition(region: "sg", appid: "sg\(index)", appKey: "\(keyPrefix)-sg-\(index)"),
                    CredentialDefinition(region: "us", appid: "us\(index)", appKey: "\(keyPrefix)-us-\(index)"),
                ]
            )
        }
    }

    @Test func importsAThousandTenantsAndReadsThemBackAfterReopening() throws {
        let directory = TemporaryDirectory("store")
        let sealer = SecretSealer(keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 1)]))
        let path = directory.file("broker.db")
        do {
            let store = try SQLiteStore(path: path, sealer: sealer)
            let report = try store.upsert(Self.definitions(1000), now: 100)
            #expect(report == UpsertReport(tenantsAdded: 1000, tenantsUpdated: 0, credentialsWritten: 2000))
        }
        let reopened = try SQLiteStore(path: path, sealer: sealer)
        let summaries = try reopened.summaries()
        #expect(summaries.count == 1000)
        #expect(summaries.allSatisfy { $0.regions.map(\.region) == ["sg", "us"] })
        let credential = try #require(try reopened.credential(for: TokenKey(tenant: "tenant-417", region: "us")))
        #expect(credential.appid == "us417")
        #expect(credential.appKey == "PLAINTEXT-APPKEY-us-417")
        #expect(try reopened.credentialKeys().count == 2000)
    }

    @Test func databaseFilesNeverHoldPlaintextKeysOrTokens() throws {
        let directory = TemporaryDirectory("raw")
        let sealer = SecretSealer(keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 1)]))
        let store = try SQLiteStore(path: directory.file("broker.db"), sealer: sealer)
        try store.upsert(Self.definitions(200, keyPrefix: "ZQX-SECRET"), now: 100)
        try store.save(StoredToken(key: TokenKey(tenant: "tenant-3", region: "sg"), value: "TOKEN-PLAINTEXT-0042", issuedAt: 100, expiresAt: 9_999_999_999))
        var checked = 0
        for suffix in ["", "-wal", "-shm"] {
            guard let bytes = FileManager.default.contents(atPath: directory.file("broker.db" + suffix)) else { continue }
            checked += 1
            #expect(bytes.range(of: Data("ZQX-SECRET".utf8)) == nil, "plaintext app key in broker.db\(suffix)")
            #expect(bytes.range(of: Data("TOKEN-PLAINTEXT".utf8)) == nil, "plaintext token in broker.db\(suffix)")
        }
        #expect(checked >= 2, "expected the database and its WAL to exist")
        // The appids are not secret, so they must be there: the scan is looking at the right bytes.
        let all = ["", "-wal"].compactMap { FileManager.default.contents(atPath: directory.file("broker.db" + $0)) }
        #expect(all.contains { $0.range(of: Data("us199".utf8)) != nil })
    }

    @Test func upsertKeepsNamesAndDropsTheTokenWhenTheAppIDChanges() throws {
        let directory = TemporaryDirectory("ups")
        let store = try SQLiteStore(path: directory.file("b.db"), sealer: SecretSealer(keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 1)])))
        try store.upsert(Self.definitions(1), now: 1)
        let key = TokenKey(tenant: "tenant-0", region: "sg")
        try store.save(StoredToken(key: key, value: "tok", issuedAt: 1, expiresAt: 10_000))
        try store.upsert([TenantDefinition(id: "tenant-0", name: nil, credentials: [CredentialDefinition(region: "sg", appid: "sg0", appKey: "new")])], now: 2)
        #expect(try store.loadTokens(expiringAfter: 5).tokens.map(\.value) == ["tok"])
        #expect(try store.summaries().first?.name == "Tenant 0")
        try store.upsert([TenantDefinition(id: "tenant-0", name: nil, credentials: [CredentialDefinition(region: "sg", appid: "changed", appKey: "new")])], now: 3)
        #expect(try store.loadTokens(expiringAfter: 5).tokens.isEmpty)
    }

    @Test func removeDeletesARegionOrTheWholeTenantWithTokens() throws {
        let directory = TemporaryDirectory("rm")
        let store = try SQLiteStore(path: directory.file("b.db"), sealer: SecretSealer(keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 1)])))
        try store.upsert(Self.definitions(2), now: 1)
        try store.save(StoredToken(key: TokenKey(tenant: "tenant-0", region: "us"), value: "tok", issuedAt: 1, expiresAt: 10_000))
        #expect(try store.remove(tenant: "tenant-0", region: "us").credentials == 1)
        #expect(try store.loadTokens(expiringAfter: 0).tokens.isEmpty)
        #expect(try store.summaries().first { $0.id == "tenant-0" }?.regions.map(\.region) == ["sg"])
        #expect(try store.remove(tenant: "tenant-0", region: nil).credentials == 1)
        #expect(try store.summaries().map(\.id) == ["tenant-1"])
        #expect(throws: StoreError.self) { try store.remove(tenant: "tenant-0", region: nil) }
        #expect(throws: StoreError.self) { try store.remove(tenant: "tenant-1", region: "eu") }
    }

    @Test func aVersionTwoDatabaseMigratesAndKeepsWhatItHolds() throws {
        let directory = TemporaryDirectory("mig")
        let sealer = SecretSealer(keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 1)]))
        let key = TokenKey(tenant: "tenant-0", region: "sg")
        do {
            let store = try SQLiteStore(path: directory.file("b.db"), sealer: sealer)
            try store.upsert(Self.definitions(1), now: 1)
            try store.save(StoredToken(key: key, value: "tok", issuedAt: 1, expiresAt: 10_000))
        }
        // What a database written by the previous release looks like.
        let older = try SQLiteConnection(path: directory.file("b.db"))
        try older.execute(
            """
            DROP TABLE client_keys; DROP TABLE sealing_key; DROP TABLE revision_counter; ALTER TABLE credentials DROP COLUMN generation;
            UPDATE credentials SET revision = 7; PRAGMA user_version = 2
            """
        )
        let reopened = try SQLiteStore(path: directory.file("b.db"), sealer: sealer)
        #expect(try older.userVersion == 6)
        #expect(try reopened.credentialRevisions()[key] == 7)
        try reopened.upsert(Self.definitions(1), now: 2)
        #expect(try reopened.credentialRevisions()[key] == 8, "the revision counter starts above every revision held")
        #expect(try reopened.credential(for: key)?.appKey == "PLAINTEXT-APPKEY-sg-0")
        #expect(try reopened.loadTokens(expiringAfter: 5).tokens.map(\.value) == ["tok"])
        try reopened.save(StoredToken(key: key, value: "tok-2", issuedAt: 2, expiresAt: 10_000))
        #expect(try reopened.token(for: key, expiringAfter: 5)?.value == "tok-2")
    }

    /// Revisions come from one counter: replacing or removing and re-adding a credential always
    /// gives it a revision above any it had, so a token engine can tell its fetches apart.
    @Test func aCredentialRemovedAndAddedAgainGetsAHigherRevision() throws {
        let directory = TemporaryDirectory("rev")
        let store = try SQLiteStore(path: directory.file("b.db"), sealer: SecretSealer(keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 1)])))
        let key = TokenKey(tenant: "tenant-0", region: "sg")
        try store.upsert(Self.definitions(2), now: 1)
        let first = try #require(try store.credentialRevisions()[key])
        try store.upsert(Self.definitions(1), now: 2)
        let replaced = try #require(try store.credentialRevisions()[key])
        #expect(replaced > first)
        _ = try store.remove(tenant: "tenant-0", region: nil)
        try store.upsert(Self.definitions(1), now: 3)
        #expect(try store.credentialRevisions()[key] ?? 0 > replaced)
        let revisions = try store.credentialRevisions().values
        #expect(Set(revisions).count == revisions.count, "no two credentials share a revision")
    }

    @Test func removingATenantRemovesTheRulesNamingItButNotWildcardsOrOtherTenants() throws {
        let directory = TemporaryDirectory("rmr")
        let store = try SQLiteStore(path: directory.file("b.db"), sealer: SecretSealer(keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 1)])))
        try store.upsert(Self.definitions(2), now: 1)
        try store.grant(AccessRule(subject: .uid(1000), tenant: "tenant-0", methods: ["token.get"]), now: 1)
        try store.grant(AccessRule(subject: .gid(50), tenant: "tenant-0", methods: ["*"]), now: 1)
        try store.grant(AccessRule(subject: .uid(1000), tenant: "*", methods: ["broker.status"]), now: 1)
        try store.grant(AccessRule(subject: .uid(1000), tenant: "tenant-1", methods: ["token.get"]), now: 1)
        func ruleTenants() throws -> [String] { try store.accessRules().map(\.tenant).sorted() }

        // One region of two: the tenant stays, and so do the rules that name it.
        #expect(try store.remove(tenant: "tenant-0", region: "us") == .init(credentials: 1, accessRules: 0))
        #expect(try ruleTenants() == ["*", "tenant-0", "tenant-0", "tenant-1"])
        // Its last region: the tenant goes, and its rules with it, in the same transaction.
        #expect(try store.remove(tenant: "tenant-0", region: "sg") == .init(credentials: 1, accessRules: 2))
        #expect(try ruleTenants() == ["*", "tenant-1"])
        // Re-created under the same id, it inherits no caller.
        try store.upsert(Self.definitions(1), now: 2)
        #expect(try ruleTenants() == ["*", "tenant-1"])
        #expect(try store.remove(tenant: "tenant-1", region: nil) == .init(credentials: 2, accessRules: 1))
        #expect(try ruleTenants() == ["*"])
    }
}
