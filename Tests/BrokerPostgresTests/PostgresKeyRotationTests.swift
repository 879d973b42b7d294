import BrokerCore
import BrokerPostgres
import TestSupport
import Testing

/// `key rotate` on PostgreSQL: re-sealing under table locks, and the cluster interlock.
@Suite(.heavy) struct PostgresKeyRotationTests {
    let sg = TokenKey(tenant: "acme", region: "sg")

    @Test func everySecretIsResealedAndOldWritersAreRefused() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        let rotated = try fixture.keyring.addingFreshKey()
        try await fixture.withStore { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", "k1"), ("us", "2", "k2"))], now: 1_000, dryRun: false)
            try await store.storeToken("tok", for: sg)
            #expect(try await store.keyIDsInUse() == [1])
            let (keyring, resealed) = try await store.resealAll { rotated }
            #expect(keyring.active.id == 2 && resealed == 3)
            #expect(try await store.keyIDsInUse() == [2])
            #expect(try await store.withKeyIDsInUse { $0 } == [2])
            // The store adopted the new keyring: it reads and writes with version 2.
            #expect(try await store.token(for: sg, expiringAfter: Int64(fixture.clock.unixNow()))?.value == "tok")
            _ = try await store.upsert([tenant("beta", ("sg", "3", "k3"))], now: 1_000, dryRun: false)
            #expect(try await store.keyIDsInUse() == [2])
        }
        #expect(try await fixture.psql("SELECT key_id FROM sealing_key") == "2")
        // A writer that loaded version 1 writes nothing: it lacks the version the cluster seals with.
        try await fixture.withStore { old in
            await #expect {
                _ = try await old.upsert([tenant("gamma", ("sg", "4", "k4"))], now: 1_000, dryRun: false)
            } throws: { error in
                guard case StoreError.keyVersionMissing(2) = error else { return false }
                return true
            }
            let revision = try await old.credentialRevisions()[sg]!
            let generation = try await old.changes(since: nil).tokens.first { $0.key == sg }!.generation
            try await fixture.psql("UPDATE credentials SET lease_owner = 'old', lease_until = now() + interval '1 minute' WHERE region = 'sg' AND tenant_id = 'acme'")
            await #expect(throws: StoreError.self) {
                _ = try await old.completeLease(for: sg, owner: "old", revision: revision, token: "x", issuedAtDatabase: 0, lifetime: 60)
            }
            #expect(generation == 1)
        }
        #expect(try await fixture.psql("SELECT count(*) FROM tenants WHERE id = 'gamma'") == "0")
    }

    /// Brokers seal with the version recorded in `sealing_key`, not with the newest in their key file:
    /// a version that `key add` put in some key files changes nothing until the rotation records it.
    @Test func writersSealWithTheRecordedVersion() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        let two = try fixture.keyring.addingFreshKey()
        let three = try two.addingFreshKey()
        try await fixture.withStore { store in try await store.recordSealingKeyIfUnset() }
        try await fixture.withStore(keyring: two) { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", "k1"))], now: 1_000, dryRun: false)
            try await store.storeToken("tok", for: sg)
            #expect(try await store.keyIDsInUse() == [1])
            _ = try await store.resealAll { two }
        }
        try await fixture.withStore(keyring: three) { store in
            _ = try await store.upsert([tenant("beta", ("sg", "2", "k2"))], now: 1_000, dryRun: false)
            try await store.storeToken("tok", for: TokenKey(tenant: "beta", region: "sg"))
            #expect(try await store.keyIDsInUse() == [2])
        }
        // A key file without the recorded version (though with a newer one) cannot write.
        let withoutTwo = MasterKeyring(keys: [fixture.keyring.keys[0], three.keys[2]])
        try await fixture.withStore(keyring: withoutTwo) { store in
            await #expect {
                _ = try await store.upsert([tenant("gamma", ("sg", "3", "k3"))], now: 1_000, dryRun: false)
            } throws: { error in
                guard case StoreError.keyVersionMissing(2) = error else { return false }
                return "\(error)".contains("version 2")
            }
        }
    }

    /// No rotation while a live broker lacks the new version: it could open none of the re-sealed
    /// secrets. A broker not seen for 30 s does not count.
    @Test func aBrokerWithoutTheNewVersionBlocksTheRotation() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        let rotated = try fixture.keyring.addingFreshKey()
        try await fixture.withStore { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", "k1"))], now: 1_000, dryRun: false)
            try await store.heartbeat(id: "edge-1", host: "alpha", pid: 10, version: "1.0", keyIDs: [1])
            try await store.heartbeat(id: "edge-2", host: "beta", pid: 20, version: "1.0", keyIDs: [1, 2])
            try await store.heartbeat(id: "gone", host: "gamma", pid: 30, version: "1.0", keyIDs: [1])
            try await fixture.psql("UPDATE brokers SET last_seen = now() - interval '31 seconds' WHERE id = 'gone'")
            await #expect {
                _ = try await store.resealAll { rotated }
            } throws: { error in
                guard case PostgresStoreError.keyVersionMissing(2, let brokers) = error else { return false }
                let message = "\(error)"
                return brokers.map(\.id) == ["edge-1"] && message.contains("edge-1 on alpha") && message.contains("master key version 2")
                    && !message.contains("edge-2") && !message.contains("gamma") && !message.contains("\n")
            }
            #expect(try await store.keyIDsInUse() == [1])
            #expect(try await fixture.psql("SELECT count(*) FROM sealing_key") == "0")

            try await store.heartbeat(id: "edge-1", host: "alpha", pid: 10, version: "1.0", keyIDs: [1, 2])
            #expect(try await store.resealAll { rotated }.keyring.active.id == 2)
            #expect(try await store.keyIDsInUse() == [2])
        }
    }

    /// While the versions in use are read (before the key file drops the others), no writer commits.
    @Test func readingTheVersionsInUseKeepsWritersOut() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await fixture.withStore { store in
            _ = try await store.upsert([tenant("acme", ("sg", "1", "k1"))], now: 1_000, dryRun: false)
            let server = fixture.server
            let database = fixture.database
            let writer = try await store.withKeyIDsInUse { ids -> String in
                #expect(ids == [1])
                do {
                    try server.psql("SET lock_timeout = '300ms'; UPDATE credentials SET appid = 'x'", database: database)
                    return "written"
                } catch {
                    return "\(error)"
                }
            }
            #expect(writer.contains("lock timeout"))
        }
    }
}
