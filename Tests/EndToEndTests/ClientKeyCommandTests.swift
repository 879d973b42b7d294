import BrokerCore
import Foundation
import TestSupport
import Testing

/// `access key create/list/revoke` through the built executable, on SQLite and on PostgreSQL: the
/// key is printed once, on stdout; nothing else (list, errors, notes) ever holds it. Keys are
/// compared, never printed: expectations take booleans and labels.
@Suite(.heavy) struct ClientKeyCommandTests {
    /// One backend's CLI: how to run a command, and the hashes its database holds (hex).
    struct Backend: Sendable {
        let run: @Sendable ([String]) async throws -> CommandResult
        let storedHashes: @Sendable () async throws -> [String]
    }

    @Test func theKeyLifecycleOnSQLite() async throws {
        let directory = TemporaryDirectory("ckc")
        let environment = ["SOBOT_BROKER_HOME": directory.file("home")]
        _ = try await runBroker(["init"], environment: environment)
        try await Self.lifecycle(
            Backend(
                run: { try await runBroker($0, environment: environment) },
                storedHashes: {
                    try await onThread {
                        let store = try BrokerHome(paths: BrokerPaths(home: directory.file("home"))).openStore()
                        return try store.hashedClientKeys().map { Hex.encode($0.secretHash) }
                    }
                }
            )
        )
    }

    @Test func theKeyLifecycleWithADatabaseURL() async throws {
        guard let cluster = try await RunningCluster.startOrSkip(brokers: 1, tenants: 0, start: false) else { return }
        defer { cluster.shutdown() }
        let environment = cluster.environment(0).filter { $0.key != "SOBOT_BROKER_DATABASE_URL" }
        let url = cluster.databaseURL
        try await Self.lifecycle(
            Backend(
                run: { try await runBroker($0 + ["--database-url", url], environment: environment) },
                storedHashes: {
                    let rows = try await onThread { try cluster.postgres.psql("SELECT encode(secret_hash, 'hex') FROM client_keys ORDER BY created_at, id") }
                    return rows.split(separator: "\n").map(String.init)
                }
            )
        )
    }

    static func lifecycle(_ backend: Backend) async throws {
        let created = try await backend.run(["access", "key", "create", "--tenant", "acme", "--name", "billing service"])
        #expect(created.status == 0, "\(created.stderr)")
        let printed = created.stdout.split(separator: "\n")
        let parsed = printed.count == 1 ? ClientKeyText(parsing: printed[0]) : nil
        let key = try #require(parsed, "stdout holds the key alone, in its format")
        let text = key.revealed
        let notes = created.stderr.split(separator: "\n")
        #expect(notes.count == 1 && notes[0].contains("shown only this once") && notes[0].contains(key.id), "\(created.stderr)")
        #expect(try await backend.storedHashes() == [Hex.encode(key.secretHash)], "stored as its hash")

        let every = try await backend.run(["access", "key", "create", "--tenant", "*", "--methods", "token.get, marketing.*"])
        #expect(every.status == 0, "\(every.stderr)")

        let table = try await backend.run(["access", "key", "list"])
        #expect(table.status == 0, "\(table.stderr)")
        let row = table.stdout.split(separator: "\n").first { $0.hasPrefix(key.id) }.map(String.init) ?? ""
        #expect(row.contains("billing service") && row.contains("acme") && row.contains("sobot.request,token.get") && row.hasSuffix("never"), "\(row)")
        #expect(table.stdout.contains("token.get,marketing.*"))

        let json = try await backend.run(["access", "key", "list", "--json"])
        let keys = try #require(try JSONParser.parse(Array(json.stdout.utf8))["keys"]?.arrayValue)
        #expect(keys.count == 2)
        let entry = keys.first { $0["id"]?.stringValue == key.id }
        #expect(entry?["tenant"] == "acme" && entry?["name"] == "billing service")
        #expect(entry?["methods"] == ["sobot.request", "token.get"] && entry?["last_used_at"] == .null)
        let fields = entry?.objectValue.map { Set($0.keys) }
        #expect(fields == ["id", "name", "tenant", "methods", "created_at", "last_used_at"], "never a hash")

        let revoked = try await backend.run(["access", "key", "revoke", key.id])
        #expect(revoked.status == 0 && revoked.stdout.contains("revoked client key \(key.id)"), "\(revoked.stderr)")
        let after = try await backend.run(["access", "key", "list"])
        #expect(!after.stdout.contains(key.id) && after.stdout.contains("token.get,marketing.*"))
        let again = try await backend.run(["access", "key", "revoke", key.id])
        #expect(again.status == 1 && again.stderr.contains("no client key \(key.id)") && Self.lineCount(again.stderr) == 1, "\(again.stderr)")
        let pasted = try await backend.run(["access", "key", "revoke", text])
        #expect(pasted.status == 1 && Self.lineCount(pasted.stderr) == 1 && pasted.stderr.contains("not the key"))

        let outputs = [created.stderr, every.stdout, every.stderr, table.stdout, json.stdout, revoked.stdout, after.stdout, again.stderr, pasted.stderr]
        let leaked = outputs.contains { $0.contains(text) || $0.contains(text.suffix(64)) }
        #expect(!leaked, "the key shows only on create's stdout")
    }

