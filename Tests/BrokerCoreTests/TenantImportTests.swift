import BrokerCore
import Foundation
import TestSupport
import Testing

@Suite struct TenantImportTests {
    let regions = RegionDirectory()

    func parse(_ text: String, environment: [String: String] = [:]) throws(ImportError) -> [TenantDefinition] {
        try TenantImportFile.parse(Array(text.utf8), environment: environment, regions: self.regions)
    }

    @Test func readsTheExampleFileWithAnEnvironmentKey() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let definitions = try TenantImportFile.load(
            path: root.appendingPathComponent("tenants.example.json").path,
            environment: ["ACME_US_APP_KEY": "from-env"],
            regions: self.regions
        )
        let acme = try #require(definitions.first { $0.id == "acme" })
        #expect(acme.credentials.map(\.region) == ["sg", "us"])
        #expect(acme.credentials[1].appKey == "from-env")
    }

    @Test(arguments: [
        (#"{"tenants":[{"id":"a","credentials":[{"region":"sg","appid":"1","app_key":"k"}],"colour":"red"}]}"#, "tenants[0].colour"),
        (#"{"tenants":[],"extra":1}"#, "extra"),
        (#"{"tenants":[{"id":"ok","credentials":[{"region":"sg","appid":"1","app_key":"k"}]},{"id":"Bad Id","credentials":[]}]}"#, "tenants[1].id"),
        (#"{"tenants":[{"id":"a","credentials":[{"region":"sg","appid":"1","app_key":"k"},{"region":"sg","appid":"2","app_key":"k"}]}]}"#, "tenants[0].credentials[1].region"),
        (#"{"tenants":[{"id":"a","credentials":[{"region":"sg","appid":"1","app_key":"k"}]},{"id":"a","credentials":[{"region":"us","appid":"1","app_key":"k"}]}]}"#, "tenants[1].id"),
        (#"{"tenants":[{"id":"a","credentials":[{"region":"sg","appid":"1"}]}]}"#, "tenants[0].credentials[0].app_key"),
        (#"{"tenants":[{"id":"a","credentials":[{"region":"sg","appid":"1","app_key_env":"SURELY_UNSET_VAR"}]}]}"#, "tenants[0].credentials[0].app_key_env"),
        (#"{"tenants":[{"id":"a","credentials":[{"region":"mars","appid":"1","app_key":"k"}]}]}"#, "tenants[0].credentials[0].region"),
        (#"{"tenants":[{"id":"a","credentials":[{"region":"sg","appid":1,"app_key":"k"}]}]}"#, "tenants[0].credentials[0].appid"),
        (#"{"tenants":{}}"#, "tenants"),
        (#"[1,2]"#, "(root)"),
        ("not json at all", "(file)"),
        ("   \n", "(file)"),
    ])
    func rejectsBadFilesNamingTheJSONPath(_ text: String, _ path: String) {
        #expect {
            _ = try parse(text)
        } throws: { error in
            ((error as? ImportError)?.problems.first).map { $0.path ?? "(file)" } == path
        }
    }

    /// Found by the import fuzzer: an empty member name produced an error with an empty path.
    @Test(arguments: [
        (#"{"":""}"#, #"[""]"#),
        (#"{"tenants":[{"id":"a","credentials":[{"region":"sg","appid":"1","app_key":"k"}],"bad key\n":1}]}"#, #"tenants[0]["bad key\n"]"#),
    ])
    func oddMemberNamesGetABracketedPath(_ text: String, _ path: String) {
        #expect {
            _ = try parse(text)
        } throws: { error in
            let problems = (error as? ImportError)?.problems ?? []
            return problems.contains { $0.path == path } && !problems.contains { "\($0)".contains("\n") }
        }
    }

    @Test func errorsNeverQuoteTheKey() {
        let text = #"{"tenants":[{"id":"a","credentials":[{"region":"sg","appid":"1","app_key":"VERY-SECRET\u0001"}]}]}"#
        #expect {
            _ = try parse(text)
        } throws: { error in
            let description = "\(error)"
            return description.contains("tenants[0].credentials[0].app_key") && !description.contains("VERY-SECRET")
        }
    }

    /// Every problem is found in one pass, in file order, each with its line, column and tenant.
    @Test func reportsEveryProblemWithItsPlaceAndTenant() throws {
        let text = """
            {"tenants": [
              {"id": "acme", "credentials": [{"region": "eu", "appid": "1", "app_key": "SECRET-1"}]},
              {"id": "Bad", "credentials": []},
              {"id": "beta", "credentials": [{"region": "sg", "appid": "a b", "app_key": 7, "colour": 1}]},
              {"id": "acme", "credentials": [{"region": "us", "appid": "2", "app_key": "SECRET-2"}]}
            ]}
            """
        let error = try #require(throws: ImportError.self) { try parse(text) }
        #expect(error.problems.map(\.description) == [
            #"2:45: tenants[0].credentials[0].region (tenant acme): unknown region "eu" (known: sg, us; add others in config.toml [regions] or SOBOT_BROKER_REGION_URLS)"#,
            "3:10: tenants[1].id: must be 1-64 characters of [a-z0-9_-]",
            "3:32: tenants[1].credentials: must be a non-empty array",
            "4:60: tenants[2].credentials[0].appid (tenant beta): must be 1-128 printable characters without spaces",
            "4:78: tenants[2].credentials[0].app_key (tenant beta): must be a string, not a number",
            "4:81: tenants[2].credentials[0].colour (tenant beta): unknown field (allowed: app_key, app_key_env, appid, region)",
            #"5:10: tenants[3].id (tenant acme): duplicate tenant id "acme" (also tenants[0])"#,
        ])
        #expect(!"\(error.problems)".contains("SECRET"))
    }

    @Test func malformedJSONIsOneProblemWithItsPlace() throws {
        let error = try #require(throws: ImportError.self) { try parse("{\"tenants\": [\n  {\"id\": \"a\",}\n]}") }
        #expect(error.problems.map(\.description) == ["2:14: not valid JSON: expected a member name"])
    }

    @Test func refusesOversizedFilesBeforeReadingThem() throws {
        let directory = TemporaryDirectory("big")
        let path = directory.file("big.json")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x20, count: 50 << 20)))
        #expect {
            _ = try TenantImportFile.load(path: path, environment: [:], regions: self.regions)
        } throws: { error in
            "\(error)".contains("larger than 32 MiB")
        }
    }

    /// `demo` and `simulate` use the built-in copy; it is the repository's file, byte for byte.
    @Test func theBuiltInExampleIsTheRepositorysFile() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tenants.example.json")
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(TenantImportFile.example + "\n" == text)
    }
}
