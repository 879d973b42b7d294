import BrokerCore
import Testing

@Suite struct RefreshScheduleTests {
    let policy = TokenPolicy()

    @Test func refreshPointsStayInsideTheWindowWhateverTheJitter() {
        let token = LiveToken(value: "t", issuedAt: 1000, expiresAt: 1000 + 86_400, expiresAtUnix: 0)
        for index in 0..<2000 {
            let key = TokenKey(tenant: "tenant-\(index)", region: "sg")
            for jitter in [-1.0, 0, 1] {
                let fraction = (RefreshSchedule.refreshTime(for: token, key: key, policy: policy, jitter: jitter) - 1000) / 86_400
                #expect(fraction >= 0.5 && fraction <= 0.75)
            }
        }
    }

    @Test func keysSpreadEvenlyAcrossTheWindow() {
        var buckets = [Int](repeating: 0, count: 10)
        for index in 0..<10_000 {
            let fraction = RefreshSchedule.spreadFraction(for: TokenKey(tenant: "tenant-\(index)", region: index % 2 == 0 ? "sg" : "us"))
            buckets[min(9, Int(fraction * 10))] += 1
        }
        // Even would be 1,000 per bucket.
        #expect(buckets.allSatisfy { (850...1150).contains($0) }, "buckets: \(buckets)")
    }

    @Test func spreadIsDeterministicPerKey() {
        let key = TokenKey(tenant: "acme", region: "sg")
        #expect(RefreshSchedule.spreadFraction(for: key) == RefreshSchedule.spreadFraction(for: key))
        #expect(RefreshSchedule.spreadFraction(for: key) != RefreshSchedule.spreadFraction(for: TokenKey(tenant: "acme", region: "us")))
    }

    @Test func backoffGrowsExponentiallyAndNeverExceedsTheCap() {
        #expect(RefreshSchedule.backoff(afterFailures: 1, policy: policy, random: 1) == 1)
        #expect(RefreshSchedule.backoff(afterFailures: 4, policy: policy, random: 1) == 8)
        #expect(RefreshSchedule.backoff(afterFailures: 9, policy: policy, random: 1) == 256)
        #expect(RefreshSchedule.backoff(afterFailures: 10, policy: policy, random: 1) == 300)
        #expect(RefreshSchedule.backoff(afterFailures: 1000, policy: policy, random: 1) == 300)
        #expect(RefreshSchedule.backoff(afterFailures: 6, policy: policy, random: 0.5) == 16)
        for failures in 1...100 {
            #expect(RefreshSchedule.backoff(afterFailures: failures, policy: policy) <= 300)
        }
    }

    @Test func servingMarginIsTheSmallerOfSixtySecondsAndTenPercent() {
        #expect(LiveToken(value: "t", issuedAt: 0, expiresAt: 86_400, expiresAtUnix: 0).servingMargin == 60)
        #expect(LiveToken(value: "t", issuedAt: 0, expiresAt: 20, expiresAtUnix: 0).servingMargin == 2)
        let token = LiveToken(value: "t", issuedAt: 0, expiresAt: 20, expiresAtUnix: 0)
        #expect(token.isFresh(at: 18))
        #expect(!token.isFresh(at: 18.5))
        #expect(token.isUnexpired(at: 19.9))
        #expect(!token.isUnexpired(at: 20))
    }
}
