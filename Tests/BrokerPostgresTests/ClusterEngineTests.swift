import BrokerCore
import BrokerPostgres
import Logging
import SobotSimulator
import TestSupport
import Testing

/// Token engines of two in-process brokers, each with its own store, lease issuer and clock, on one
/// private PostgreSQL database and the simulator over real HTTP: the engine's fencing on the cluster
/// backend, and leases that a broker's wall clock cannot bend.
@Suite(.heavy) struct ClusterEngineTests {
    final class Broker: Sendable {
        let store: PostgresStore
        let manager: TokenManager
        let pool: Task<Void, Never>

        /// - Parameter gate: holds the engine's token reads (see `GatedStore`); nil for none.
        init(id: String, url: DatabaseURL, keyring: MasterKeyring, clock: any BrokerClock, client: SobotClient, logger: Logger, gate: ReadGate?) {
            self.store = PostgresStore(url: url, environment: [:], sealer: SecretSealer(keyring: keyring), clock: clock, logger: logger)
            let store = self.store
            self.pool = Task { try? await store.run() }
            self.manager = TokenManager(
                store: gate.map { GatedStore(store, gate: $0) } ?? store,
                issuer: LeasedTokenIssuer(leases: store, client: client, clock: clock, owner: id, leaseSeconds: 20, logger: logger),
                clock: clock,
                policy: TokenPolicy(),
                logger: logger
            )
        }

        func stop() async {
            self.pool.cancel()
            await self.pool.value
        }
    }

    struct Setup {
        let server: PostgresServer
        let simulator: SobotSimulator
        let client: SobotClient
        let url: DatabaseURL
        let keyring: MasterKeyring
        let logger: Logger

        func broker(_ id: String, clock: any BrokerClock = SystemClock(), gate: ReadGate? = nil) -> Broker {
            Broker(id: id, url: self.url, keyring: self.keyring, clock: clock, client: self.client, logger: self.logger, gate: gate)
        }

        func stop() async {
            try? await self.client.shutdown()
            await self.simulator.stop()
            self.server.stop()
        }
    }

