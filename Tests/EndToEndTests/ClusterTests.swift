import BrokerCore
import BrokerServer
import Foundation
import SobotSimulator
import TestSupport
import Testing

/// Several real `serve` processes sharing one private PostgreSQL server, against the simulator over
/// real HTTP: the contract's cluster section. Skipped, saying why, when PostgreSQL is not installed
/// (a failure under CI=true).
@Suite(.heavy) struct ClusterTests {
    /// Waits until every broker serves a token for every one of `tenants`.
    static func allServe(_ cluster: RunningCluster, tenants: Int, timeout: Double = 60) async -> Bool {
        await eventually(timeout: timeout, interval: 0.2) {
            for index in 0..<cluster.brokerCount {
                guard let health = try? await cluster.call(index, "broker.health").get(),
                    health["tokens_valid"]?.integerValue == Int64(tenants)
                else { return false }
            }
            return true
        }
    }

    @Test func threeBrokersWithThirtyTenantsMakeThirtyCallsAndServeTheSameTokens() async throws {
        guard let cluster = try await RunningCluster.startOrSkip(brokers: 3, tenants: 30) else { return }
        defer { cluster.shutdown() }
        #expect(await Self.allServe(cluster, tenants: 30), "every broker holds every token")
        #expect(cluster.simulator.tokenRequestCount == 30, "one get_token per key across the cluster")
        for tenant in 0..<30 {
            var served = Set<String>()
            for index in 0..<3 { served.insert(try await cluster.token(index, "t\(tenant)").get()) }
            #expect(served.count == 1, "t\(tenant): every broker serves the same token")
        }
        let health = try await cluster.call(0, "broker.health").get()
        #expect(health["store"] == "postgres")
        #expect(await eventually(timeout: 60) { (try? await cluster.call(1, "broker.health").get()["members"]?.integerValue) == 3 })
        let status = try await cluster.cli(1, ["status"])
        #expect(status.stdout.contains("cluster: 3 brokers alive"), "\(status.stdout) \(status.stderr)")
        let tokenRows = status.stdout.split(separator: "\n").filter { $0.hasPrefix("t") && $0.contains(" valid ") }
        #expect(tokenRows.count == 30)
        #expect(tokenRows.allSatisfy { !$0.hasSuffix("-") }, "status names the broker that refreshed each key")
        // A restart reuses the stored tokens: no get_token.
        try await cluster.stop(2)
        try await cluster.start(2)
        #expect(await Self.allServe(cluster, tenants: 30))
        #expect(cluster.simulator.tokenRequestCount == 30)
        #expect(!cluster.logs.contains(RunningCluster.appKey(7)), "no app key in any log")
    }

