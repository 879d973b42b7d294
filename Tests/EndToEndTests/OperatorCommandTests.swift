import BrokerCore
import Foundation
import TestSupport
import Testing

/// What an operator runs day to day, against the real binary: `status` with its filters and
/// summary, `refresh` after a failure, and `health`.
@Suite(.heavy) struct OperatorCommandTests {
    /// t1's app key is wrong at Sobot, so its fetch is rejected and held off for 10 minutes; t0 and
    /// t2 get tokens.
    private static func daemonWithOneRejectedKey() async throws -> RunningDaemon {
        let daemon = try await RunningDaemon(tenants: 3, start: false)
        daemon.simulator.register(appid: "app1", appKey: "not-the-key-the-broker-holds")
        try await daemon.start()
        let settled = await eventually(timeout: 30, interval: 0.2) {
            let status = try? await daemon.call("broker.status").get()
            let tokens = status?["tokens"]?.arrayValue ?? []
            return tokens.filter { $0["state"] == "valid" }.count == 2 && tokens.contains { $0["tenant"] == "t1" && $0["last_error"] != nil }
        }
        guard settled else { throw DaemonTestError("t0 and t2 never got tokens while t1 failed") }
        return daemon
    }

    private static func rows(_ output: String, tenantPrefix: String = "t") -> [Substring] {
        output.split(separator: "\n").filter { $0.hasPrefix(tenantPrefix) && $0.contains(" sg ") }
    }

    @Test func statusCountsEveryStateAndItsFiltersCombine() async throws {
        let daemon = try await Self.daemonWithOneRejectedKey()

        let all = try await runBroker(["status"], environment: daemon.environment)
        #expect(all.status == 0, "\(all.stderr)")
        #expect(all.stdout.contains("keys 3 · valid 2 · stale 0 · expired 0 · missing 1 · failing 1"), "\(all.stdout)")
        #expect(Self.rows(all.stdout).count == 3)
        let failingRow = Self.rows(all.stdout).first { $0.hasPrefix("t1 ") }
        #expect(failingRow?.contains("missing, failing (1×)") == true, "\(all.stdout)")
        #expect(failingRow?.contains("retry in ") == true, "the next retry is shown: \(all.stdout)")
        #expect(failingRow?.contains("signature error") == true, "and the last error: \(all.stdout)")
        let validRow = Self.rows(all.stdout).first { $0.hasPrefix("t0 ") }
        #expect(validRow?.contains(" in ") == true && validRow?.contains("Z)") == true, "expiry relative and absolute: \(all.stdout)")
        #expect(validRow?.contains("refresh in ") == true, "\(all.stdout)")
        #expect(!all.stdout.contains("in -") && !all.stdout.contains("ago -"), "no negative time: \(all.stdout)")

        let failing = try await runBroker(["status", "--state", "failing"], environment: daemon.environment)
        #expect(Self.rows(failing.stdout).map { $0.prefix(3) } == ["t1 "], "\(failing.stdout)")
        #expect(failing.stdout.contains("failing 1 (showing 1)"), "the summary still counts every key: \(failing.stdout)")

        let combined = try await runBroker(["status", "t0", "t1", "--state", "valid", "--region", "sg"], environment: daemon.environment)
        #expect(Self.rows(combined.stdout).map { $0.prefix(3) } == ["t0 "], "\(combined.stdout)")
        let otherRegion = try await runBroker(["status", "--region", "us"], environment: daemon.environment)
        #expect(Self.rows(otherRegion.stdout).isEmpty && otherRegion.stdout.contains("(showing 0)"), "\(otherRegion.stdout)")

        let json = try await runBroker(["status", "--json", "--state", "failing"], environment: daemon.environment)
        let report = try JSONParser.parse(Array(json.stdout.utf8))
        #expect(report["summary"]?["failing"] == 1 && report["summary"]?["keys"] == 3)
        #expect(report["tokens"]?.arrayValue?.map { $0["tenant"] } == ["t1"])
        #expect(report["tokens"]?.arrayValue?.first?["failing"] == true)

        let bad = try await runBroker(["status", "--state", "broken"], environment: daemon.environment)
        #expect(bad.status == 64, "\(bad.stderr)")

        // tenant list: the stored view with the same filters and state words.
        let missing = try await runBroker(["tenant", "list", "--state", "missing"], environment: daemon.environment)
        #expect(Self.rows(missing.stdout).map { $0.prefix(3) } == ["t1 "] && missing.stdout.contains(" missing"), "\(missing.stdout)")
        let valid = try await runBroker(["tenant", "list", "t0", "t1", "--state", "valid"], environment: daemon.environment)
        #expect(Self.rows(valid.stdout).map { $0.prefix(3) } == ["t0 "], "\(valid.stdout)")
        #expect(valid.stdout.contains("valid, expires in ") && valid.stdout.contains("Z)"), "\(valid.stdout)")
        let none = try await runBroker(["tenant", "list", "--region", "us"], environment: daemon.environment)
        #expect(none.status == 0 && none.stdout.contains("no tenant matches"), "\(none.stdout)")
        let listed = try JSONParser.parse(Array(try await runBroker(["tenant", "list", "--json", "--state", "valid"], environment: daemon.environment).stdout.utf8))
        #expect(listed["tenants"]?.arrayValue?.map { $0["id"] } == ["t0", "t2"])
        #expect(listed["tenants"]?.arrayValue?.allSatisfy { $0["regions"]?.arrayValue?.first?["token_state"] == "valid" } == true)
        #expect(try await runBroker(["tenant", "list", "--state", "failing"], environment: daemon.environment).status == 64, "failing is status's word")
        await daemon.shutdown()
    }

