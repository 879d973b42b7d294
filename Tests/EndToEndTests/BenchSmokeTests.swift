import BrokerCore
import TestSupport
import Testing

/// A one-second run of `bench`: the tool users size deployments with keeps working.
@Suite(.heavy) struct BenchSmokeTests {
    @Test func aShortSelfContainedRunReportsFigures() async throws {
        let result = try await runBroker(["bench", "--tenants", "3", "--connections", "4", "--duration", "1", "--token-ttl", "60", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONParser.parse(Array(result.stdout.utf8))
        #expect(report["errors"] == 0)
        #expect((report["requests"]?.integerValue ?? 0) > 100)
        #expect((report["daemon_rss_bytes"]?.integerValue ?? 0) > 1_000_000)
        #expect(report["startup_s"]?.doubleValue != nil)
        #expect((report["p50_us"]?.integerValue ?? 0) <= (report["p99_us"]?.integerValue ?? 0))
    }
}
