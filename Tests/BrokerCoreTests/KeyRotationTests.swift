import BrokerCore
import Foundation
import Synchronization
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

    func rotate(_ home: BrokerHome) async throws -> KeyRotation.Report {
        try await KeyRotation.rotate(home: home, store: AsyncSQLiteStore(home.openStore()))
    }

    @Test func rotationReSealsEverySecretAndRetiresTheOldKey() async throws {
        let directory = TemporaryDirectory("rot")
        let home = try initializedHome(directory)
        let report = try await self.rotate(home)
        #expect(report.activeKeyID == 2)
        #expect(report.resealedSecrets == 101)
        #expect(report.retiredKeyIDs == [1])
        #expect(try home.loadKeyring().keys.map(\.id) == [2])
        let store = try home.openStore()
        #expect(try store.keyIDsInUse() == [2])
        #expect(try store.credential(for: TokenKey(tenant: "tenant-42", region: "us"))?.appKey == "PLAINTEXT-APPKEY-us-42")
        #expect(try store.loadTokens(expiringAfter: 0).tokens.first?.value == "tok-1")
        #expect(try await self.rotate(home).activeKeyID == 3)
    }

    @Test func aFailureMidRotationLeavesTheOldStateReadable() async throws {
        let directory = TemporaryDirectory("rotf")
        let home = try initializedHome(directory)
        // Make the last secret the rotation meets unreadable: it fails after re-sealing the others.
        let store = try home.openStore()
        let bogus = try SecretSealer(keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 1)]))
            .seal("x", for: SecretBinding(tenant: "tenant-1", region: "sg", field: .token))
        try store.save(StoredToken(key: TokenKey(tenant: "tenant-1", region: "sg"), value: "placeholder", issuedAt: 1, expiresAt: 9_999_999_999))
        try Self.overwriteToken(home: home, with: bogus)
        await #expect(throws: StoreError.self) { try await self.rotate(home) }
        let after = try home.openStore()
        #expect(try after.keyIDsInUse() == [1])
        for index in 0..<50 {
            #expect(try after.credential(for: TokenKey(tenant: "tenant-\(index)", region: "sg"))?.appKey == "PLAINTEXT-APPKEY-sg-\(index)")
        }
        #expect(try home.loadKeyring().keys.map(\.id) == [1, 2])
    }

    /// A writer that loaded the keyring before a rotation (a long `tenant import`, a `tenant add`
    /// started just before) writes with its own connection throughout three rotations: each of its
    /// commits is re-sealed by the rotation or refused as sealed with a retired version, so every
    /// secret opens with the final key file.
    @Test func aConcurrentWriterNeverCommitsASecretTheRotationRetires() async throws {
        let directory = TemporaryDirectory("rotc")
        let home = try initializedHome(directory)
        let stop = StopFlag()
        async let writes = onThread { () throws -> (written: Int, reopened: Int, failures: [String]) in
            var store = try home.openStore()
            var written = 0
            var reopened = 0
            var failures: [String] = []
            // Paced, and over at most 400 tenants: a writer flat out grew the table so fast that, on a
            // loaded machine, a rotation re-sealing it all held the write lock past the 5 s busy
            // timeout. It writes until the rotations are done (a writer that stopped at a fixed count
            // finished before the first rotation on a loaded machine), replacing earlier tenants' keys.
            while !stop.isSet, failures.isEmpty {
                usleep(2_000)
                let credential = CredentialDefinition(region: "sg", appid: "w\(written % 400)", appKey: "WRITER-KEY-\(written)")
                do {
                    try store.upsert([TenantDefinition(id: "writer-\(written % 400)", name: nil, credentials: [credential])], now: 2)
                    written += 1
                } catch where "\(error)".contains("rotated") && !"\(error)".contains("\n") {
                    reopened += 1
                    store = try home.openStore()
                } catch {
                    failures.append("\(error)")
                }
            }
            return (written, reopened, failures)
        }
        var rotationFailures: [String] = []
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(150))
            do {
                _ = try await self.rotate(home)
            } catch {
                rotationFailures.append("\(error)")
            }
        }
        try await Task.sleep(for: .milliseconds(150))
        stop.set()
        let writer = try await writes
        #expect(rotationFailures.isEmpty, "\(rotationFailures)")
        #expect(writer.failures.isEmpty, "\(writer.failures)")
        #expect(writer.written > 0 && writer.reopened >= 1, "\(writer.written) written, \(writer.reopened) reopened")

        let keyring = try home.loadKeyring()
        let store = try home.openStore()
        #expect(try store.keyIDsInUse() == [keyring.active.id])
        for index in 0..<min(writer.written, 400) {
            // The last write to this tenant: the key it holds now.
            let last = index + 400 * ((writer.written - 1 - index) / 400)
            #expect(try store.credential(for: TokenKey(tenant: "writer-\(index)", region: "sg"))?.appKey == "WRITER-KEY-\(last)")
        }
        for key in try store.credentialKeys() {
            #expect(throws: Never.self) { try store.credential(for: key) }
        }
        #expect(try store.loadTokens(expiringAfter: 0).unreadable.isEmpty)
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

/// A flag one thread sets and another polls.
final class StopFlag: Sendable {
    private let value = Mutex(false)

    var isSet: Bool { self.value.withLock { $0 } }

    func set() { self.value.withLock { $0 = true } }
}
