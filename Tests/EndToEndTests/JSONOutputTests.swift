import BrokerCore
import Foundation
import TestSupport
import Testing

/// `--json` on every command that prints data: one JSON document on stdout with the same facts as the
/// text, never a secret it did not mean to print.
@Suite(.heavy) struct JSONOutputTests {
    private static func document(_ result: CommandResult) throws -> JSONValue {
        #expect(result.status == 0, "\(result.stderr)")
        return try JSONParser.parse(Array(result.stdout.utf8))
    }

    @Test func commandsThatChangeStatePrintTheirResultAsJSON() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        let environment = daemon.environment

        let health = try Self.document(try await runBroker(["health", "--json"], environment: environment))
        #expect(health["healthy"] == true && health["store"] == "sqlite" && health["tenants"] == 1, "\(health)")

        let added = try Self.document(
            try await runBroker(["tenant", "add", "t9", "--region", "sg", "--appid", "app9", "--app-key-stdin", "--json"], environment: environment, stdin: "KEY-9-secret\n")
        )
        #expect(added == ["tenant": "t9", "region": "sg", "appid": "app9", "tenant_added": true, "daemon": "the running daemon reloaded"], "\(added)")

        let granted = try Self.document(try await runBroker(["access", "grant", "--uid", "4242", "--tenant", "t9", "--json"], environment: environment))
        #expect(granted["subject"]?["id"] == 4242 && granted["tenant"] == "t9" && granted["methods"] == ["token.get"], "\(granted)")
        let revoked = try Self.document(try await runBroker(["access", "revoke", "--uid", "4242", "--json"], environment: environment))
        #expect(revoked["revoked"] == 1 && revoked["subject"]?["kind"] == "uid", "\(revoked)")

        let created = try Self.document(try await runBroker(["access", "key", "create", "--tenant", "t9", "--name", "ci", "--json"], environment: environment))
        let keyID = try #require(created["id"]?.stringValue)
        #expect(created["key"]?.stringValue?.hasPrefix(ClientKeyText.prefix) == true && created["name"] == "ci", "the key is the command's data")
        let listed = try await runBroker(["access", "key", "list", "--json"], environment: environment)
        #expect(!listed.stdout.contains(created["key"]?.stringValue ?? "-"), "and is never listed")
        let keyRevoked = try Self.document(try await runBroker(["access", "key", "revoke", keyID, "--json"], environment: environment))
        #expect(keyRevoked["id"]?.stringValue == keyID && keyRevoked["revoked"] == true)

        let removed = try Self.document(try await runBroker(["tenant", "remove", "t9", "--json"], environment: environment))
        #expect(removed["tenant"] == "t9" && removed["credentials"] == 1 && removed["region"] == .null, "\(removed)")
        await daemon.shutdown()

        let down = try await runBroker(["health", "--json"], environment: environment)
        #expect(down.status == 1)
        let unhealthy = try JSONParser.parse(Array(down.stdout.utf8))
        #expect(unhealthy["healthy"] == false && unhealthy["reason"]?.stringValue?.contains("no daemon is listening") == true, "\(down.stdout)")
    }

    @Test func initAndKeyCommandsPrintTheirReportAsJSON() async throws {
        let directory = TemporaryDirectory("json")
        let environment = ["SOBOT_BROKER_HOME": directory.file("home")]
        let initialized = try Self.document(try await runBroker(["init", "--json"], environment: environment))
        #expect(initialized["key_created"] == true && initialized["home"]?.stringValue == directory.file("home"), "\(initialized)")
        #expect(try Self.document(try await runBroker(["init", "--json"], environment: environment))["key_created"] == false)
        let extended = try Self.document(try await runBroker(["key", "add", "--json"], environment: environment))
        #expect(extended["versions"]?.arrayValue?.count == 2, "\(extended)")
        let rotated = try Self.document(try await runBroker(["key", "rotate", "--json"], environment: environment))
        #expect(rotated["active_version"] == extended["versions"]?.arrayValue?.last && rotated["resealed_secrets"] == 0, "\(rotated)")
        let master = try String(contentsOfFile: directory.file("home/master.key"), encoding: .isoLatin1)
        #expect(!master.isEmpty)
    }

    @Test func simulatePrintsWhereItListensAsJSON() async throws {
        let process = BrokerProcess(["simulate", "--json"])
        try await process.launch()
        defer { if process.isRunning { process.signal(SIGTERM) } }
        #expect(await eventually(timeout: 60) { process.stdoutSoFar.hasSuffix("}\n") }, "\(process.stderrSoFar)")
        let started = try JSONParser.parse(Array(process.stdoutSoFar.utf8))
        let port = try #require(started["port"]?.integerValue)
        #expect(started["url"]?.stringValue == "http://127.0.0.1:\(port)" && started["region_urls"]?.stringValue?.hasPrefix("sg=http://127.0.0.1:") == true)
        process.signal(SIGTERM)
        #expect(try await process.exit().status == 0)
    }
}