    @Test func refreshClearsTheHoldAndFetchesOnceAfterTheCauseIsFixed() async throws {
        let daemon = try await Self.daemonWithOneRejectedKey()

        // Still wrong: refresh tries once, says which key failed and why, exits 1.
        let before = daemon.simulator.tokenRequestCount
        let stillWrong = try await runBroker(["refresh", "t1"], environment: daemon.environment)
        #expect(stillWrong.status == 1)
        #expect(stillWrong.stderr.contains("t1: ") && stillWrong.stderr.contains("-32003"), "\(stillWrong.stderr)")
        #expect(daemon.simulator.tokenRequestCount == before + 1)

        // Fixed at Sobot: the key stays held off (ten minutes after a rejection) until refreshed.
        daemon.simulator.register(appid: "app1", appKey: RunningDaemon.appKey(1))
        #expect(try await daemon.call("token.get", ["tenant": "t1"]).isFailure)
        let fetches = daemon.simulator.tokenRequestCount
        let refreshed = try await runBroker(["refresh", "--failing"], environment: daemon.environment)
        #expect(refreshed.status == 0, "\(refreshed.stderr)")
        #expect(refreshed.stdout.contains("t1/sg: refreshed, expires in "), "\(refreshed.stdout)")
        #expect(daemon.simulator.tokenRequestCount == fetches + 1, "one get_token for the one failing key")
        let token = try await daemon.call("token.get", ["tenant": "t1"]).get()
        #expect(daemon.simulator.isCurrent(token: token["token"]?.stringValue ?? ""))
        #expect(!refreshed.stdout.contains(token["token"]?.stringValue ?? "-"), "refresh never prints a token")

        let nothingFailing = try await runBroker(["refresh", "--failing"], environment: daemon.environment)
        #expect(nothingFailing.status == 0 && nothingFailing.stdout.contains("no failing keys"))
        #expect(daemon.simulator.tokenRequestCount == fetches + 1)
        let status = try await runBroker(["status"], environment: daemon.environment)
        #expect(status.stdout.contains("valid 3 · stale 0 · expired 0 · missing 0 · failing 0"), "\(status.stdout)")

        let usage = try await runBroker(["refresh"], environment: daemon.environment)
        #expect(usage.status == 64)
        let unknown = try await runBroker(["refresh", "nosuch"], environment: daemon.environment)
        #expect(unknown.status == 1 && unknown.stderr.contains("-32001"), "\(unknown.stderr)")
        await daemon.shutdown()
    }

    /// 300 keys in an upstream outage: a line when the region starts failing and one when it has
    /// recovered (after `refresh --failing`), not a line per key and retry.
    @Test func anOutageOfThreeHundredKeysLogsAHandfulOfLines() async throws {
        let daemon = try await RunningDaemon(tenants: 300, start: false)
        daemon.simulator.fault = .httpStatus(503)
        try await daemon.start()
        let failed = await eventually(timeout: 30, interval: 0.25) {
            let tokens = (try? await daemon.call("broker.status").get())?["tokens"]?.arrayValue ?? []
            return tokens.filter { $0["last_error"] != nil }.count >= 100
        }
        #expect(failed, "at least 100 keys failed")
        try await Task.sleep(for: .seconds(2))
        daemon.simulator.fault = .none
        let refreshed = try await runBroker(["refresh", "--failing"], environment: daemon.environment)
        #expect(refreshed.status == 0, "\(refreshed.stderr.suffix(500))")
        let recovered = await eventually(timeout: 60, interval: 0.25) { daemon.process?.stderrSoFar.contains("token fetches recovered in a region") == true }
        #expect(recovered, "the recovery is logged")
        let lines = daemon.process?.stderrSoFar.split(separator: "\n") ?? []
        let outageLines = lines.filter { $0.contains("token fetches") }
        #expect(outageLines.filter { $0.contains("token fetches failing in a region") }.count == 1, "\(outageLines)")
        #expect(outageLines.count <= 4, "\(outageLines)")
        #expect(lines.filter { $0.contains("warning") || $0.contains("error") }.count <= 5, "\(lines.suffix(20))")
        await daemon.shutdown()
    }

    @Test func healthExitsZeroWhileTheDaemonServesAndOneOnceItIsGone() async throws {
        let daemon = try await RunningDaemon(tenants: 2)
        let up = try await runBroker(["health"], environment: daemon.environment)
        #expect(up.status == 0, "\(up.stderr)")
        #expect(up.stdout.hasPrefix("ok: 2 tenants") && up.stdout.contains("store sqlite"), "\(up.stdout)")
        #expect(up.stdout.split(separator: "\n").count == 1)
        await daemon.shutdown()
        let down = try await runBroker(["health"], environment: daemon.environment)
        #expect(down.status == 1)
        #expect(down.stderr.hasPrefix("error: unhealthy") || down.stderr.contains("unhealthy"), "\(down.stderr)")
        #expect(down.stderr.split(separator: "\n").count == 1, "\(down.stderr)")
    }
}

extension Result {
    fileprivate var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}
