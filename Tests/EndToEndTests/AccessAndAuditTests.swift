import BrokerCore
import Foundation
import TestSupport
import Testing

/// Per-caller access rules with a real second identity, and the audit log.
@Suite(.heavy) struct AccessAndAuditTests {
    /// Runs `sobot-broker ARGS` as the user `nobody` (needs root and setpriv).
    static func asNobody(_ arguments: [String]) async throws -> CommandResult {
        try await runBrokerAs(uid: 65534, gid: 65534, arguments)
    }

    static var canSwitchUser: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
    }

    /// A daemon whose socket (0660, group `nogroup`, in `shared`) `nobody` can reach; nil, saying
    /// why `test` is skipped, without root and setpriv.
    static func daemonForNobody(
        tenants: Int,
        extraArguments: [String] = [],
        test: String = #function
    ) async throws -> (daemon: RunningDaemon, shared: TemporaryDirectory)? {
        guard Self.canSwitchUser else {
            print("skipped \(test): needs root and /usr/bin/setpriv to act as a second user")
            return nil
        }
        let shared = TemporaryDirectory("acl")
        chmod(shared.path, 0o755)
        let daemon = try await RunningDaemon(tenants: tenants, start: false, socket: shared.file("broker.sock"))
        try await daemon.start(extraArguments: ["--socket-group", "nogroup"] + extraArguments)
        return (daemon, shared)
    }

    @Test func callersGetOnlyWhatTheyAreGranted() async throws {
        guard let (daemon, shared) = try await Self.daemonForNobody(tenants: 2) else { return }
        defer { withExtendedLifetime(shared) {} }
        let socket = daemon.socket
        var info = stat()
        #expect(stat(socket, &info) == 0 && info.st_mode & 0o777 == 0o660 && info.st_gid == 65534)

        let denied = try await Self.asNobody(["call", "token.get", #"{"tenant":"t0"}"#, "--socket", socket])
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("permission denied") && denied.stderr.contains("-32002"), "\(denied.stderr)")

        let granted = try await runBroker(["access", "grant", "--user", "nobody", "--tenant", "t0"], environment: daemon.environment)
        #expect(granted.status == 0 && granted.stdout.contains("reloaded"), "\(granted.stderr)")
        let allowed = try await Self.asNobody(["call", "token.get", #"{"tenant":"t0"}"#, "--socket", socket])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(allowed.stdout.contains("\"tenant\": \"t0\""))
        let other = try await Self.asNobody(["call", "token.get", #"{"tenant":"t1"}"#, "--socket", socket])
        #expect(other.status == 1 && other.stderr.contains("permission denied"))
        let listed = try await Self.asNobody(["call", "tenant.list", "--socket", socket])
        let ids = try JSONParser.parse(Array(listed.stdout.utf8))["tenants"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
        #expect(ids == ["t0"])
        let admin = try await Self.asNobody(["call", "broker.reload", "--socket", socket])
        #expect(admin.status == 1 && admin.stderr.contains("permission denied"))

        let list = try await runBroker(["access", "list"], environment: daemon.environment)
        #expect(list.stdout.contains("nobody") && list.stdout.contains("token.get"))
        let revoked = try await runBroker(["access", "revoke", "--user", "nobody"], environment: daemon.environment)
        #expect(revoked.status == 0)
        let again = try await Self.asNobody(["call", "token.get", #"{"tenant":"t0"}"#, "--socket", socket])
        #expect(again.status == 1 && again.stderr.contains("permission denied"))

        let exit = try #require(try await daemon.stop())
        #expect(exit.status == 0)
        let audit = try String(contentsOfFile: daemon.home + "/audit.log", encoding: .utf8)
        let lines = try audit.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        #expect(lines.contains { $0["uid"] == 65534 && $0["outcome"] == "denied" && $0["tenant"] == "t1" && $0["code"] == -32002 })
        #expect(lines.contains { $0["uid"] == 65534 && $0["outcome"] == "ok" && $0["method"] == "token.get" && $0["tenant"] == "t0" })
        await daemon.shutdown()
    }

    @Test func removingATenantRemovesItsRulesAndHealthCountsOnlyWhatTheCallerMaySee() async throws {
        guard let (daemon, shared) = try await Self.daemonForNobody(tenants: 3) else { return }
        defer { withExtendedLifetime(shared) {} }
        let socket = daemon.socket
        for index in 0..<3 { _ = try await daemon.call("token.get", ["tenant": .string("t\(index)")]).get() }
        let granted = try await runBroker(["access", "grant", "--user", "nobody", "--tenant", "t0"], environment: daemon.environment)
        #expect(granted.status == 0, "\(granted.stderr)")

        let owners = try await daemon.call("broker.health").get()
        #expect(owners["tenants"] == 3 && owners["tokens_valid"] == 3, "\(owners)")
        let restricted = try await Self.asNobody(["call", "broker.health", "--socket", socket])
        let health = try JSONParser.parse(Array(restricted.stdout.utf8))
        #expect(health["tenants"] == 1 && health["tokens_valid"] == 1, "a caller granted t0 sees only t0: \(restricted.stdout)")

        let removed = try await runBroker(["tenant", "remove", "t0"], environment: daemon.environment)
        #expect(removed.status == 0 && removed.stdout.contains("removed t0 (1 credential, 1 access rule)"), "\(removed.stdout)")
        let readded = try await runBroker(
            ["tenant", "add", "t0", "--region", "sg", "--appid", "app0", "--app-key-env", "T0_KEY"],
            environment: daemon.environment.merging(["T0_KEY": RunningDaemon.appKey(0)]) { $1 }
        )
        #expect(readded.status == 0, "\(readded.stderr)")
        let inherited = try await Self.asNobody(["call", "token.get", #"{"tenant":"t0"}"#, "--socket", socket])
        #expect(inherited.status == 1 && inherited.stderr.contains("permission denied"), "a re-created tenant inherits no caller: \(inherited.stdout)")
        let rules = try await runBroker(["access", "list"], environment: daemon.environment)
        #expect(!rules.stdout.contains("nobody"), "\(rules.stdout)")
        await daemon.shutdown()
    }

    /// A stranger's calls naming a huge tenant are refused (-32602: not a tenant id) in short audit
    /// lines: the caller's string is not echoed, and earlier lines stay. (Repeats by one process merge into one line with a count:
    /// `AuditFloodTests`.)
    @Test func aStrangersHugeTenantIsNotEchoed() async throws {
        guard let (daemon, shared) = try await Self.daemonForNobody(tenants: 1) else { return }
        defer { withExtendedLifetime(shared) {} }
        let socket = daemon.socket
        _ = try await daemon.call("tenant.list").get()
        // An argument can be at most 128 KiB.
        let huge = #"{"tenant":"\#(String(repeating: "x", count: 120 << 10))"}"#
        for _ in 0..<10 {
            let denied = try await Self.asNobody(["call", "token.get", huge, "--socket", socket])
            #expect(denied.status == 1 && denied.stderr.contains("-32602") && !denied.stderr.contains("xxx"))
        }
        let exit = try #require(try await daemon.stop())
        #expect(exit.status == 0)
        let text = try String(contentsOfFile: daemon.home + "/audit.log", encoding: .utf8)
        #expect(text.utf8.count < 4096 && !text.contains("xxx"), "\(text.utf8.count) bytes")
        let lines = try text.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        #expect(lines.contains { $0["method"] == "tenant.list" && $0["outcome"] == "ok" }, "the earlier line is kept")
        // Each `call` is a process of its own, so a caller (uid, gid, pid) of its own.
        let denied = lines.filter { $0["uid"] == 65534 }
        #expect(denied.count == 10 && Set(denied.compactMap { $0["pid"]?.integerValue }).count == 10, "\(denied)")
        #expect(denied.allSatisfy { $0["tenant"] == "<invalid>" && $0["outcome"] == "error" && $0["code"] == -32602 })
        await daemon.shutdown()
    }

    @Test func theAuditLogIsPrivateAggregatesFastCallsAndHoldsNoSecret() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        var tokens: Set<String> = []
        let connection = try daemon.connect()
        for _ in 0..<25 {
            let reply = try await connection.reply(#"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":"t0"}}"#)
            tokens.insert(try #require(reply["result"]?["token"]?.stringValue))
        }
        _ = try await daemon.call("token.get", ["tenant": "nobody-here"])
        let exit = try #require(try await daemon.stop())
        #expect(exit.status == 0)
        let path = daemon.home + "/audit.log"
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for token in tokens { #expect(!text.contains(token)) }
        #expect(!text.contains(RunningDaemon.appKey(0)))
        let lines = try text.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        let served = lines.filter { $0["method"] == "token.get" && $0["tenant"] == "t0" && $0["outcome"] == "ok" }
        let total = served.reduce(0) { $0 + Int($1["count"]?.integerValue ?? 1) }
        #expect(total == 25, "\(served)")
        // The first request may precede the background acquisition and be answered (and audited) by
        // the general path; the fast-path successes of the connection share one line.
        #expect(served.count <= 2, "fast-path successes on one connection are aggregated: \(served)")
        #expect(lines.contains { $0["tenant"] == "nobody-here" && $0["outcome"] == "error" && $0["code"] == -32001 })
        #expect(lines.allSatisfy { $0["uid"]?.integerValue == Int64(getuid()) && $0["pid"]?.integerValue != nil && $0["time"] != nil })
        await daemon.shutdown()
    }
}