    @Test func sixtyConcurrentMissesOverThreeBrokersMakeOneCall() async throws {
        guard let cluster = try await RunningCluster.startOrSkip(brokers: 3, tenants: 0) else { return }
        defer { cluster.shutdown() }
        cluster.simulator.fault = .latency(milliseconds: 700)
        try await cluster.importTenants(count: 1)
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for request in 0..<60 {
                group.addTask { try await cluster.token(request % 3, "t0").get() }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(tokens.count == 1, "every caller got the one token")
        #expect(cluster.simulator.tokenRequestCount == 1, "one get_token, never two at once")
    }

    @Test func thirtyInvalidationsOverThreeBrokersMakeOneRefreshSeenEverywhere() async throws {
        guard let cluster = try await RunningCluster.startOrSkip(brokers: 3, tenants: 1) else { return }
        defer { cluster.shutdown() }
        #expect(await Self.allServe(cluster, tenants: 1))
        let stale = try await cluster.token(0, "t0").get()
        let before = cluster.simulator.tokenRequestCount
        let fresh = try await withThrowingTaskGroup(of: String.self) { group in
            for report in 0..<30 {
                group.addTask {
                    try await cluster.call(report % 3, "token.invalidate", ["tenant": "t0", "token": .string(stale)]).get()["token"]?.stringValue ?? ""
                }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(cluster.simulator.tokenRequestCount == before + 1, "one refresh for thirty reports")
        #expect(fresh.count == 1 && !fresh.contains(stale))
        let started = ContinuousClock.now
        let converged = await eventually(timeout: 60, interval: 0.05) {
            for index in 0..<3 where (try? await cluster.token(index, "t0").get()) != fresh.first { return false }
            return true
        }
        #expect(converged && ContinuousClock.now - started < .seconds(2), "every broker serves the new token within 2 s")
    }

    @Test func theLeaseHoldersDeathMidFetchIsTakenOverAndNoGenerationIsWrittenTwice() async throws {
        guard let cluster = try await RunningCluster.startOrSkip(brokers: 2, tenants: 0) else { return }
        defer { cluster.shutdown() }
        cluster.simulator.fault = .latency(milliseconds: 6000)
        try await cluster.importTenants(count: 1)
        async let abandoned = cluster.token(0, "t0")
        #expect(await eventually(timeout: 60) { cluster.simulator.tokenRequestCount >= 1 }, "a fetch is in flight")
        let holder = try #require(cluster.process(0))
        holder.signal(SIGKILL)
        _ = try? await abandoned
        cluster.simulator.fault = .none
        let started = ContinuousClock.now
        let token = try await cluster.token(1, "t0").get()
        #expect(ContinuousClock.now - started < .seconds(30), "another broker took over within 30 s")
        #expect(cluster.simulator.isCurrent(token: token))
        let generation = try cluster.postgres.psql("SELECT generation FROM credentials WHERE tenant_id = 't0'", database: nil)
        #expect(generation == "1", "one token written for one generation")
    }

    @Test func theFallbackPollCatchesUpWhenTheListeningConnectionIsKilled() async throws {
        guard let cluster = try await RunningCluster.startOrSkip(brokers: 2, tenants: 1) else { return }
        defer { cluster.shutdown() }
        #expect(await Self.allServe(cluster, tenants: 1))
        try cluster.postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'", database: nil)
        let stale = try await cluster.token(0, "t0").get()
        let fresh = try await cluster.call(0, "token.invalidate", ["tenant": "t0", "token": .string(stale)]).get()["token"]?.stringValue
        #expect(fresh != nil && fresh != stale)
        #expect(await eventually(timeout: 60) { (try? await cluster.token(1, "t0").get()) == fresh }, "broker 1 caught up")
    }

    @Test func whileTheDatabaseIsDownCachedTokensAreServedAndNothingIsFetched() async throws {
        guard let cluster = try await RunningCluster.startOrSkip(brokers: 2, tenants: 3) else { return }
        defer { cluster.shutdown() }
        #expect(await Self.allServe(cluster, tenants: 3))
        let held = try await cluster.token(0, "t1").get()
        // t3 arrives while the upstream fails: every broker tracks it and holds no token.
        cluster.simulator.fault = .httpStatus(503)
        try await cluster.importTenants(count: 1, from: 3)
        #expect(await eventually(timeout: 60) { !cluster.simulator.tokenRequestTimes(appid: "app3").isEmpty })
        try await onThread { try cluster.postgres.stopServer() }
        cluster.simulator.fault = .none
        let calls = cluster.simulator.tokenRequestCount
        for index in 0..<2 {
            for tenant in 0..<3 { #expect((try? await cluster.token(index, "t\(tenant)").get()) != nil, "broker \(index) serves t\(tenant)") }
        }
        // A refresh the cluster cannot coordinate is not made: -32004, saying why.
        // A key that has no token yet gets none while the database is away, and says why.
        #expect(await eventually(timeout: 60) {
            guard case .failure(let error)? = try? await cluster.call(0, "token.get", ["tenant": "t3"]) else { return false }
            return error.code == -32004 && error.message.contains("database")
        }, "a key without a token answers -32004 naming the database")
        let refused = try await cluster.call(1, "token.invalidate", ["tenant": "t1", "token": .string(held)])
        guard case .failure(let error) = refused else {
            Issue.record("an uncoordinated refresh was made")
            return
        }
        #expect(error.code == -32004)
        #expect(error.message.contains("database"), "\(error.message)")
        #expect(cluster.simulator.tokenRequestCount == calls, "no get_token while the database is down")
        try await onThread { try cluster.postgres.startAgain() }
        let fresh = await eventually(timeout: 30) {
            guard case .success(let reply)? = try? await cluster.call(1, "token.invalidate", ["tenant": "t1", "token": .string(held)]) else { return false }
            return reply["token"]?.stringValue != held
        }
        #expect(fresh, "refreshes resume once the database is back")
        let newToken = try await cluster.token(1, "t1").get()
        #expect(await eventually(timeout: 60) { (try? await cluster.token(0, "t1").get()) == newToken }, "and every broker catches up")
        #expect(cluster.logs.components(separatedBy: "cluster database unreachable").count - 1 <= 4, "one line per outage per broker, not per key")
    }

    @Test func aTenantAddedOnOneHostReachesEveryBrokerWithinTwoSeconds() async throws {
        guard let cluster = try await RunningCluster.startOrSkip(brokers: 2, tenants: 1) else { return }
        defer { cluster.shutdown() }
        #expect(await Self.allServe(cluster, tenants: 1))
        try await cluster.importTenants(count: 1, from: 1)
        let started = ContinuousClock.now
        #expect(await eventually(timeout: 60, interval: 0.05) { (try? await cluster.call(1, "tenant.list").get()["tenants"]?.arrayValue?.count) == 2 })
        #expect(ContinuousClock.now - started < .seconds(2))
        try await cluster.cli(1, ["tenant", "remove", "t1"]).requireSuccess("remove")
        #expect(await eventually(timeout: 2, interval: 0.05) {
            guard case .failure(let error)? = try? await cluster.call(0, "token.get", ["tenant": "t1"]) else { return false }
            return error.code == -32001
        })
    }

