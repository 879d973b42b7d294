import BrokerCore
import BrokerPostgres
import TestSupport
import Testing

/// Client keys in PostgreSQL: the store's round trip, and a table that holds the hash and never the
/// key. Keys are compared, never printed.
@Suite struct ClientKeyClusterTests {
    @Test func createListRevokeAndTheTableHoldsOnlyTheHash() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        let key = try ClientKeyText.generate()
        try await fixture.withStore { store in
            let created = ClientKey(id: key.id, name: "billing", tenant: "acme", methods: ["sobot.request", "token.get"], createdAt: 100)
            let every = ClientKey(id: "ffffffffffff", name: nil, tenant: "*", methods: ["*"], createdAt: 50)
            try await store.createClientKey(created, secretHash: key.secretHash)
            try await store.createClientKey(every, secretHash: Array(repeating: 7, count: 32))
            #expect(try await store.clientKeys() == [every, created], "oldest first")
            #expect(try await store.hashedClientKeys().last == HashedClientKey(key: created, secretHash: key.secretHash))
            await #expect(throws: (any Error).self) { try await store.createClientKey(created, secretHash: key.secretHash) }

            let table = try await fixture.psql("SELECT * FROM client_keys")
            #expect(table.contains(Hex.encode(key.secretHash)), "the hash is stored: the scan looks at the right rows")
            let leaked = table.contains(String(key.revealed.suffix(64))) || table.contains(String(key.revealed.suffix(64).prefix(16)))
            #expect(!leaked, "no part of the secret is")

            try await store.recordClientKeyUses([key.id: 500, "000000000000": 500])
            try await store.recordClientKeyUses([key.id: 400])
            #expect(try await store.clientKeys().map(\.lastUsedAt) == [nil, 500], "a use never moves back; an unknown id is ignored")

            #expect(try await store.revokeClientKey(id: key.id))
            #expect(try await !store.revokeClientKey(id: key.id))
            #expect(try await !store.revokeClientKey(id: "000000000000"))
            #expect(try await store.clientKeys() == [every])
        }
    }
}
