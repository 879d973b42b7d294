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
            (error as? ImportError)?.path == path
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
            (error as? ImportError)?.path == path && !"\(error)".contains("\n")
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
