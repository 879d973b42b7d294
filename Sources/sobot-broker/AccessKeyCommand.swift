import ArgumentParser
import BrokerCore
import Foundation

/// `access key …`: client keys, with which callers of the HTTP proxy over TCP authenticate. A key is
/// printed once, by `create`, and stored only as the SHA-256 of its secret; nothing else shows it.
struct AccessKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Client keys for callers of the HTTP proxy over TCP (stored only as a hash).",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a client key for a tenant ('*' for all) and print it, once, on stdout."
        )

        @OptionGroup var options: HomeOptions
        @OptionGroup var output: JSONOutputOption

        @Option(help: "A tenant id, or '*' for every tenant.")
        var tenant: String

        @Option(help: "Comma-separated methods or namespaces, e.g. 'sobot.request,token.get' (the default).")
        var methods: String = "sobot.request,token.get"

        @Option(help: "A name to recognise the key by in 'access key list' (at most 200 bytes).")
        var name: String?

        func validate() throws {
            _ = try AccessCommand.scope(tenant: self.tenant, methods: self.methods)
            if let name = self.name, name.isEmpty || name.utf8.count > 200 || name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                throw ValidationError("--name must be 1 to 200 bytes with no control characters")
            }
        }

        func run() async throws {
            let patterns = try AccessCommand.scope(tenant: self.tenant, methods: self.methods)
            let text = try ClientKeyText.generate()
            let key = ClientKey(id: text.id, name: self.name, tenant: self.tenant, methods: patterns, createdAt: Clock.unixNow)
            try await self.options.withStore { try await $0.createClientKey(key, secretHash: text.secretHash) }
            let daemon = DaemonNotice.ask(self.options)
            // The key is the command's output, alone on stdout (or in the JSON document): shown this once.
            self.output.emit(
                text.revealed,
                json: [
                    "id": .string(text.id), "key": .string(text.revealed), "tenant": .string(self.tenant),
                    "methods": .array(patterns.map(JSONValue.string)), "name": self.name.map(JSONValue.string) ?? .null, "daemon": daemon.json,
                ]
            )
            let scope = "\(patterns.joined(separator: ",")) for tenant \(self.tenant)"
            FileHandle.standardError.write(Data("created client key \(text.id) (\(scope)); the key is shown only this once\(daemon.suffix)\n".utf8))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List client keys (never a key or its hash).")

        @OptionGroup var options: HomeOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let keys = try await self.options.withStore { try await $0.clientKeys() }
            if self.json {
                print(JSONWriter.prettyString(["keys": .array(keys.map(Self.json))]))
                return
            }
            guard !keys.isEmpty else {
                print("no client keys: TCP callers of the HTTP proxy are refused")
                return
            }
            let now = Clock.unixNow
            var rows = [["ID", "NAME", "TENANT", "METHODS", "CREATED", "LAST USED"]]
            for key in keys {
                rows.append([
                    key.id, key.name ?? "", key.tenant, key.methods.joined(separator: ","), Self.ago(key.createdAt, now: now),
                    key.lastUsedAt.map { Self.ago($0, now: now) } ?? "never",
                ])
            }
            print(Table.render(rows))
        }

        static func json(_ key: ClientKey) -> JSONValue {
            [
                "id": .string(key.id),
                "name": key.name.map(JSONValue.string) ?? .null,
                "tenant": .string(key.tenant),
                "methods": .array(key.methods.map(JSONValue.string)),
                "created_at": .integer(key.createdAt),
                "last_used_at": key.lastUsedAt.map(JSONValue.integer) ?? .null,
            ]
        }

        static func ago(_ time: Int64, now: Int64) -> String {
            "\(DurationText.short(Double(max(0, now - time)))) ago"
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a client key by its id (as 'access key list' shows it).")

        @OptionGroup var options: HomeOptions
        @OptionGroup var output: JSONOutputOption

        @Argument(help: "The key's id.")
        var id: String

        func run() async throws {
            // Never echoed unless it is an id: a key pasted here by mistake must not reach the terminal log.
            guard ClientKeyText.isValidID(self.id) else {
                throw CLIError(self.id.hasPrefix(ClientKeyText.prefix) ? "give the key's id (as 'access key list' shows it), not the key" : "not a client key id (12 of [0-9a-f])")
            }
            let id = self.id
            guard try await self.options.withStore({ try await $0.revokeClientKey(id: id) }) else { throw CLIError("no client key \(id)") }
            let daemon = DaemonNotice.ask(self.options)
            self.output.emit("revoked client key \(id)\(daemon.suffix)", json: ["id": .string(id), "revoked": true, "daemon": daemon.json])
        }
    }
}
