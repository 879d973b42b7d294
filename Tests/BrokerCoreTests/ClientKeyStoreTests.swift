import BrokerCore
import Foundation
import TestSupport
import Testing

/// Client keys in the SQLite store: what goes in comes out (never the hash in a listing), revocation,
/// uses that never move back, and a database file that holds the hash, not the key.
@Suite struct ClientKeyStoreTests {
    let directory = TemporaryDirectory("keys")
    let sealer = SecretSealer(keyring: MasterKeyring(keys: [try! MasterKey(randomWithID: 1)]))

    @Test func createListRevokeAndRecordUses() throws {
        let store = try SQLiteStore(path: self.directory.file("broker.db"), sealer: self.sealer)
        let first = ClientKey(id: "0123456789ab", name: "billing", tenant: "acme", methods: ["sobot.request", "token.get"], createdAt: 100)
        let second = ClientKey(id: "ba9876543210", name: nil, tenant: "*", methods: ["marketing.*"], createdAt: 200)
        try store.createClientKey(second, secretHash: Array(repeating: 2, count: 32))
        try store.createClientKey(first, secretHash: Array(repeating: 1, count: 32))
        #expect(try store.clientKeys() == [first, second], "oldest first")
        #expect(try store.hashedClientKeys().map(\.secretHash) == [Array(repeating: 1, count: 32), Array(repeating: 2, count: 32)])
        #expect(throws: SQLiteError.self) { try store.createClientKey(first, secretHash: Array(repeating: 3, count: 32)) }
        #expect(throws: SQLiteError.self) { try store.createClientKey(ClientKey(id: "cccccccccccc", name: nil, tenant: "acme", methods: ["*"], createdAt: 1), secretHash: [1]) }

        try store.recordClientKeyUses(["0123456789ab": 500, "ffffffffffff": 500])
        try store.recordClientKeyUses(["0123456789ab": 400])
        #expect(try store.clientKeys().map(\.lastUsedAt) == [500, nil], "a use never moves back; an unknown id is ignored")

        #expect(try store.revokeClientKey(id: "0123456789ab"))
        #expect(try !store.revokeClientKey(id: "0123456789ab"))
        #expect(try !store.revokeClientKey(id: "000000000000"))
        #expect(try store.clientKeys() == [second])
    }

    @Test func aRemovedTenantTakesItsKeysButNotEveryTenantKeys() throws {
        let store = try SQLiteStore(path: self.directory.file("broker.db"), sealer: self.sealer)
        try store.upsert([TenantDefinition(id: "acme", name: nil, credentials: [CredentialDefinition(region: "sg", appid: "1", appKey: "k1"), CredentialDefinition(region: "us", appid: "2", appKey: "k2")])], now: 1)
        for (id, tenant) in [("00000000000a", "acme"), ("00000000000b", "*"), ("00000000000c", "beta")] {
            try store.createClientKey(ClientKey(id: id, name: nil, tenant: tenant, methods: ["*"], createdAt: 1), secretHash: Array(repeating: 1, count: 32))
        }
        #expect(try store.remove(tenant: "acme", region: "us") == RemovalReport(credentials: 1, accessRules: 0, clientKeys: 0), "the tenant remains")
        #expect(try store.remove(tenant: "acme", region: "sg") == RemovalReport(credentials: 1, accessRules: 0, clientKeys: 1))
        #expect(try store.clientKeys().map(\.id) == ["00000000000b", "00000000000c"], "a tenant re-created under its id inherits no key")
    }

    @Test func theDatabaseFilesHoldTheHashNeverTheKey() throws {
        let key = try ClientKeyText.generate()
        let store = try SQLiteStore(path: self.directory.file("broker.db"), sealer: self.sealer)
        try store.createClientKey(ClientKey(id: key.id, name: nil, tenant: "acme", methods: ["token.get"], createdAt: 1), secretHash: key.secretHash)
        let secret = Data(key.revealed.suffix(64).utf8)
        let files = ["", "-wal", "-shm"].compactMap { FileManager.default.contents(atPath: self.directory.file("broker.db" + $0)) }
        #expect(files.count >= 2, "expected the database and its WAL to exist")
        #expect(files.contains { $0.range(of: Data(key.secretHash)) != nil }, "the hash is stored: the scan looks at the right bytes")
        let leaked = files.contains { $0.range(of: secret) != nil || $0.range(of: secret.prefix(16)) != nil }
        #expect(!leaked, "no part of the secret is")
        withExtendedLifetime(store) {}
    }
}
