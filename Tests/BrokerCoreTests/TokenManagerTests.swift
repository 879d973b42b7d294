import BrokerCore
import SobotSimulator
import TestSupport
import Testing

/// The token engine against the simulator over real HTTP, with a real SQLite store.
@Suite struct TokenManagerTests {
    @Test func singleFlightUnderAHundredConcurrentCallers() async throws {
        let fixture = try await TokenEngineFixture()
        let key = try fixture.addTenants(1)[0]
        let manager = fixture.makeManager()
        try await manager.start()
        fixture.simulator.fault = .latency(milliseconds: 300)
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<100 {
                group.addTask { try await manager.token(for: key).value }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(tokens.count == 1)
        #expect(fixture.simulator.tokenRequestCount == 1)
        await fixture.shutdown()
    }

    @Test func compareAndRefreshFetchesOnceForFiftyReporters() async throws {
        let fixture = try await TokenEngineFixture()
        let key = try fixture.addTenants(1)[0]
        let manager = fixture.makeManager()
        try await manager.start()
        let stale = try await manager.token(for: key).value
        fixture.simulator.issueTokenElsewhere(appid: "tapp0")
        #expect(!fixture.simulator.isCurrent(token: stale))
        let before = fixture.simulator.tokenRequestCount
        let fresh = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<50 {
                group.addTask { try await manager.invalidate(key, reported: stale).value }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(fixture.simulator.tokenRequestCount == before + 1)
        #expect(fresh.count == 1)
        #expect(fresh.first != stale)
        #expect(fixture.simulator.isCurrent(token: fresh.first!))
        // Reporting the old token again changes nothing.
        #expect(try await manager.invalidate(key, reported: stale).value == fresh.first)
        #expect(fixture.simulator.tokenRequestCount == before + 1)
        await fixture.shutdown()
    }

    @Test func aRestartReusesPersistedTokensWithoutCallingUpstream() async throws {
        let fixture = try await TokenEngineFixture()
        let keys = try fixture.addTenants(3)
        let first = fixture.makeManager(policy: TokenEngineFixture.unpacedPolicy)
        try await first.start()
        var issued: [String] = []
        for key in keys { issued.append(try await first.token(for: key).value) }
        let calls = fixture.simulator.tokenRequestCount
        #expect(calls == 3)

        let reopened = try SQLiteStore(path: fixture.directory.file("broker.db"), sealer: SecretSealer(keyring: fixture.keyring))
        let second = fixture.makeManager(policy: TokenEngineFixture.unpacedPolicy, store: reopened)
        try await second.start()
        for (index, key) in keys.enumerated() {
            #expect(second.cache.freshToken(for: key, now: fixture.clock.monotonicNow())?.value == issued[index])
            #expect(try await second.token(for: key).value == issued[index])
        }
        #expect(fixture.simulator.tokenRequestCount == calls)
        await fixture.shutdown()
    }

    @Test func withNoTokenAHungUpstreamGivesUnavailableWithinTheDeadline() async throws {
        // A read timeout of 120 s: only the 1 s total deadline can end the call in time.
        let fixture = try await TokenEngineFixture(timeouts: .init(connect: 1, read: 120, total: 1))
        let key = try fixture.addTenants(1)[0]
        let manager = fixture.makeManager()
        try await manager.start()
        fixture.simulator.fault = .hang
        let started = ContinuousClock.now
        await #expect {
            _ = try await manager.token(for: key)
        } throws: { error in
            guard case .upstream(.unavailable) = error as? TokenError else { return false }
            return true
        }
        // Bounded by the 1 s deadline, not the 120 s read timeout. The wide margin is for the whole
        // suite on two loaded cores, where the deadline's timer and the store read wait for threads
        // (3.3 s seen in CI runs, 10.2 s at a load average of 10, 12.3 s once).
        #expect(ContinuousClock.now - started < .seconds(60))
        await fixture.shutdown()
    }

    @Test func aSignatureErrorSurfacesAsRejectedWithItsCode() async throws {
        let fixture = try await TokenEngineFixture()
        let key = try fixture.addTenants(1)[0]
        fixture.simulator.register(appid: "tapp0", appKey: "a-different-key")
        let manager = fixture.makeManager()
        try await manager.start()
        await #expect(throws: TokenError.upstream(.rejected(retCode: "900003", retMsg: "signature error"))) {
            _ = try await manager.token(for: key)
        }
        // Non-recoverable: held, not retried on every demand.
        let calls = fixture.simulator.tokenRequestCount
        for _ in 0..<20 { _ = try? await manager.token(for: key) }
        #expect(fixture.simulator.tokenRequestCount == calls)
        await fixture.shutdown()
    }

