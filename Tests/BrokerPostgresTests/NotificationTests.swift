import BrokerCore
import BrokerPostgres
import Logging
import PostgresNIO
import TestSupport
import Testing

/// Writers tell listening brokers what changed, on the store's own connection configuration, and no
/// notification carries a secret.
@Suite(.heavy) struct NotificationTests {
    @Test func writesAreAnnouncedWithoutSecrets() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        let key = TokenKey(tenant: "acme", region: "sg")
        try await fixture.withStore { store in
            let connection = try await PostgresConnection.connect(configuration: try store.connectionConfiguration(), id: 1, logger: Logger(label: "listen"))
            let payloads = try await connection.listen(on: ClusterChannel.name) { notifications in
                _ = try await store.upsert([tenant("acme", ("sg", "1", "secret-app-key"))], now: 1_000, dryRun: false)
                try await store.storeToken("secret-token", for: key)
                try await store.grant(AccessRule(subject: .uid(1), tenant: "acme", methods: ["*"]), now: 1_000)
                var payloads: [String] = []
                for try await notification in notifications {
                    payloads.append(notification.payload)
                    if payloads.count == 3 { break }
                }
                return payloads
            }
            try await connection.close()
            #expect(payloads == ["config", ClusterChannel.tokenPayload(TokenVersion(key: key, revision: 1, generation: 1)), "config"])
        }
    }
}
