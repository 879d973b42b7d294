import BrokerCore
import Foundation
import TestSupport
import Testing

/// A 30 s upstream outage with 300 keys, against the real binary: the daemon logs when the region starts
/// failing and when it recovers (and once a minute in between), not a line per key or per retry; and
/// `refresh --failing` brings every key back at once afterwards instead of waiting out the backoffs.
@Suite(.heavy) struct OutageLogVolumeTests {
    @Test func aThirtySecondOutageOfThreeHundredKeysWritesAHandfulOfLines() async throws {
        let daemon = try await RunningDaemon(tenants: 300, start: false)
        daemon.simulator.fault = .httpStatus(503)
        try await daemon.start()
        let process = try #require(daemon.process)
        let outageStarted = ContinuousClock.now
        // Well into the outage, every key has been tried at least once (20 fetches a second are paced).
        #expect(await eventually(timeout: 60, interval: 0.5) {
            let summary = try? await daemon.call("broker.status").get()
            return summary?["tokens"]?.arrayValue?.filter { $0["last_error"] != nil }.count == 300
        })
        let remaining = 30 - (ContinuousClock.now - outageStarted).seconds
        if remaining > 0 { try await Task.sleep(for: .milliseconds(Int64(remaining * 1000))) }
        let calls = daemon.simulator.tokenRequestCount
        #expect(calls > 300, "keys were retried during the outage: \(calls)")

        daemon.simulator.fault = .none
        let refreshed = try await runBroker(["refresh", "--failing"], environment: daemon.environment)
        #expect(refreshed.status == 0, "\(refreshed.stdout) \(refreshed.stderr)")
        #expect(await eventually(timeout: 60, interval: 0.5) {
            (try? await daemon.call("broker.health").get())?["tokens_valid"]?.integerValue == 300
        }, "every key holds a token again")

        let log = process.stderrSoFar.split(separator: "\n")
        let loud = log.filter { $0.contains(" warning ") || $0.contains(" error ") || $0.contains(" notice ") || $0.contains(" critical ") }
        let aboutTheOutage = loud.filter { $0.contains("in a region") }
        #expect(aboutTheOutage.count >= 2 && aboutTheOutage.count <= 4, "start, at most one a minute, recovery: \(aboutTheOutage)")
        #expect(aboutTheOutage.first?.contains("token fetches failing in a region") == true)
        #expect(aboutTheOutage.last?.contains("token fetches recovered in a region") == true)
        #expect(loud.count <= 8, "\(loud.count) loud lines for \(calls) failed fetches:\n\(loud.joined(separator: "\n"))")
        #expect(!log.contains { $0.contains(RunningDaemon.appKey(0)) })
        await daemon.shutdown()
    }
}