    static func setUp() async throws -> Setup? {
        guard let server = try await onThread({ try PostgresServer.startOrSkip() }) else { return nil }
        let simulator = SobotSimulator(tokenTTL: 3600)
        let port = try await simulator.start()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let client = SobotClient(regions: RegionDirectory(baseURLs: ["sg": "http://127.0.0.1:\(port)"]), logger: logger)
        return Setup(
            server: server,
            simulator: simulator,
            client: client,
            url: try DatabaseURL(parsing: server.url()),
            keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 1)]),
            logger: logger
        )
    }

    static func tenant(_ appid: String, secret: String) -> [TenantDefinition] {
        [TenantDefinition(id: "t0", name: nil, credentials: [CredentialDefinition(region: "sg", appid: appid, appKey: secret)])]
    }

    static let key = TokenKey(tenant: "t0", region: "sg")

    /// The credential is replaced, or removed and added again (it takes the sequence's next revision),
    /// while the first fetch is in flight.
    @Test(arguments: [false, true])
    func aFetchStartedBeforeACredentialChangeDoesNotLand(removedFirst: Bool) async throws {
        guard let setup = try await Self.setUp() else { return }
        let broker = setup.broker("a")
        try await broker.store.migrate()
        setup.simulator.register(appid: "old", appKey: "old-secret")
        setup.simulator.register(appid: "new", appKey: "new-secret")
        _ = try await broker.store.upsert(Self.tenant("old", secret: "old-secret"), now: 1, dryRun: false)
        try await broker.manager.start()
        let before = try await broker.store.credentialRevisions()[Self.key] ?? 0
        setup.simulator.fault = .latency(milliseconds: 1500)
        async let served = broker.manager.token(for: Self.key)
        #expect(await eventually(timeout: 60) { setup.simulator.tokenRequestCount == 1 }, "the first fetch is in flight")
        if removedFirst { _ = try await broker.store.remove(tenant: Self.key.tenant, region: nil) }
        _ = try await broker.store.upsert(Self.tenant("new", secret: "new-secret"), now: 2, dryRun: false)
        #expect(try await broker.store.credentialRevisions()[Self.key] ?? 0 > before)
        try await broker.manager.reload()
        setup.simulator.fault = .none
        let token = try await served.value
        #expect(setup.simulator.appid(ofToken: token) == "new", "the caller gets the new credential's token")
        let stored = try await broker.store.token(for: Self.key, expiringAfter: Int64(SystemClock().unixNow()))
        #expect(stored?.value == token, "the old credential's token never landed")
        #expect(stored?.generation == 1)
        #expect(setup.simulator.tokenRequestTimes(appid: "new").count == 1, "fetched once for it, not in a loop")
        await broker.stop()
        await setup.stop()
    }

    /// The interleaving forced: a broker's start is held just after reading the stored token while
    /// another broker refreshes the key and this one serves the new token on demand; when the start
    /// goes on, it must not put the older (revoked) one back.
    @Test func aReloadHeldAfterItsReadKeepsATokenFetchedMeanwhile() async throws {
        guard let setup = try await Self.setUp() else { return }
        let gate = ReadGate()
        let first = setup.broker("a")
        let held = setup.broker("b", gate: gate)
        try await first.store.migrate()
        setup.simulator.register(appid: "app", appKey: "secret")
        _ = try await first.store.upsert(Self.tenant("app", secret: "secret"), now: 1, dryRun: false)
        try await first.manager.start()
        let old = try await first.manager.token(for: Self.key).value
        await gate.close()
        async let started: Void = held.manager.start()
        #expect(await eventually(timeout: 60) { await gate.waitingCount == 1 }, "the start is held after reading the stored token")
        let fetched = try await first.manager.invalidate(Self.key, reported: old).value
        #expect(try await held.manager.token(for: Self.key).value == fetched, "served from the database while the start is held")
        await gate.open()
        try await started
        #expect(fetched != old)
        #expect(held.manager.cache.freshToken(for: Self.key, now: SystemClock().monotonicNow())?.value == fetched, "the older token read before is not put back")
        try await held.manager.reload()
        #expect(try await held.manager.token(for: Self.key).value == fetched)
        #expect(try await held.store.token(for: Self.key, expiringAfter: Int64(SystemClock().unixNow()))?.generation == 2)
        #expect(setup.simulator.tokenRequestCount == 2, "the first token and one refresh, none repeated")
        await first.stop()
        await held.stop()
        await setup.stop()
    }

    @Test func aWallClockTwoHoursOffBendsNeitherLeasesNorExpiry() async throws {
        guard let setup = try await Self.setUp() else { return }
        let honest = setup.broker("honest")
        let skewedClock = ManualClock(now: SystemClock().unixNow())
        skewedClock.jumpWallClock(by: 7200)
        let skewed = setup.broker("skewed", clock: skewedClock)
        try await honest.store.migrate()
        setup.simulator.register(appid: "app", appKey: "secret")
        _ = try await honest.store.upsert(Self.tenant("app", secret: "secret"), now: 1, dryRun: false)
        try await honest.manager.start()
        let token = try await honest.manager.token(for: Self.key).value

        // Two hours ahead, the stored token is still an hour from expiry: served, not fetched again.
        try await skewed.manager.start()
        #expect(skewed.manager.cache.freshToken(for: Self.key, now: skewedClock.monotonicNow())?.value == token)
        #expect(try await skewed.manager.token(for: Self.key).value == token)
        #expect(setup.simulator.tokenRequestCount == 1)

        // A lease is timed by the database: whichever way the skewed broker's wall clock jumps, the
        // honest broker's lease holds, and the skewed one gets its own only once that is released.
        let basis = FetchBasis(revision: 1, generation: 1)
        guard case .granted = try await honest.store.claimLease(for: Self.key, owner: "honest", basis: basis, seconds: 20) else {
            Issue.record("the honest broker could not take a free lease")
            return
        }
        for jump in [0.0, -14_400, 14_400] {
            skewedClock.jumpWallClock(by: jump)
            guard case .held(let remaining) = try await skewed.store.claimLease(for: Self.key, owner: "skewed", basis: basis, seconds: 20) else {
                Issue.record("a lease held by another broker was granted after a \(Int(jump)) s wall-clock jump")
                continue
            }
            #expect(remaining > 10 && remaining <= 20)
        }
        try await honest.store.releaseLease(for: Self.key, owner: "honest")
        guard case .granted = try await skewed.store.claimLease(for: Self.key, owner: "skewed", basis: basis, seconds: 20) else {
            Issue.record("a released lease was not granted")
            return
        }
        await honest.stop()
        await skewed.stop()
        await setup.stop()
    }
}
