import BrokerCore
import Logging
import SobotSimulator

/// A real token engine for tests: SQLite store in a temporary home, real sealing, the simulator
/// over real HTTP on 127.0.0.1, and a clock the test chooses.
public final class TokenEngineFixture: Sendable {
    public let directory = TemporaryDirectory("eng")
    public let simulator: SobotSimulator
    public let store: SQLiteStore
    public let client: SobotClient
    public let clock: any BrokerClock
    public let port: Int
    public let keyring: MasterKeyring
    public let logger: Logger

    public static let region = "sg"

    public init(tokenTTL: Double = 3600, clock: any BrokerClock = SystemClock(), timeouts: SobotClient.Timeouts = .init()) async throws {
        self.simulator = SobotSimulator(tokenTTL: tokenTTL)
        self.port = try await self.simulator.start()
        self.keyring = MasterKeyring(keys: [try MasterKey(randomWithID: 1)])
        self.store = try SQLiteStore(path: self.directory.file("broker.db"), sealer: SecretSealer(keyring: self.keyring))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        self.logger = logger
        self.clock = clock
        self.client = SobotClient(
            // Both regions reach the one simulator, for tenants with credentials in each.
            regions: RegionDirectory(baseURLs: [Self.region: "http://127.0.0.1:\(self.port)", "us": "http://127.0.0.1:\(self.port)"]),
            timeouts: timeouts,
            logger: logger
        )
    }

    /// Adds `count` tenants (`t0`, `t1`, …) in region sg, registered with the simulator.
    @discardableResult
    public func addTenants(_ count: Int, prefix: String = "t") throws -> [TokenKey] {
        var definitions: [TenantDefinition] = []
        for index in 0..<count {
            let appid = "\(prefix)app\(index)"
            let appKey = "key-\(prefix)-\(index)-secret"
            self.simulator.register(appid: appid, appKey: appKey)
            definitions.append(
                TenantDefinition(id: "\(prefix)\(index)", name: nil, credentials: [CredentialDefinition(region: Self.region, appid: appid, appKey: appKey)])
            )
        }
        try self.store.upsert(definitions, now: Int64(self.clock.unixNow()))
        return definitions.map { TokenKey(tenant: $0.id, region: Self.region) }
    }

    public func makeManager(policy: TokenPolicy = TokenPolicy(), store: SQLiteStore? = nil) -> TokenManager {
        let store = store ?? self.store
        return TokenManager(
            store: AsyncSQLiteStore(store),
            issuer: SobotTokenIssuer(store: store, client: self.client, clock: self.clock, logger: self.logger),
            clock: self.clock,
            policy: policy,
            logger: self.logger
        )
    }

    /// A policy without start-up pacing, for tests that are not about pacing.
    public static var unpacedPolicy: TokenPolicy {
        var policy = TokenPolicy()
        policy.backgroundRatePerRegion = .infinity
        policy.backgroundConcurrencyPerRegion = 64
        return policy
    }

    public func shutdown() async {
        try? await self.client.shutdown()
        await self.simulator.stop()
    }
}