    @Test(arguments: [
        SimulatorFault.httpStatus(500), .httpStatus(503), .garbage, .returnCode("999999"), .hang, .returnCode("900003"),
    ])
    func aValidTokenIsStillServedWhileTheUpstreamFails(_ fault: SimulatorFault) async throws {
        let clock = ManualClock()
        // The deadline bounds the hang case; it leaves room for a loaded machine's first, healthy
        // fetch (2 s was seen to run out with another process keeping a core busy).
        let fixture = try await TokenEngineFixture(tokenTTL: 100, clock: clock, timeouts: .init(connect: 6, read: 6, total: 6))
        let key = try fixture.addTenants(1)[0]
        let manager = fixture.makeManager()
        try await manager.start()
        let token = try await manager.token(for: key)
        fixture.simulator.fault = fault
        clock.advance(by: 95)  // inside the serving margin: a refresh is due before serving again
        #expect(manager.cache.freshToken(for: key, now: clock.monotonicNow()) == nil)
        #expect(try await manager.token(for: key) == token)
        #expect(try await manager.token(for: key) == token)
        clock.advance(by: 6)  // expired: never served
        await #expect(throws: TokenError.self) { _ = try await manager.token(for: key) }
        await fixture.shutdown()
    }

    @Test func backoffNeverExceedsItsCapAndNeverHammers() async throws {
        let clock = ManualClock()
        let fixture = try await TokenEngineFixture(clock: clock)
        let key = try fixture.addTenants(1)[0]
        fixture.simulator.fault = .httpStatus(500)
        let manager = fixture.makeManager()
        try await manager.start()
        let refresher = Task { try await manager.run() }
        var callTimes: [Double] = []
        var seen = 0
        for _ in 0..<1500 {
            try await Self.settle(manager, clock: clock)
            let count = fixture.simulator.tokenRequestCount
            if count > seen {
                callTimes.append(contentsOf: repeatElement(clock.monotonicNow(), count: count - seen))
                seen = count
            }
            // On-demand callers during backoff are answered from the failure, not the upstream.
            if callTimes.count == 5 {
                for _ in 0..<50 { _ = try? await manager.token(for: key) }
            }
            clock.advance(by: 1)
        }
        refresher.cancel()
        let gaps = zip(callTimes.dropFirst(), callTimes).map { $0 - $1 }
        #expect(callTimes.count >= 5, "it keeps retrying: \(callTimes.count) calls")
        #expect(callTimes.count <= 40, "\(callTimes.count) calls in 1500 s")
        #expect(gaps.allSatisfy { $0 <= 301 }, "gaps: \(gaps)")
        #expect(gaps.suffix(3).contains { $0 > 10 }, "late gaps grow: \(gaps)")
        await fixture.shutdown()
    }

    @Test func backgroundRefreshHappensInsideTheWindowOverSeveralCycles() async throws {
        let clock = ManualClock()
        let fixture = try await TokenEngineFixture(tokenTTL: 200, clock: clock)
        let key = try fixture.addTenants(1)[0]
        let manager = fixture.makeManager()
        try await manager.start()
        let refresher = Task { try await manager.run() }
        var issues: [(at: Double, token: LiveToken)] = []
        for _ in 0..<700 {
            try await Self.settle(manager, clock: clock)
            if let token = manager.cache.freshToken(for: key, now: clock.monotonicNow()), token != issues.last?.token {
                issues.append((clock.monotonicNow(), token))
            }
            clock.advance(by: 1)
        }
        refresher.cancel()
        #expect(issues.count >= 4, "cycles: \(issues.count)")
        for (previous, next) in zip(issues, issues.dropFirst()) {
            let fraction = (next.at - previous.token.issuedAt) / previous.token.lifetime
            #expect(fraction >= 0.5 && fraction <= 0.76, "refreshed at \(fraction) of the lifetime")
        }
        await fixture.shutdown()
    }

