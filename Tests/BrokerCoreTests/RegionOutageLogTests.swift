@testable import BrokerCore
import Testing

/// A region's outage is logged as a handful of lines, whatever the number of keys and retries.
@Suite struct RegionOutageLogTests {
    private static func key(_ index: Int, _ region: String = "sg") -> TokenKey {
        TokenKey(tenant: "t\(index)", region: region)
    }

    @Test func threeHundredKeysFailingForAMinuteAndAHalfMakeThreeLines() {
        var log = RegionOutageLog()
        var lines: [RegionOutageLog.Line] = []
        // Every key fails every 5 s for 90 s (backoff aside): 5,400 failures.
        for second in stride(from: 0.0, to: 90, by: 5) {
            for index in 0..<300 {
                if let line = log.failed(Self.key(index), error: "HTTP 503", now: 1000 + second + Double(index) / 1000) { lines.append(line) }
            }
        }
        for index in 0..<300 {
            if let line = log.cleared(Self.key(index), now: 1100) { lines.append(line) }
        }
        #expect(lines.count == 3)
        #expect(lines.first == .started(region: "sg", key: Self.key(0), error: "HTTP 503"))
        guard case .continuing(let region, let failingKeys, let failures, let seconds, _) = lines[1] else {
            Issue.record("no continuing line: \(lines)")
            return
        }
        #expect(region == "sg" && failingKeys == 300 && failures == 3601 && seconds == 60)
        #expect(lines.last == .recovered(region: "sg", seconds: 100, failures: 5400))
    }

    @Test func regionsAreIndependentAndOneHealthyKeyDoesNotEndAnOutage() {
        var log = RegionOutageLog(interval: 60)
        #expect(log.failed(Self.key(1), error: "a", now: 0) == .started(region: "sg", key: Self.key(1), error: "a"))
        #expect(log.failed(Self.key(1, "us"), error: "b", now: 1) == .started(region: "us", key: Self.key(1, "us"), error: "b"))
        #expect(log.failed(Self.key(2), error: "a", now: 2) == nil)
        #expect(log.cleared(Self.key(3), now: 3) == nil, "a key that never failed changes nothing")
        #expect(log.cleared(Self.key(1), now: 4) == nil, "t2 still fails")
        #expect(log.cleared(Self.key(2), now: 5) == .recovered(region: "sg", seconds: 5, failures: 2))
        #expect(log.failed(Self.key(2), error: "c", now: 6) == .started(region: "sg", key: Self.key(2), error: "c"), "a new outage")
        #expect(log.cleared(Self.key(1, "us"), now: 7) == .recovered(region: "us", seconds: 6, failures: 1))
    }
}