    @Test func badArgumentsAreUsageErrorsThatNeverEchoAKey() async throws {
        let directory = TemporaryDirectory("ckb")
        let environment = ["SOBOT_BROKER_HOME": directory.file("home")]
        _ = try await runBroker(["init"], environment: environment)
        let text = try ClientKeyText.generate().revealed
        let cases: [(String, [String])] = [
            ("bad tenant id", ["access", "key", "create", "--tenant", "Not Valid"]),
            ("a key as the tenant", ["access", "key", "create", "--tenant", text]),
            ("no tenant", ["access", "key", "create"]),
            ("bad methods", ["access", "key", "create", "--tenant", "acme", "--methods", "token get"]),
            ("empty methods", ["access", "key", "create", "--tenant", "acme", "--methods", ","]),
            ("empty name", ["access", "key", "create", "--tenant", "acme", "--name", ""]),
            ("control character in the name", ["access", "key", "create", "--tenant", "acme", "--name", "a\u{1b}[2Jb"]),
            ("no id", ["access", "key", "revoke"]),
        ]
        for (label, arguments) in cases {
            let result = try await runBroker(arguments, environment: environment)
            let leaked = result.stdout.contains(text) || result.stderr.contains(text)
            #expect(result.status == 64 && !leaked, "\(label): exit \(result.status)")
            #expect(result.stderr.split(separator: "\n").first?.hasPrefix("Error: ") == true, "\(label)")
        }
        let nothing = try await runBroker(["access", "key", "list"], environment: environment)
        #expect(nothing.stdout.hasPrefix("no client keys"), "nothing was created")
    }

    @Test func aRunningDaemonReloadsKeysAtOnce() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        let created = try await runBroker(["access", "key", "create", "--tenant", "t0"], environment: daemon.environment)
        #expect(created.status == 0 && created.stderr.contains("the running daemon reloaded"), "\(created.stderr)")
        let key = ClientKeyText(parsing: created.stdout.trimmingCharacters(in: .newlines))
        let id = try #require(key?.id)
        #expect(try await daemon.call("broker.reload").get()["client_keys"] == 1)
        let revoked = try await runBroker(["access", "key", "revoke", id], environment: daemon.environment)
        #expect(revoked.status == 0 && revoked.stdout.contains("the running daemon reloaded"), "\(revoked.stderr)")
        #expect(try await daemon.call("broker.reload").get()["client_keys"] == 0)
        await daemon.shutdown()
    }

    static func lineCount(_ text: String) -> Int {
        text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count
    }
}