    @Test func withATwentySecondTokenEveryRefreshFallsInTheWindowAndNoneIsRepeated() async throws {
        guard let cluster = try await RunningCluster.startOrSkip(brokers: 3, tenants: 4, tokenTTL: 20) else { return }
        defer { cluster.shutdown() }
        #expect(await Self.allServe(cluster, tenants: 4))
        try await Task.sleep(for: .seconds(45))
        var fractions: [Double] = []
        for tenant in 0..<4 {
            let times = cluster.simulator.tokenRequestTimes(appid: "app\(tenant)")
            fractions += zip(times, times.dropFirst()).map { ($1 - $0) / 20 }
        }
        print("refresh points over 20 s tokens, as fractions of the lifetime: \(fractions.map { String(format: "%.3f", $0) }.joined(separator: " "))")
        for tenant in 0..<4 {
            let times = cluster.simulator.tokenRequestTimes(appid: "app\(tenant)")
            #expect(times.count >= 3, "app\(tenant) was refreshed over two lifetimes")
            // From the second fetch on: a broker stamps a token's issue time when it sends get_token,
            // and the first fetch of a freshly started broker reaches the simulator late (its first
            // upstream connection), so the first gap was measured short by about 1.3 s on a loaded
            // host (0.43-0.44 of the lifetime for three keys, every later gap 0.51-0.66; CI 2026-11-30).
            for (earlier, later) in zip(times.dropFirst(), times.dropFirst(2)) {
                let fraction = (later - earlier) / 20
                #expect(fraction >= 0.5 - 0.02 && fraction <= 0.75 + 0.05, "app\(tenant): a refresh after \(later - earlier) s")
            }
        }
    }
    @Test func killingAHundredThousandTenantImportIsAllOrNothing() async throws {
        guard let cluster = try await RunningCluster.startOrSkip(brokers: 1, tenants: 0, start: false) else { return }
        defer { cluster.shutdown() }
        let file = cluster.directory.file("large.json")
        let entries = (0..<100_000).map { #"{"id":"big\#($0)","credentials":[{"region":"sg","appid":"a\#($0)","app_key":"k\#($0)"}]}"# }
        try #"{"tenants":[\#(entries.joined(separator: ","))]}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let process = BrokerProcess(["tenant", "import", file], environment: cluster.environment(0))
        try await process.launch()
        try await Task.sleep(for: .milliseconds(1500))
        let interrupted = process.isRunning
        process.signal(SIGKILL)
        _ = try await process.exit()
        let count = try cluster.postgres.psql("SELECT count(*) FROM tenants")
        print("import killed \(interrupted ? "while running" : "after it finished"): \(count) tenants stored")
        #expect(count == "0" || count == "100000", "all or nothing")
        let started = ContinuousClock.now
        try await cluster.cli(0, ["tenant", "import", file]).requireSuccess("import")
        print("imported 100,000 tenants into PostgreSQL in \(ContinuousClock.now - started) (debug build, beside the rest of the suite)")
        #expect(try cluster.postgres.psql("SELECT count(*) FROM credentials") == "100000")
    }
    /// The documented cluster rotation: add a version on one host, distribute the key file, SIGHUP
    /// the brokers, rotate. No broker ever meets a secret sealed with a version it lacks, and no
    /// broker stops.
    @Test func aRollingKeyRotationNeverLeavesABrokerWithoutTheKey() async throws {
        guard let cluster = try await RunningCluster.startOrSkip(brokers: 2, tenants: 2) else { return }
        defer { cluster.shutdown() }
        #expect(await Self.allServe(cluster, tenants: 2))
        try await cluster.cli(0, ["key", "add"]).requireSuccess("key add")
        // Until the rotation, secrets are still sealed with version 1, which broker 1 holds.
        try await cluster.importTenants(count: 1, from: 2)
        #expect(await Self.allServe(cluster, tenants: 3), "broker 1 opens what host 0 sealed after key add")
        let early = try await cluster.cli(0, ["key", "rotate"])
        #expect(early.status == 1, "a rotation before the key file is distributed is refused")
        #expect(early.stderr.contains("2"), "\(early.stderr)")
        #expect(try cluster.postgres.psql("SELECT count(*) FROM credentials WHERE substring(app_key FROM 2 FOR 4) <> '\\x00000001'::bytea") == "0")

        let copy = cluster.home(1) + "/master.key"
        try FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: cluster.home(0) + "/master.key", toPath: copy)
        for index in 0..<2 { cluster.process(index)?.signal(SIGHUP) }
        let rotated = await eventually(timeout: 30, interval: 1) { (try? await cluster.cli(0, ["key", "rotate"]))?.status == 0 }
        #expect(rotated, "the rotation goes through once every broker holds version 2")
        #expect(try cluster.postgres.psql("SELECT count(*) FROM credentials WHERE substring(app_key FROM 2 FOR 4) <> '\\x00000002'::bytea") == "0")

        // Both brokers go on: each refreshes a token (opening an app key sealed with version 2 and
        // sealing the new token with it) and serves the other's.
        for (index, tenant) in [(0, "t0"), (1, "t1")] {
            let stale = try await cluster.token(index, tenant).get()
            let fresh = try await cluster.call(index, "token.invalidate", ["tenant": .string(tenant), "token": .string(stale)]).get()["token"]?.stringValue
            #expect(fresh != nil && fresh != stale, "broker \(index) refreshed \(tenant)")
            #expect(await eventually(timeout: 60) { (try? await cluster.token(1 - index, tenant).get()) == fresh })
        }
        try await cluster.importTenants(count: 1, from: 3)
        #expect(await Self.allServe(cluster, tenants: 4))
        #expect(!cluster.logs.contains("lacks"), "no broker met a version it lacks")
        for index in 0..<2 { #expect(cluster.process(index)?.isRunning == true) }
    }
}
