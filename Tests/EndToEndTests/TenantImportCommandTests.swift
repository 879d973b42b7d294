import BrokerCore
import Foundation
import TestSupport
import Testing

/// `tenant import`, through the built executable on a real SQLite file: every error at once with its
/// place, the dry run's per-tenant diff, and progress on long imports. Output is checked byte for byte.
@Suite(.heavy) struct TenantImportCommandTests {
    let directory = TemporaryDirectory("import")
    var home: String { self.directory.file("home") }
    var environment: [String: String] { ["SOBOT_BROKER_HOME": self.home] }

    func broker(_ arguments: [String]) async throws -> CommandResult {
        try await runBroker(arguments, environment: self.environment)
    }

    /// Writes `text` as `name` in the test's directory and returns its path.
    func file(_ name: String, _ text: String) throws -> String {
        let path = self.directory.file(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A tenants file: one tenant per element of `tenants`, each a JSON object's text.
    static func tenantsFile(_ tenants: [String]) -> String {
        "{\"tenants\": [\n" + tenants.map { "  " + $0 }.joined(separator: ",\n") + "\n]}\n"
    }

    static func tenant(_ id: String, name: String? = nil, _ credentials: [(region: String, appid: String, key: String)]) -> String {
        let name = name.map { ", \"name\": \"\($0)\"" } ?? ""
        let list = credentials.map { #"{"region": "\#($0.region)", "appid": "\#($0.appid)", "app_key": "\#($0.key)"}"# }
        return "{\"id\": \"\(id)\"\(name), \"credentials\": [\(list.joined(separator: ", "))]}"
    }

    @Test func reportsEveryErrorWithItsPathTenantLineAndColumn() async throws {
        _ = try await broker(["init"])
        let path = try file("tenants.json", Self.tenantsFile([
            Self.tenant("acme", [("sg", "1", "SECRET-ONE")]),
            #"{"id": "beta", "credentials": [{"region": "eu", "appid": "2", "app_key": "SECRET-TWO"}]}"#,
            #"{"id": "Not Valid", "credentials": [{"region": "sg", "appid": "3 4", "app_key": "SECRET-3"}]}"#,
            #"{"id": "gamma", "nmae": "Gamma", "credentials": [{"region": "us", "appid": "5", "app_key": "SECRET-\u0001"}]}"#,
            Self.tenant("acme", [("us", "6", "SECRET-FOUR")]),
        ]))
        let result = try await broker(["tenant", "import", path])
        #expect(result.status == 1)
        #expect(result.stdout == "")
        #expect(result.stderr == """
            \(path): 6 errors
            \(path):3:45: tenants[1].credentials[0].region (tenant beta): unknown region "eu" (known: sg, us; add others in config.toml [regions] or SOBOT_BROKER_REGION_URLS)
            \(path):4:10: tenants[2].id: must be 1-64 characters of [a-z0-9_-]
            \(path):4:65: tenants[2].credentials[0].appid: must be 1-128 printable characters without spaces
            \(path):5:19: tenants[3].nmae (tenant gamma): unknown field (allowed: credentials, id, name)
            \(path):5:94: tenants[3].credentials[0].app_key (tenant gamma): must be 1-1024 printable characters
            \(path):6:10: tenants[4].id (tenant acme): duplicate tenant id "acme" (also tenants[0])

            """)
        #expect(!result.stderr.contains("SECRET"))
        let listed = try await broker(["tenant", "list", "--json"])
        #expect(listed.stdout.contains("\"tenants\": []"), "nothing written: \(listed.stdout)")
    }

    /// With `--json` every error is on stdout, none left out, each with its parts.
    @Test func jsonListsEveryError() async throws {
        _ = try await broker(["init"])
        let path = try file("many.json", Self.tenantsFile((0..<25).map { Self.tenant("t\($0)", [("mars", "1", "k")]) }))
        let result = try await broker(["tenant", "import", path, "--json"])
        #expect(result.status == 1)
        #expect(result.stderr == "")
        let parsed = try JSONParser.parse(Array(result.stdout.utf8))
        #expect(parsed["file"] == .string(path))
        let errors = try #require(parsed["errors"]?.arrayValue)
        #expect(errors.count == 25)
        #expect(errors[24] == [
            "line": 26, "column": 44, "path": "tenants[24].credentials[0].region", "tenant": "t24",
            "message": #"unknown region "mars" (known: sg, us; add others in config.toml [regions] or SOBOT_BROKER_REGION_URLS)"#,
        ])
    }

    @Test func showsTwentyErrorsAndCountsTheRest() async throws {
        _ = try await broker(["init"])
        let path = try file("many.json", Self.tenantsFile((0..<25).map { Self.tenant("t\($0)", [("mars", "1", "k")]) }))
        let result = try await broker(["tenant", "import", path, "--dry-run"])
        #expect(result.status == 1)
        let unknown = #"unknown region "mars" (known: sg, us; add others in config.toml [regions] or SOBOT_BROKER_REGION_URLS)"#
        // The region's column is 43, one more once the tenant id has two digits.
        let shown = (0..<20).map { "\(path):\($0 + 2):\($0 < 10 ? 43 : 44): tenants[\($0)].credentials[0].region (tenant t\($0)): \(unknown)\n" }
        #expect(result.stderr == "\(path): 25 errors\n" + shown.joined() + "\(path): ... and 5 more errors\n")
    }

    @Test func malformedJSONIsOneErrorWithItsLineAndColumn() async throws {
        _ = try await broker(["init"])
        let path = try file("broken.json", "{\"tenants\": [\n  {\"id\": \"é\", \"credentials\": [}\n]}\n")
        let result = try await broker(["tenant", "import", path])
        #expect(result.status == 1)
        #expect(result.stderr == "\(path):2:31: not valid JSON: unexpected character\n")
    }

    @Test func dryRunShowsWhatWouldChangePerTenant() async throws {
        _ = try await broker(["init"])
        let before = try file("before.json", Self.tenantsFile([
            Self.tenant("alpha", name: "Alpha", [("sg", "1", "key-a-sg"), ("us", "2", "key-a-us")]),
            Self.tenant("beta", [("sg", "3", "key-b-sg"), ("us", "30", "key-b-us")]),
            Self.tenant("gamma", name: "Gamma", [("sg", "5", "key-g-sg")]),
            Self.tenant("epsilon", [("sg", "7", "key-e-sg")]),
        ]))
        #expect(try await broker(["tenant", "import", before]).status == 0)
        let store = try BrokerHome(paths: BrokerPaths(home: self.home)).openStore()
        let now = Int64(Date().timeIntervalSince1970)
        try store.save(StoredToken(key: TokenKey(tenant: "beta", region: "sg"), value: "token-b", issuedAt: Double(now), expiresAt: Double(now + 3600)))
        let listedBefore = try await broker(["tenant", "list", "--json"]).stdout
        let after = try file("after.json", Self.tenantsFile([
            Self.tenant("alpha", name: "Alpha Travel", [("sg", "1", "key-a-sg"), ("us", "2", "key-a-us-NEW")]),
            Self.tenant("beta", [("sg", "4", "key-b-sg")]),
            Self.tenant("gamma", [("sg", "5", "key-g-sg")]),
            Self.tenant("delta", name: #"Delta \"Air\""#, [("sg", "9", "key-d-sg")]),
            Self.tenant("epsilon", [("sg", "7", "key-e-sg"), ("us", "11", "key-e-us")]),
        ]))
        let result = try await broker(["tenant", "import", after, "--dry-run"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr == "")
        #expect(result.stdout == """
            ~ alpha: name "Alpha" -> "Alpha Travel"
            ~ alpha/us: app_key changed
            ~ beta/sg: appid 3 -> 4; stored token dropped
            = beta/us: not in the file; left alone
            + delta: new tenant "Delta \\"Air\\""
            + delta/sg: new credential, appid 9
            + epsilon/us: new credential, appid 11
            = 1 tenant unchanged
            dry run: would import 5 tenants (1 new, 4 updated), 7 credentials; nothing written

            """)
        #expect(!result.stdout.contains("key-"))
        let json = try await broker(["tenant", "import", after, "--dry-run", "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let parsed = try JSONParser.parse(Array(json.stdout.utf8))
        #expect(parsed["dry_run"] == true && parsed["new"] == 1 && parsed["updated"] == 4 && parsed["unchanged_tenants"] == 1)
        let changes = try #require(parsed["changes"]?.arrayValue)
        #expect(changes.map { $0["id"] } == ["alpha", "beta", "delta", "epsilon"])
        #expect(changes[0]["rename"] == ["from": "Alpha", "to": "Alpha Travel"])
        #expect(changes[1]["credentials"] == [[
            "region": "sg", "appid": "4", "new": false, "previous_appid": "3", "app_key_changed": false, "stored_token_dropped": true,
        ]])
        #expect(changes[1]["regions_left_alone"] == ["us"])
        #expect(!json.stdout.contains("key-"))
        #expect(try await broker(["tenant", "list", "--json"]).stdout == listedBefore, "a dry run writes nothing")
        #expect(try store.token(for: TokenKey(tenant: "beta", region: "sg"), expiringAfter: now) != nil)
    }

    @Test func longImportsShowProgressLinesWhenStderrIsNotATerminal() async throws {
        _ = try await broker(["init"])
        let path = try file("big.json", Self.tenantsFile((0..<5_000).map { Self.tenant("t\($0)", [("sg", "\($0)", "key-\($0)")]) }))
        let result = try await broker(["tenant", "import", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "imported 5000 tenants (5000 new, 0 updated), 5000 credentials\n")
        #expect(result.stderr == (1...10).map { "importing \($0 * 500)/5000 tenants (\($0 * 10)%)\n" }.joined())
        let small = try file("small.json", Self.tenantsFile([Self.tenant("one", [("sg", "1", "k")])]))
        let quiet = try await broker(["tenant", "import", small, "--dry-run"])
        #expect(quiet.stderr == "", "a short import shows no progress")
    }
}
