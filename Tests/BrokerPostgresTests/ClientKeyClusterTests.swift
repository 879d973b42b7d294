import BrokerCore
import BrokerPostgres
import BrokerServer
import Logging
import PostgresNIO
import TestSupport
import Testing

/// Client keys in PostgreSQL: the store's round trip, a table that holds the hash and never the key,
/// and a change made through one broker's store that reaches another broker's keys through the
/// configuration notification. Keys are compared, never printed.
@Suite(.heavy) struct ClientKeyClusterTests {
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

    /// As `NotificationTests` shows for access rules: a broker listening on the cluster channel hears
    /// a configuration change for every key created or revoked elsewhere, and its reload then holds
    /// exactly the keys the database does. Recording uses is not a configuration change.
    @Test func aKeyCreatedOrRevokedThroughOneStoreReachesAnotherBrokersReload() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        let key = try ClientKeyText.generate()
        try await fixture.withStore { cli in
            try await fixture.withStore(migrate: false) { broker in
                let verifier = try await ClientKeyVerifier.load(from: broker, clock: fixture.clock)
                let connection = try await PostgresConnection.connect(configuration: try broker.connectionConfiguration(), id: 1, logger: Logger(label: "listen"))
                let heard = try await connection.listen(on: ClusterChannel.name) { notifications in
                    var payloads = notifications.makeAsyncIterator()
                    try await cli.createClientKey(
                        ClientKey(id: key.id, name: nil, tenant: "acme", methods: ["token.get"], createdAt: 1),
                        secretHash: key.secretHash
                    )
                    let created = try await payloads.next()?.payload
                    try await verifier.reload(from: broker)
                    let grantedAfterCreate = verifier.verify(presented: key.revealed) != nil

                    let marker = try await broker.changeMarker()
                    try await cli.recordClientKeyUses([key.id: 10])
                    let usesChangedTheConfiguration = try await broker.changeMarker() != marker

                    _ = try await cli.revokeClientKey(id: key.id)
                    let revoked = try await payloads.next()?.payload
                    try await verifier.reload(from: broker)
                    let grantedAfterRevoke = verifier.verify(presented: key.revealed) != nil
                    return (created, revoked, grantedAfterCreate, usesChangedTheConfiguration, grantedAfterRevoke)
                }
                try await connection.close()
                #expect(heard.0 == "config" && heard.1 == "config")
                #expect(heard.2, "the key verifies on the other broker once created")
                #expect(!heard.3, "a recorded use bumps no configuration version")
                #expect(!heard.4, "and is refused there once revoked")
            }
        }
    }
}