    /// NTP or an operator stepping the wall clock back two hours or forward two days must neither
    /// move a refresh nor expire a token: the engine runs on the monotonic clock.
    @Test(arguments: [-7200.0, 2 * 86_400.0])
    func aWallClockStepMovesNoRefreshAndExpiresNoToken(_ step: Double) async throws {
        let clock = ManualClock()
        let fixture = try await TokenEngineFixture(tokenTTL: 200, clock: clock)
        let key = try fixture.addTenants(1)[0]
        let manager = fixture.makeManager()
        try await manager.start()
        let refresher = Task { try await manager.run() }
        try await Self.settle(manager, clock: clock)
        let first = try #require(manager.cache.freshToken(for: key, now: clock.monotonicNow()))
        let due = try #require(await manager.activity().nextDue)
        clock.advance(by: 10)
        clock.jumpWallClock(by: step)
        try await Self.settle(manager, clock: clock)
        #expect(manager.cache.freshToken(for: key, now: clock.monotonicNow()) == first)
        #expect(await manager.activity().nextDue == due)
        let reported = try #require(await manager.statuses().first?.nextRefreshAt)
        #expect(abs(reported - (clock.unixNow() + due - clock.monotonicNow())) < 0.001, "status reports the refresh in stepped Unix time")

        clock.advance(by: due - clock.monotonicNow() - 1)
        try await Self.settle(manager, clock: clock)
        #expect(fixture.simulator.tokenRequestCount == 1, "no refresh before its time")
        clock.advance(by: 1)
        try await Self.settle(manager, clock: clock)
        #expect(fixture.simulator.tokenRequestCount == 2, "the refresh happens at its monotonic time")
        let second = try #require(manager.cache.freshToken(for: key, now: clock.monotonicNow()))
        #expect(second != first)
        #expect(abs(Double(second.expiresAtUnix) - (clock.unixNow() + 200)) <= 1, "new stamps follow the stepped wall clock")
        refresher.cancel()
        await fixture.shutdown()
    }

    @Test func aThousandTenantsRefreshAtAnEvenRate() async throws {
        let clock = ManualClock()
        let fixture = try await TokenEngineFixture(tokenTTL: 100, clock: clock)
        try fixture.addTenants(1000)
        let manager = fixture.makeManager(policy: TokenEngineFixture.unpacedPolicy)
        try await manager.start()
        let refresher = Task { try await manager.run() }
        try await Self.settle(manager, clock: clock)
        #expect(fixture.simulator.tokenRequestCount == 1000)
        var perStep: [Int] = []
        // Up to 98 s: a token refreshed at exactly 50 s is due again at 100 s (its second cycle).
        for _ in 0..<98 {
            let before = fixture.simulator.tokenRequestCount
            clock.advance(by: 1)
            try await Self.settle(manager, clock: clock)
            perStep.append(fixture.simulator.tokenRequestCount - before)
        }
        refresher.cancel()
        let refreshed = perStep.reduce(0, +)
        #expect(refreshed == 1000, "every token refreshed once in its first lifetime")
        #expect(perStep[..<49].allSatisfy { $0 == 0 } && perStep[76...].allSatisfy { $0 == 0 }, "\(perStep)")
        // Even rate over the 25 s window: 40/s. Peak over 5 s buckets must stay under 1.5x.
        let buckets = stride(from: 49, to: 76, by: 5).map { perStep[$0..<min($0 + 5, 76)].reduce(0, +) }
        let evenPerBucket = 1000.0 / 25 * 5
        #expect(Double(buckets.max()!) <= 1.5 * evenPerBucket, "buckets: \(buckets)")
        await fixture.shutdown()
    }

    @Test func startUpAcquisitionIsPacedPerRegion() async throws {
        let fixture = try await TokenEngineFixture()
        try fixture.addTenants(30)
        var policy = TokenPolicy()
        policy.backgroundRatePerRegion = 20
        policy.backgroundConcurrencyPerRegion = 4
        let manager = fixture.makeManager(policy: policy)
        try await manager.start()
        let started = ContinuousClock.now
        let refresher = Task { try await manager.run() }
        // About 1.5 s of pacing, but with the whole suite on two cores the fetches themselves can
        // wait seconds: the bound is for a hang, the pacing is checked below.
        #expect(await eventually(timeout: 30) { fixture.simulator.tokenRequestCount == 30 })
        let elapsed = ContinuousClock.now - started
        refresher.cancel()
        // 30 starts at 20/s take at least 29 intervals of 50 ms.
        #expect(elapsed >= .milliseconds(1400), "took \(elapsed)")
        let times = fixture.simulator.tokenRequestTimes().sorted()
        let perSecond = times.map { Int(($0 - times[0]) * 1000) / 1000 }
        let counts = Dictionary(grouping: perSecond, by: { $0 }).mapValues(\.count)
        #expect(counts.values.allSatisfy { $0 <= 21 }, "\(counts)")
        await fixture.shutdown()
    }

    /// Waits until the refresher has nothing due and no fetch in flight at the current clock time.
    static func settle(_ manager: TokenManager, clock: any BrokerClock) async throws {
        // A bound for a hang only: settling 1,000 fetches over HTTP takes seconds on a loaded machine.
        let settled = await eventually(timeout: 90, interval: 0.002) {
            let activity = await manager.activity()
            return activity.inFlight == 0 && activity.queued == 0 && (activity.nextDue ?? .infinity) > clock.monotonicNow()
        }
        try #require(settled, "token manager did not settle")
    }
}
