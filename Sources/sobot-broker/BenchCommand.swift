import ArgumentParser
import BrokerCore
import BrokerPostgres
import BrokerServer
import Foundation
import NIOPosix
import SobotSimulator

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure token.get throughput, latency and daemon memory, self-contained or against --socket."
    )

    @Option(help: "Tenants to create and spread requests over (self-contained mode).")
    var tenants: Int = 1

    @Option(help: "Concurrent connections, each in a closed loop.")
    var connections: Int = 64

    @Option(help: "Seconds of load.")
    var duration: Double = 5

    @Option(help: "Method to call: token.get or broker.health.")
    var method: String = "token.get"

    @Option(help: "Aim at a running daemon's socket instead of starting one.")
    var socket: String?

    @Option(help: "Lifetime of the simulator's tokens in seconds (self-contained mode); short ones keep refreshes running underneath, for soak runs.")
    var tokenTtl: Double = 86_400

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: "Run a cluster on this PostgreSQL database (a scratch one: bench-… tenants are added). No password here: give it in PGPASSWORD.")
    var databaseURL: String?

    @Option(help: "Brokers in the cluster (with --database-url); each is loaded in turn for --duration.")
    var brokers: Int = 3

    func validate() throws {
        guard (1...1_000_000).contains(self.tenants) else { throw ValidationError("--tenants must be 1-1000000") }
        guard (1...4096).contains(self.connections) else { throw ValidationError("--connections must be 1-4096") }
        // Bounded, not just positive: the duration becomes integer nanoseconds, which 1e300 overflows.
        guard self.duration > 0, self.duration <= 86_400 else { throw ValidationError("--duration must be more than 0 and at most 86400 seconds") }
        guard ["token.get", "broker.health"].contains(self.method) else { throw ValidationError("--method must be token.get or broker.health") }
        guard (2...IssuedToken.lifetimeRange.upperBound).contains(self.tokenTtl) else {
            throw ValidationError("--token-ttl must be 2-\(Int(IssuedToken.lifetimeRange.upperBound)) seconds")
        }
        guard (1...16).contains(self.brokers) else { throw ValidationError("--brokers must be 1-16") }
        if self.databaseURL != nil {
            guard self.socket == nil else { throw ValidationError("--database-url starts its own cluster: leave out --socket") }
            guard self.method == "token.get" else { throw ValidationError("--database-url measures token.get") }
        }
        _ = try self.clusterURL
    }

    private var clusterURL: DatabaseURL? {
        get throws {
            guard let text = self.databaseURL else { return nil }
            let url: DatabaseURL
            do {
                url = try DatabaseURL(parsing: text)
            } catch {
                throw ValidationError("--database-url: \(error)")
            }
            guard !url.hasPassword else { throw ValidationError("--database-url must not hold a password (argv is visible to every user): use PGPASSWORD") }
            return url
        }
    }

    func run() async throws {
        if let url = try self.clusterURL {
            try await self.runCluster(url)
        } else if let socket = self.socket {
            let tenants = try await Self.offload { try Self.tenantIDs(socket: socket) }
            try await self.measure(socket: socket, tenants: tenants, startup: nil)
        } else {
            let target = try await BenchTarget.start(tenants: self.tenants, tokenTTL: self.tokenTtl, progress: !self.json)
            do {
                try await self.measure(socket: target.socket, tenants: target.tenantIDs, startup: target.startupSeconds)
            } catch {
                await target.stop()
                throw error
            }
            await target.stop()
        }
    }

    private func runCluster(_ url: DatabaseURL) async throws {
        let cluster = BenchCluster(brokers: self.brokers, tenants: self.tenants, tokenTTL: self.tokenTtl, url: url, progress: !self.json)
        let (connections, duration) = (self.connections, self.duration)
        let figures = try await cluster.run { socket, tenants in
            let generator = LoadGenerator(
                socketPath: socket,
                connections: connections,
                seconds: duration,
                requests: Self.tokenGetLines(tenants),
                isSuccess: LoadGenerator.isUnexpiredToken
            )
            return try await Self.offload { try generator.run() }
        }
        let perBroker = figures.perBroker.map { Int64($0.requestsPerSecond) }
        if self.json {
            let object: [String: JSONValue] = [
                "brokers": .integer(Int64(self.brokers)), "tenants": .integer(Int64(self.tenants)), "token_ttl_s": .double(self.tokenTtl),
                "import_s": .double(figures.importSeconds), "acquisition_s": .double(figures.acquisitionSeconds),
                "restart_s": .double(figures.restartSeconds), "rps_per_broker": .array(perBroker.map(JSONValue.integer)),
                "errors": .integer(Int64(figures.perBroker.reduce(0) { $0 + $1.errors })),
                "steady_s": .double(figures.steadySeconds), "get_token_calls": .integer(Int64(figures.tokenCalls)),
                "duplicate_get_token_calls": .integer(Int64(figures.duplicateCalls)),
                "database_transactions_per_s": .double(figures.transactionsPerSecond),
            ]
            Swift.print(JSONWriter.prettyString(.object(object)))
            return
        }
        Swift.print("cluster: \(self.brokers) brokers on PostgreSQL, \(self.tenants) tenants, \(Int(self.tokenTtl)) s tokens")
        Swift.print("import      \(String(format: "%.2f", figures.importSeconds)) s")
        Swift.print("acquisition \(String(format: "%.1f", figures.acquisitionSeconds)) s until every broker held every token")
        Swift.print("restart     \(String(format: "%.2f", figures.restartSeconds)) s from launch to serving every token")
        for (index, report) in figures.perBroker.enumerated() {
            Swift.print(
                "broker \(index)    \(Int(report.requestsPerSecond)) token.get/s, p50 \(report.percentile(0.5)) µs, p99 \(report.percentile(0.99)) µs, \(report.errors) errors"
            )
        }
        Swift.print("steady      \(String(format: "%.0f", figures.steadySeconds)) s: \(figures.tokenCalls) get_token calls in all, \(figures.duplicateCalls) duplicates")
        Swift.print("database    \(String(format: "%.0f", figures.transactionsPerSecond)) transactions/s across the cluster")
    }

    static func tokenGetLines(_ tenants: [String]) -> LoadGenerator.RequestLines {
        LoadGenerator.RequestLines(tenants.map { Array(#"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":"\#($0)"}}"#.utf8) + [0x0a] })
    }

    private func measure(socket: String, tenants: [String], startup: Double?) async throws {
        guard !tenants.isEmpty || self.method != "token.get" else { throw CLIError("the daemon has no tenants to ask for") }
        let lines =
            self.method == "token.get"
            ? Self.tokenGetLines(tenants) : LoadGenerator.RequestLines([Array(#"{"jsonrpc":"2.0","id":1,"method":"broker.health"}"#.utf8) + [0x0a]])
        let generator = LoadGenerator(
            socketPath: socket,
            connections: self.connections,
            seconds: self.duration,
            requests: lines,
            isSuccess: self.method == "token.get" ? LoadGenerator.isUnexpiredToken : LoadGenerator.hasResult
        )
        let pid = try? BrokerConnection(socketPath: socket).peerProcessID
        // Resident memory once warmed up (after a fifth of the run), and at the end.
        let warmRSS = Task { () -> Int? in
            try? await Task.sleep(for: .milliseconds(Int64(self.duration * 200)))
            return pid.flatMap(Self.residentBytes(pid:))
        }
        let report = try await Self.offload { try generator.run() }
        let memory = Memory(warm: await warmRSS.value, final: pid.flatMap(Self.residentBytes(pid:)))
        self.print(report, tenants: tenants.count, memory: memory, startup: startup)
    }

    struct Memory {
        var warm: Int?
        var final: Int?

        var growth: Double? {
            guard let warm, let final, warm > 0 else { return nil }
            return Double(final - warm) / Double(warm)
        }
    }

    private func print(_ report: LoadGenerator.Report, tenants: Int, memory: Memory, startup: Double?) {
        if self.json {
            var object: [String: JSONValue] = [
                "method": .string(self.method), "connections": .integer(Int64(self.connections)),
                "duration_s": .double(report.seconds), "tenants": .integer(Int64(tenants)),
                "requests": .integer(Int64(report.requests)), "errors": .integer(Int64(report.errors)),
                "rps": .integer(Int64(report.requestsPerSecond)), "p50_us": .integer(Int64(report.percentile(0.5))),
                "p99_us": .integer(Int64(report.percentile(0.99))), "p999_us": .integer(Int64(report.percentile(0.999))),
            ]
            if let rss = memory.final { object["daemon_rss_bytes"] = .integer(Int64(rss)) }
            if let growth = memory.growth { object["rss_growth_after_warmup"] = .double(growth) }
            if let startup { object["startup_s"] = .double(startup) }
            Swift.print(JSONWriter.prettyString(.object(object)))
            return
        }
        Swift.print("\(self.method): \(self.connections) connections, \(String(format: "%.1f", report.seconds)) s, \(tenants) tenants")
        Swift.print("throughput  \(Int(report.requestsPerSecond)) requests/s")
        Swift.print("latency     p50 \(report.percentile(0.5)) µs, p99 \(report.percentile(0.99)) µs, p999 \(report.percentile(0.999)) µs")
        Swift.print("errors      \(report.errors) of \(report.requests)\(self.method == "token.get" ? " (an error includes any token served at or past expiry)" : "")")
        if let rss = memory.final {
            let growth = memory.growth.map { String(format: " (%+.1f%% since warm-up)", $0 * 100) } ?? ""
            Swift.print("daemon RSS  \(String(format: "%.1f", Double(rss) / 1_048_576)) MiB\(growth)")
        }
        if let startup { Swift.print("startup     \(String(format: "%.2f", startup)) s from launch to serving \(tenants) persisted tokens") }
    }

    static func tenantIDs(socket: String) throws -> [String] {
        guard case .success(let listing) = try BrokerClient(socketPath: socket).call("tenant.list") else {
            throw CLIError("tenant.list failed on \(socket)")
        }
        return (listing["tenants"]?.arrayValue ?? []).compactMap { tenant in
            (tenant["regions"]?.arrayValue?.count == 1) ? tenant["id"]?.stringValue : nil
        }
    }

    static func residentBytes(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kilobytes * 1024
    }

    static func offload<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}
