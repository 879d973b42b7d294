import BrokerCore
import BrokerServer
import Foundation
import TestSupport
import Testing

/// The daemon's client-key table on a real SQLite store: what verifies, what a grant covers, coarse
/// last-use writes, and reloads that follow other processes' changes. Keys are compared, never printed.
@Suite struct ClientKeyVerifierTests {
    let directory = TemporaryDirectory("ckv")
    let sealer = SecretSealer(keyring: MasterKeyring(keys: [try! MasterKey(randomWithID: 1)]))
    let clock = ManualClock()

    /// The store, used as the daemon does: every call on NIO's blocking pool, never on the test's thread.
    func openStore() throws -> AsyncSQLiteStore {
        AsyncSQLiteStore(try SQLiteStore(path: self.directory.file("broker.db"), sealer: self.sealer))
    }

    /// Creates a key for `tenant` and `methods` in `store`, as `access key create` does.
    func create(_ store: any BrokerStore, tenant: String, methods: [String]) async throws -> ClientKeyText {
        let key = try ClientKeyText.generate()
        try await store.createClientKey(
            ClientKey(id: key.id, name: nil, tenant: tenant, methods: methods, createdAt: Int64(self.clock.unixNow())),
            secretHash: key.secretHash
        )
        return key
    }

    @Test func theRightKeyGetsItsGrantAndNothingElseGetsOne() async throws {
        let store = try self.openStore()
        let key = try await self.create(store, tenant: "acme", methods: ["sobot.request", "token.get"])
        let other = try await self.create(store, tenant: "beta", methods: ["token.get"])
        let verifier = try await ClientKeyVerifier.load(from: store, clock: self.clock)
        #expect(verifier.verify(key) == ClientKeyGrant(keyID: key.id, tenant: "acme", methods: ["sobot.request", "token.get"]))
        #expect(verifier.verify(other)?.tenant == "beta")

        let text = key.revealed
        let refused: [(String, String)] = [
            ("wrong secret", String(text.dropLast()) + (text.hasSuffix("0") ? "1" : "0")),
            ("another key's secret", String(text.prefix(17)) + other.revealed.suffix(64)),
            ("unknown id", "sbk_000000000000_" + text.suffix(64)),
            ("truncated", String(text.dropLast())),
            ("overlong", text + "0"),
            ("malformed", "Bearer " + text),
            ("empty", ""),
        ]
        for (label, presented) in refused {
            let granted = verifier.verify(presented: presented) != nil
            #expect(!granted, "\(label)")
        }

        #expect(try await store.revokeClientKey(id: key.id))
        #expect(verifier.verify(key) != nil, "held until the next reload")
        try await verifier.reload(from: store)
        #expect(verifier.verify(key) == nil, "revoked")
        #expect(verifier.verify(other) != nil && verifier.count == 1)
    }

    @Test func grantsAreScopedToTheirTenantAndMethods() {
        let acme = ClientKeyGrant(keyID: "0123456789ab", tenant: "acme", methods: ["sobot.request", "marketing.*"])
        #expect(acme.allows(method: "sobot.request", tenant: "acme"))
        #expect(acme.allows(method: "marketing.catalog.query", tenant: "acme"))
        #expect(!acme.allows(method: "token.get", tenant: "acme"))
        #expect(!acme.allows(method: "sobot.request", tenant: "beta"))
        #expect(!acme.allows(method: "sobot.request", tenant: "*"), "a tenant key is no key for every tenant")
        let every = ClientKeyGrant(keyID: "0123456789ab", tenant: "*", methods: ["token.get"])
        #expect(every.allows(method: "token.get", tenant: "acme") && every.allows(method: "token.get", tenant: "beta"))
        #expect(!every.allows(method: "sobot.request", tenant: "acme"))
        let anything = ClientKeyGrant(keyID: "0123456789ab", tenant: "*", methods: ["*"])
        #expect(anything.allows(method: "sobot.request", tenant: "zeta"))
    }

    @Test func lastUseIsWrittenAtMostOncePerIntervalPerKey() async throws {
        let store = try self.openStore()
        let key = try await self.create(store, tenant: "acme", methods: ["token.get"])
        let verifier = try await ClientKeyVerifier.load(from: store, clock: self.clock)
        let start = Int64(self.clock.unixNow())
        func lastUsed() async throws -> Int64? { try await store.clientKeys().first?.lastUsedAt }

        #expect(try await verifier.flush(to: store) == 0, "nothing used, nothing written")
        #expect(verifier.verify(key) != nil)
        #expect(try await verifier.flush(to: store) == 1)
        #expect(try await lastUsed() == start)
        self.clock.advance(by: 1)
        #expect(verifier.verify(key) != nil)
        #expect(try await verifier.flush(to: store) == 0, "a second use a second later is not written yet")
        #expect(try await lastUsed() == start)
        self.clock.advance(by: verifier.flushInterval)
        #expect(try await verifier.flush(to: store) == 1, "but once the interval has passed")
        #expect(try await lastUsed() == start + 1)
        self.clock.advance(by: verifier.flushInterval)
        #expect(try await verifier.flush(to: store) == 0, "no use since: no write")
    }

    @Test func theStoreWatcherReloadsKeysAnotherProcessCreatesOrRevokes() async throws {
        let fixture = try await TokenEngineFixture(clock: self.clock)
        let store = AsyncSQLiteStore(fixture.store)
        let verifier = ClientKeyVerifier(keys: [], clock: self.clock)
        let access = AccessControl(policy: AccessPolicy(ownerUID: getuid(), rules: []))
        let reload = BrokerReload(store: store, tokens: fixture.makeManager(), access: access, clientKeys: verifier)
        let watcher = Task { try await StoreWatcher(store: store, reload: reload, interval: .milliseconds(50), logger: fixture.logger).run() }
        defer { watcher.cancel() }
        // The CLI: another connection to the same file.
        let cli = AsyncSQLiteStore(try SQLiteStore(path: fixture.directory.file("broker.db"), sealer: SecretSealer(keyring: fixture.keyring)))
        // The watcher compares against the version it reads when it starts: once it has seen one change
        // (rules granted one after another until it has), it sees every later one.
        var granted: UInt32 = 0
        let watching = try await eventually(timeout: 30, interval: 0.1) {
            granted += 1
            try await cli.grant(AccessRule(subject: .uid(granted), tenant: "acme", methods: ["token.get"]), now: 1)
            return !access.current.rules.isEmpty
        }
        try #require(watching)
        let key = try await self.create(cli, tenant: "acme", methods: ["token.get"])
        #expect(await eventually(timeout: 30) { verifier.verify(key) != nil })
        #expect(try await cli.revokeClientKey(id: key.id))
        #expect(await eventually(timeout: 30) { verifier.verify(key) == nil })
    }
}

extension ClientKeyVerifier {
    /// `verify(presented:)` of the key's whole text, so that no key's text stands in an expectation
    /// (a failed one prints the values it holds; a `ClientKeyText` prints as `sbk_<id>_…`).
    func verify(_ key: ClientKeyText) -> ClientKeyGrant? {
        self.verify(presented: key.revealed)
    }
}
