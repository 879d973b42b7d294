import BrokerCore
import Foundation
import TestSupport
import Testing

/// The command line, driven through the built executable.
@Suite(.heavy) struct CLITests {
    let directory = TemporaryDirectory("cli")
    var home: String { self.directory.file("home") }
    var environment: [String: String] { ["SOBOT_BROKER_HOME": self.home] }

    func broker(_ arguments: [String], stdin: String? = nil, environment extra: [String: String] = [:]) async throws -> CommandResult {
        try await runBroker(arguments, environment: self.environment.merging(extra) { _, new in new }, stdin: stdin)
    }

    static func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int) ?? -1
    }

    @Test func initIsIdempotentAndNeverReplacesTheKey() async throws {
        let first = try await broker(["init"])
        #expect(first.status == 0, "\(first.stderr)")
        let key = try Data(contentsOf: URL(fileURLWithPath: self.home + "/master.key"))
        #expect(Self.mode(self.home) == 0o700)
        #expect(Self.mode(self.home + "/master.key") == 0o600)
        #expect(FileManager.default.fileExists(atPath: self.home + "/broker.db"))
        let second = try await broker(["init"])
        #expect(second.status == 0)
        #expect(second.stdout.contains("kept existing"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: self.home + "/master.key")) == key)
    }

    @Test func addFromStdinThenListNeverShowsTheKey() async throws {
        _ = try await broker(["init"])
        let added = try await broker(["tenant", "add", "acme", "--region", "sg", "--appid", "1", "--name", "Acme Travel", "--app-key-stdin"], stdin: "SUPER-SECRET-KEY-1\n")
        #expect(added.status == 0, "\(added.stderr)")
        let fromEnv = try await broker(
            ["tenant", "add", "acme", "--region", "us", "--appid", "7", "--app-key-env", "ACME_KEY"],
            environment: ["ACME_KEY": "SUPER-SECRET-KEY-2"]
        )
        #expect(fromEnv.status == 0, "\(fromEnv.stderr)")
        let json = try await broker(["tenant", "list", "--json"])
        #expect(json.status == 0)
        let listing = try JSONParser.parse(Array(json.stdout.utf8))
        let tenant = try #require(listing["tenants"]?.arrayValue?.first)
        #expect(tenant["id"] == "acme")
        #expect(tenant["name"] == "Acme Travel")
        #expect(tenant["regions"]?.arrayValue?.map { $0["region"] } == ["sg", "us"])
        #expect(tenant["regions"]?.arrayValue?.first?["token_state"] == "missing")
        let table = try await broker(["tenant", "list"])
        #expect(table.stdout.contains("acme") && table.stdout.contains("Acme Travel"))
        for output in [added.stdout, added.stderr, fromEnv.stdout, json.stdout, table.stdout] {
            #expect(!output.contains("SUPER-SECRET-KEY"))
        }
        let store = try BrokerHome(paths: BrokerPaths(home: self.home)).openStore()
        #expect(try store.credential(for: TokenKey(tenant: "acme", region: "us"))?.appKey == "SUPER-SECRET-KEY-2")
    }

    @Test(arguments: [
        ["tenant", "add", "acme", "--region", "sg", "--appid", "1", "--app-key", "oops"],
        ["tenant", "add", "acme", "--appid", "1", "--app-key-stdin"],
        ["tenant", "add", "acme", "--region", "sg", "--appid", "1"],
        ["tenant", "add", "Not Valid", "--region", "sg", "--appid", "1", "--app-key-stdin"],
        ["tenant", "frobnicate"],
        ["call"],
        ["call", "broker.health", "{not json"],
        ["serve", "--log-level", "loud"],
        ["serve", "--modules", "marketing,nope"],
        ["serve", "--background-rate", "0"],
    ])
    func usageErrorsExitWith64(_ arguments: [String]) async throws {
        let result = try await broker(arguments, stdin: "k\n")
        #expect(result.status == 64, "\(arguments): \(result.stderr)")
        #expect(!result.stderr.contains("oops"))
    }

    @Test func runtimeErrorsExitWith1AndOneLine() async throws {
        let notInitialized = try await broker(["tenant", "list"])
        #expect(notInitialized.status == 1)
        #expect(notInitialized.stderr.contains("sobot-broker init"))
        _ = try await broker(["init"])
        let unknown = try await broker(["tenant", "remove", "ghost"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(unknown.stderr)")
        #expect(unknown.stderr.contains("unknown tenant"))
        let noDaemon = try await broker(["token", "acme"])
        #expect(noDaemon.status == 1)
        #expect(noDaemon.stderr.contains("is `sobot-broker serve` running? socket:"))
    }

    @Test func importIsAllOrNothingAndDryRunWritesNothing() async throws {
        _ = try await broker(["init"])
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let example = root.appendingPathComponent("tenants.example.json").path
        let missingEnv = try await broker(["tenant", "import", example])
        #expect(missingEnv.status == 1)
        #expect(missingEnv.stderr.contains("tenants[0].credentials[1].app_key_env"))
        let dry = try await broker(["tenant", "import", example, "--dry-run"], environment: ["ACME_US_APP_KEY": "k"])
        #expect(dry.status == 0 && dry.stdout.contains("nothing written"), "\(dry.stderr)")
        let emptyList = try await broker(["tenant", "list", "--json"]).stdout
        #expect(emptyList.contains("\"tenants\": []"))
        let real = try await broker(["tenant", "import", example], environment: ["ACME_US_APP_KEY": "k"])
        #expect(real.status == 0, "\(real.stderr)")
        let before = try await broker(["tenant", "list", "--json"]).stdout
        let bad = self.directory.file("bad.json")
        try #"{"tenants":[{"id":"newone","credentials":[{"region":"sg","appid":"1","app_key":"k"}]},{"id":"x","credentials":[{"region":"sg","appid":"2","app_key":"k","extra":true}]}]}"#
            .write(toFile: bad, atomically: true, encoding: .utf8)
        let rejected = try await broker(["tenant", "import", bad])
        #expect(rejected.status == 1)
        #expect(rejected.stderr.contains("tenants[1].credentials[0].extra"))
        let after = try await broker(["tenant", "list", "--json"]).stdout
        #expect(after == before)
    }

    @Test func keyRotateKeepsEverySecretReadable() async throws {
        _ = try await broker(["init"])
        _ = try await broker(["tenant", "add", "acme", "--region", "sg", "--appid", "1", "--app-key-stdin"], stdin: "ROTATE-ME\n")
        let rotated = try await broker(["key", "rotate"])
        #expect(rotated.status == 0, "\(rotated.stderr)")
        #expect(rotated.stdout.contains("version 2"))
        let store = try BrokerHome(paths: BrokerPaths(home: self.home)).openStore()
        #expect(try store.credential(for: TokenKey(tenant: "acme", region: "sg"))?.appKey == "ROTATE-ME")
        #expect(try store.keyIDsInUse() == [2])
    }

    /// `tenant add` processes run one after another while `key rotate` runs three times: each add
    /// either commits a secret that opens with the final key file or says, in one line, to run it again.
    @Test func keyRotateAndConcurrentTenantAddsLeaveEverySecretReadable() async throws {
        _ = try await broker(["init"])
        let environment = self.environment
        async let adds = onThread { () -> (added: [Int], refused: [String]) in
            var added: [Int] = []
            var refused: [String] = []
            for index in 0..<24 {
                let process = BrokerProcess(
                    ["tenant", "add", "w\(index)", "--region", "sg", "--appid", "\(index)", "--app-key-env", "KEY"],
                    environment: environment.merging(["KEY": "CONCURRENT-KEY-\(index)"]) { $1 }
                )
                try process.start()
                let result = process.waitForExit()
                if result.status == 0 { added.append(index) } else { refused.append(result.stderr) }
            }
            return (added, refused)
        }
        for _ in 0..<3 {
            let rotated = try await broker(["key", "rotate"])
            #expect(rotated.status == 0, "\(rotated.stderr)")
        }
        let writer = try await adds
        for message in writer.refused {
            #expect(message.split(separator: "\n").count == 1 && message.contains("run it again"), "\(message)")
        }
        let store = try BrokerHome(paths: BrokerPaths(home: self.home)).openStore()
        #expect(try store.keyIDsInUse() == [4])
        for index in writer.added {
            #expect(try store.credential(for: TokenKey(tenant: "w\(index)", region: "sg"))?.appKey == "CONCURRENT-KEY-\(index)")
        }
    }

    @Test func aKeyFileAtTheLastVersionIsRefusedInOneLineNotATrap() async throws {
        _ = try await broker(["init"])
        _ = try await broker(["tenant", "add", "acme", "--region", "sg", "--appid", "1", "--app-key-stdin"], stdin: "KEEP-ME\n")
        // A key file naming the largest version a sealed value can carry (4 bytes): no next version exists.
        let keyFile = self.home + "/master.key"
        let original = try String(contentsOfFile: keyFile, encoding: .utf8)
        let lastVersion = original.replacingOccurrences(of: "\n1 ", with: "\n4294967295 ")
        try lastVersion.write(toFile: keyFile, atomically: false, encoding: .utf8)
        _ = try await broker(["tenant", "add", "acme", "--region", "sg", "--appid", "1", "--app-key-stdin"], stdin: "KEEP-ME\n")

        let rotated = try await broker(["key", "rotate"])
        #expect(rotated.status == 1, "\(rotated.stderr)")
        #expect(rotated.stderr.split(separator: "\n").count == 1 && rotated.stderr.contains("4294967295"), "\(rotated.stderr)")
        #expect(try String(contentsOfFile: keyFile, encoding: .utf8) == lastVersion)
        let store = try BrokerHome(paths: BrokerPaths(home: self.home)).openStore()
        #expect(try store.credential(for: TokenKey(tenant: "acme", region: "sg"))?.appKey == "KEEP-ME")
    }

    @Test func refusesToRunWithAKeyFileOthersCanRead() async throws {
        _ = try await broker(["init"])
        chmod(self.home + "/master.key", 0o640)
        for command in [["tenant", "list"], ["serve"]] {
            let result = try await broker(command)
            #expect(result.status == 1)
            #expect(result.stderr.contains("group or others"), "\(result.stderr)")
        }
    }
}
