import BrokerCore
import Foundation
import TestSupport
import Testing

/// What orchestrators and dashboards read: `/healthz` and `/readyz` on the metrics listener, `health`
/// exit codes, HELP and TYPE on every metric, and the shipped Grafana dashboard and alert rules, whose
/// every metric must be one the exporter writes.
@Suite(.heavy) struct ProbeAndMetricsContribTests {
    static let contrib = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("contrib").path

    private static func get(_ port: Int, _ path: String, method: String = "GET") throws -> (status: Int, body: String) {
        let response = try MetricsTests.httpGet(port: port, path: path, method: method)
        let status = Int(response.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = response.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        return (status, body)
    }

    @Test func probesAnswerOnTheMetricsListener() async throws {
        let port = try MetricsTests.freePort()
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        try await daemon.start(extraArguments: ["--metrics-listen", "127.0.0.1:\(port)"])
        let (healthz, ready, missing, posted) = try await onThread {
            (try Self.get(port, "/healthz"), try Self.get(port, "/readyz"), try Self.get(port, "/nothing"), try Self.get(port, "/readyz", method: "POST"))
        }
        #expect(healthz.status == 200 && healthz.body == "ok\n")
        #expect(ready.status == 200 && ready.body == "ready\n")
        #expect(missing.status == 404 && posted.status == 405)
        await daemon.shutdown()
    }

    /// With its cluster database gone the daemon still serves cached tokens, but it is not ready, and
    /// `health` says so with exit 1.
    @Test func aStoreThatDoesNotAnswerMakesTheBrokerUnreadyAndUnhealthy() async throws {
        let port = try MetricsTests.freePort()
        guard let cluster = try await RunningCluster.startOrSkip(brokers: 1, tenants: 1, extraArguments: ["--metrics-listen", "127.0.0.1:\(port)"]) else {
            return
        }
        defer { cluster.shutdown() }
        #expect(try await onThread { try Self.get(port, "/readyz") }.status == 200)
        #expect(try await cluster.cli(0, ["health"]).status == 0)
        try await onThread { try cluster.postgres.stopServer() }
        let unready = await eventually(timeout: 30, interval: 0.2) {
            guard let answer = try? await onThread({ try Self.get(port, "/readyz") }) else { return false }
            return answer.status == 503 && answer.body == "not ready: the store does not answer\n"
        }
        #expect(unready)
        #expect(try await onThread { try Self.get(port, "/healthz") }.status == 200, "alive all the same")
        let health = try await cluster.cli(0, ["health"])
        #expect(health.status == 1 && health.stderr.contains("store does not"), "\(health.stderr)")
        #expect(health.stderr.split(separator: "\n").count == 1)
        #expect((try? await cluster.token(0, "t0").get()) != nil, "the cached token is still served")
    }

    /// The metric names a PromQL expression or dashboard query reads, with a histogram's series suffixes
    /// taken back to its name.
    static func metricNames(in expressions: [String]) -> Set<String> {
        var names = Set<String>()
        for expression in expressions {
            var scanner = Substring(expression)
            while let start = scanner.firstRange(of: /\b(sobot_broker|process)_[a-z_]+/) {
                var name = String(scanner[start])
                for suffix in ["_bucket", "_count", "_sum"] where name.hasSuffix(suffix) && name.hasPrefix("sobot_broker_upstream") {
                    name.removeLast(suffix.count)
                }
                names.insert(name)
                scanner = scanner[start.upperBound...]
            }
        }
        return names
    }

    @Test func theDashboardAndAlertRulesUseOnlyMetricsTheExporterWrites() async throws {
        // A broker with a token, a failing credential and a Sobot call behind it: every series exists.
        let daemon = try await RunningDaemon(tenants: 2, start: false)
        daemon.simulator.register(appid: "app1", appKey: "not-the-key-the-broker-holds")
        try await daemon.start()
        #expect(await eventually(timeout: 30) { (try? await daemon.call("broker.status").get())?["tokens"]?.arrayValue?.contains { $0["last_error"] != nil } == true })
        _ = try await daemon.call("token.get", ["tenant": "t0"])
        let text = try #require(try await daemon.call("broker.metrics").get().stringValue)
        let lines = text.split(separator: "\n")

        // Every metric has HELP and TYPE, HELP first.
        let typed = lines.filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) }
        let helped = lines.filter { $0.hasPrefix("# HELP ") }.map { String($0.split(separator: " ")[2]) }
        #expect(!typed.isEmpty && Set(typed) == Set(helped), "TYPE without HELP: \(Set(typed).subtracting(helped)); HELP without TYPE: \(Set(helped).subtracting(typed))")
        #expect(text.contains(#"sobot_broker_failing_credentials{region="sg",class="credential"} 1"#), "\(text)")
        #expect(text.contains(#"sobot_broker_failing_credentials{region="sg",class="unavailable"} 0"#))
        #expect(text.contains("sobot_broker_build_info{version=\"\(BrokerVersion.current)\"} 1"))
        let expiry = lines.first { $0.hasPrefix("sobot_broker_token_soonest_expiry_seconds ") }.flatMap { Double($0.split(separator: " ")[1]) }
        #expect(expiry.map { $0 > 3000 && $0 <= 3600 } == true, "the simulator's tokens live an hour: \(String(describing: expiry))")
        for name in ["process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_cpu_seconds_total", "process_start_time_seconds"] {
            #expect(lines.contains { $0.hasPrefix(name + " ") }, "\(name)")
        }

        let exported = Set(typed)
        let alerts = try String(contentsOfFile: Self.contrib + "/prometheus/sobot-broker-alerts.yml", encoding: .utf8)
        let alertExpressions = alerts.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.drop { $0 == " " }
            return trimmed.hasPrefix("expr: ") ? String(trimmed.dropFirst(6)) : nil
        }
        #expect(alertExpressions.count >= 8)
        let dashboard = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Self.contrib + "/grafana/sobot-broker-dashboard.json"))))
        var queries: [String] = []
        func collect(_ value: JSONValue) {
            switch value {
            case .object(let members):
                for (key, member) in members {
                    if (key == "expr" || key == "query"), let text = member.stringValue { queries.append(text) }
                    collect(member)
                }
            case .array(let elements): elements.forEach(collect)
            default: break
            }
        }
        collect(dashboard)
        #expect(queries.count >= 10)
        let used = Self.metricNames(in: alertExpressions + queries)
        #expect(used.count >= 10, "\(used)")
        #expect(used.isSubset(of: exported), "used but not exported: \(used.subtracting(exported).sorted())")
        await daemon.shutdown()
    }
}
