import BrokerCore
import Foundation
import TestSupport
import Testing

@Suite struct KeyRotationTests {
    func initializedHome(_ directory: TemporaryDirectory) throws -> BrokerHome {
        let home = BrokerHome(paths: BrokerPaths(home: directory.file("home")))
        try home.initialize()
        try home.openStore().upsert(TenantStoreTests.definitions(50), now: 1)
        try home.openStore().save(StoredToken(key: TokenKey(tenant: "tenant-1", region: "sg"), value: "tok-1", issuedAt: 1, expiresAt: 7_201))
        return home
    }

    @Test func rotationReSealsEverySecretAndRetiresTheOldKey() throws {
        let directory = TemporaryDirectory("rot")
        let home = try initializedHome(directory)
        let report = try KeyRotation.rotate(home: home)
        #expect(report.activeKeyID == 2)
        #expect(report.resealedSecrets == 101)
        #expect(report.retiredKeyIDs == [1])
        #expect(try home.loadKeyring().keys.map(\.id) == [2])
        let store = try home.openStore()
        #expect(try store.keyIDsInUse() == [2])
        #expect(try store.credential(for: TokenKey(tenant: "tenant-42", region: "us"))?.appKey == "PLAINTEXT-APPKEY-us-42")
        #expect(try store.loadTokens(expiringAfter: 0).tokens.first?.value == "tok-1")
        #expect(try KeyRotation.rotate(home: home).activeKeyID == 3)
    }

    @Test func aFailureMidRotationLeavesTheOldStateReadable() throws {
        let directory = TemporaryDirectory("rotf")
        let home = try initializedHome(directory)
        // Make the last secret the rotation meets unreadable: it fails after re-sealing the others.
        let store = try home.openStore()
        let bogus = try SecretSealer(keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 1)]))
            .seal("x", for: SecretBinding(tenant: "tenant-1", region: "sg", field: .token))
        try store.save(StoredToken(key: TokenKey(tenant: "tenant-1", region: "sg"), value: "placeholder", issuedAt: 1, expiresAt: 9_999_999_999))
        try Self.overwriteToken(home: home, with: bogus)
        #expect(throws: StoreError.self) { try KeyRotation.rotate(home: home) }
        let after = try home.openStore()
        #expect(try after.keyIDsInUse() == [1])
        for index in 0..<50 {
            #expect(try after.credential(for: TokenKey(tenant: "tenant-\(index)", region: "sg"))?.appKey == "PLAINTEXT-APPKEY-sg-\(index)")
        }
        #expect(try home.loadKeyring().keys.map(\.id) == [1, 2])
    }

    /// Writes raw bytes into the token row, as disk corruption would.
    static func overwriteToken(home: BrokerHome, with bytes: [UInt8]) throws {
        let connection = try SQLiteConnection(path: home.paths.database)
        try connection.statement("UPDATE tokens SET token = ?").run([.blob(bytes)])
    }

    @Test func refusesAKeyFileOthersCanRead() throws {
        let directory = TemporaryDirectory("perm")
        let home = try initializedHome(directory)
        chmod(home.paths.masterKey, 0o644)
        #expect {
            _ = try home.openStore()
        } throws: { error in
            "\(error)".contains("group or others") && !"\(error)".contains("\n")
        }
    }
}
