import BrokerCore
import TestSupport
import Testing

@testable import BrokerPostgres

/// Concurrent claims and completions go to the database in batches, and every key still gets its own
/// answer: one lease per key across owners, and each token stored only under its own lease.
@Suite(.heavy) struct LeaseBatchTests {
    @Test func concurrentRequestsShareBatchesAndEachGetsItsOwnResult() async throws {
        let coalescer = RequestCoalescer<Int, Int>(maximumBatch: 64)
        let batches = BatchLog()
        let flush: RequestCoalescer<Int, Int>.Flush = { requests in
            await batches.record(requests.count)
            try? await Task.sleep(for: .milliseconds(5))
            return requests.map { $0 % 7 == 0 ? .failure(CancellationError()) : .success($0 * 2) }
        }
        #expect(try await coalescer.submit(1, flush: flush) == 2, "a lone request goes at once")
        try await withThrowingTaskGroup(of: (Int, Int?).self) { group in
            for request in 1...300 {
                group.addTask { (request, try? await coalescer.submit(request, flush: flush)) }
            }
            for try await (request, response) in group {
                #expect(response == (request % 7 == 0 ? nil : request * 2), "request \(request) got another's answer")
            }
        }
        let sizes = await batches.sizes
        #expect(sizes.reduce(0, +) == 301)
        #expect(sizes.allSatisfy { $0 <= 64 })
        #expect(sizes.count < 150, "300 concurrent requests went in \(sizes.count) batches")
    }

    @Test func twoOwnersClaimingAHundredKeysAtOnceGetOneLeaseEach() async throws {
        guard let fixture = try await PostgresFixture.start() else { return }
        defer { fixture.stop() }
        try await fixture.withStore { store in
            let tenants = (0..<100).map { tenant("t\($0)", ("sg", "app\($0)", "secret-\($0)")) }
            _ = try await store.upsert(tenants, now: 1_000, dryRun: false)
            let revisions = try await store.credentialRevisions()
            let keys = revisions.keys.sorted()
            let claims = try await withThrowingTaskGroup(of: (TokenKey, String, LeaseClaim).self) { group in
                for key in keys {
                    for owner in ["a", "b"] {
                        let basis = FetchBasis(revision: revisions[key]!, generation: 0)
                        group.addTask { (key, owner, try await store.claimLease(for: key, owner: owner, basis: basis, seconds: 30)) }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            var holders: [TokenKey: String] = [:]
            var leasedAt = 0.0
            for (key, owner, claim) in claims {
                if case .granted(let credential, let databaseNow) = claim {
                    leasedAt = databaseNow
                    #expect(holders[key] == nil, "\(key) leased twice")
                    #expect(credential.key == key && credential.appid == "app\(key.tenant.dropFirst())")
                    holders[key] = owner
                }
            }
            #expect(holders.count == 100, "every key leased once")

            // Half the completions come from the holder, half from the other owner: only the holder's land.
            let outcomes = try await withThrowingTaskGroup(of: (TokenKey, Bool, Int64?).self) { group in
                for (index, key) in keys.enumerated() {
                    let holder = holders[key]!
                    let byHolder = index.isMultiple(of: 2)
                    let owner = byHolder ? holder : (holder == "a" ? "b" : "a")
                    let revision = revisions[key]!
                    let issuedAt = leasedAt
                    group.addTask {
                        let generation = try await store.completeLease(
                            for: key, owner: owner, revision: revision, token: "tok-\(key.tenant)", issuedAtDatabase: issuedAt, lifetime: 3600
                        )
                        return (key, byHolder, generation)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for (key, byHolder, generation) in outcomes {
                #expect(generation == (byHolder ? 1 : nil), "\(key)")
                let stored = try await store.token(for: key, expiringAfter: Int64(fixture.clock.unixNow()))
                #expect(stored?.value == (byHolder ? "tok-\(key.tenant)" : nil), "\(key)")
            }
        }
    }
}

private actor BatchLog {
    var sizes: [Int] = []

    func record(_ size: Int) { self.sizes.append(size) }
}
