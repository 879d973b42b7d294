import BrokerCore
import Foundation
import TestSupport
import Testing

/// A region list with a typo refuses every command that reads it, naming the entry (exit 64).
@Suite(.heavy) struct CLIConventionTests {
    @Test func aSemicolonInsteadOfACommaRefusesServeAndTenantAdd() async throws {
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        var environment = daemon.environment
        environment["SOBOT_BROKER_REGION_URLS"] = "sg=http://127.0.0.1:\(daemon.port);eu=http://127.0.0.1:\(daemon.port)"
        for arguments in [["serve"], ["tenant", "add", "acme", "--region", "sg", "--appid", "1", "--app-key-stdin"]] {
            let result = try await runBroker(arguments, environment: environment, stdin: "key\n")
            #expect(result.status == 64, "\(arguments): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
            #expect(result.stderr.contains("SOBOT_BROKER_REGION_URLS entry \"sg=http://127.0.0.1:\(daemon.port);eu="), "\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: daemon.socket), "serve never started")
        await daemon.shutdown()
    }

    /// The quick start's `demo` needs no tenants file in the working directory.
    @Test func demoRunsFromAnyDirectory() async throws {
        let directory = TemporaryDirectory("cwd")
        let result = try await onThread {
            let process = BrokerProcess(["demo"])
            process.directory = directory.path
            try process.start()
            return process.waitForExit()
        }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Imported tenants.example.json (built in): 3 tenants"), "\(result.stdout)")
        #expect(result.stdout.contains("token.get acme/sg over the socket"), "\(result.stdout)")
        let old = try await runBroker(["demo", "--tenants", "x.json"])
        #expect(old.status == 64, "--tenants is bench's count; demo takes --tenants-file")
    }

    @Test func completionPrintsAScriptForEachShell() async throws {
        for shell in ["bash", "zsh", "fish"] {
            let result = try await runBroker(["completion", shell])
            #expect(result.status == 0, "\(shell): \(result.stderr)")
            #expect(result.stdout.contains("sobot-broker") && result.stdout.contains("refresh") && result.stdout.contains("status"), "\(shell)")
        }
        #expect(try await runBroker(["completion", "powershell"]).status == 64)
    }

    @Test func grantChecksNamesRevokingNothingSucceedsCallPrintsTextAndTokenNamesItsFlag() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        let revoke = try await runBroker(["access", "revoke", "--uid", "4242"], environment: daemon.environment)
        #expect(revoke.status == 0 && revoke.stdout.contains("nothing revoked"), "\(revoke.stdout) \(revoke.stderr)")

        let unknownTenant = try await runBroker(["access", "grant", "--uid", "4242", "--tenant", "t9"], environment: daemon.environment)
        #expect(unknownTenant.status == 1 && unknownTenant.stderr.contains("no tenant t9"), "\(unknownTenant.stderr)")
        let forced = try await runBroker(["access", "grant", "--uid", "4242", "--tenant", "t9", "--force"], environment: daemon.environment)
        #expect(forced.status == 0, "\(forced.stderr)")
        // Prefix patterns: t* covers t0; a pattern nothing matches needs --force; other shapes are refused.
        let pattern = try await runBroker(["access", "grant", "--uid", "4243", "--tenant", "t*"], environment: daemon.environment)
        #expect(pattern.status == 0, "\(pattern.stderr)")
        let unmatched = try await runBroker(["access", "grant", "--uid", "4243", "--tenant", "client-*"], environment: daemon.environment)
        #expect(unmatched.status == 1 && unmatched.stderr.contains("no tenant matches client-*"), "\(unmatched.stderr)")
        for shape in ["*t", "t*0", "T*"] {
            let refused = try await runBroker(["access", "grant", "--uid", "4243", "--tenant", shape], environment: daemon.environment)
            #expect(refused.status == 64, "\(shape): \(refused.stderr)")
        }
        #expect(try await runBroker(["access", "revoke", "--uid", "4243"], environment: daemon.environment).status == 0)
        for methods in ["tokn.get", "nosuch.*", "token.get,marketing.catalog.qery"] {
            let misspelt = try await runBroker(["access", "grant", "--uid", "4242", "--tenant", "t0", "--methods", methods], environment: daemon.environment)
            #expect(misspelt.status == 64 && misspelt.stderr.contains("names no method"), "\(methods): \(misspelt.stderr)")
        }
        let namespaces = try await runBroker(
            ["access", "grant", "--uid", "4242", "--tenant", "t0", "--methods", "token.*,marketing.*,sobot.request"], environment: daemon.environment
        )
        #expect(namespaces.status == 0, "\(namespaces.stderr)")
        let rules = try await runBroker(["access", "list"], environment: daemon.environment)
        #expect(rules.stdout.contains("t9") && rules.stdout.contains("token.*,marketing.*,sobot.request"), "\(rules.stdout)")
        let listed = try JSONParser.parse(Array(try await runBroker(["access", "list", "--json"], environment: daemon.environment).stdout.utf8))
        let entries = listed["rules"]?.arrayValue ?? []
        let tenants: [String] = entries.compactMap { $0["tenant"]?.stringValue }.sorted()
        #expect(tenants == ["t0", "t9"], "\(listed)")
        #expect(entries.allSatisfy { $0["subject"]?["kind"] == "uid" && $0["subject"]?["id"] == 4242 })
        #expect(entries.first { $0["tenant"] == "t0" }?["methods"] == ["token.*", "marketing.*", "sobot.request"])

        let metrics = try await runBroker(["call", "broker.metrics"], environment: daemon.environment)
        #expect(metrics.status == 0)
        #expect(metrics.stdout.contains("\nsobot_broker_") || metrics.stdout.hasPrefix("sobot_broker_") || metrics.stdout.hasPrefix("#"), "\(metrics.stdout.prefix(200))")
        #expect(!metrics.stdout.hasPrefix("\""), "the exposition itself, not a JSON string")

        let added = try await runBroker(
            ["tenant", "add", "t0", "--region", "us", "--appid", "app0", "--app-key-stdin"], environment: daemon.environment, stdin: RunningDaemon.appKey(0) + "\n"
        )
        #expect(added.status == 0, "\(added.stderr)")
        _ = try await daemon.call("broker.reload").get()
        let token = try await runBroker(["token", "t0"], environment: daemon.environment)
        #expect(token.status == 1)
        #expect(token.stderr.contains("pass region with --region"), "\(token.stderr)")
        await daemon.shutdown()
    }
}
