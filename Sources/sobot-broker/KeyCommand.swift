import ArgumentParser
import BrokerCore
import BrokerServer

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Manage the master key.",
        subcommands: [Add.self, Rotate.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a new master key version to this host's key file, to distribute before a cluster rotates to it."
        )

        @OptionGroup var options: HomeOptions
        @OptionGroup var output: JSONOutputOption

        func run() async throws {
            let home = self.options.brokerHome
            let extended = try home.loadKeyring().addingFreshKey()
            try MasterKeyFile.write(extended, to: home.paths.masterKey)
            let versions = extended.keys.map { String($0.id) }.joined(separator: ", ")
            self.output.emit(
                "\(home.paths.masterKey) now holds versions \(versions); copy it to every broker's host, send each broker SIGHUP, then run `sobot-broker key rotate`",
                json: ["key_file": .string(home.paths.masterKey), "versions": .array(extended.keys.map { .integer(Int64($0.id)) })]
            )
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-seal every secret in one transaction with a new master key version (or the one `key add` put in the key file)."
        )

        @OptionGroup var options: HomeOptions
        @OptionGroup var output: JSONOutputOption

        func run() async throws {
            let home = self.options.brokerHome
            _ = try home.loadKeyring()
            // A single host's daemon seals new tokens with the key it loaded; rotating under it would
            // strand them. In a cluster the store refuses instead while a live broker lacks the version.
            var lock: ServeLock?
            if case .sqlite = try self.options.storeLocation {
                do {
                    lock = try ServeLock.acquire(at: home.paths.serveLock)
                } catch is ServeLockError {
                    throw CLIError("a daemon is running on \(home.paths.home); stop `sobot-broker serve` before rotating the master key")
                }
            }
            defer { withExtendedLifetime(lock) {} }
            let report = try await self.options.withStore { try await KeyRotation.rotate(home: home, store: $0) }
            let retired = report.retiredKeyIDs.map(String.init).joined(separator: ", ")
            self.output.emit(
                "master key is now version \(report.activeKeyID); \(report.resealedSecrets) secrets re-sealed; retired versions: \(retired.isEmpty ? "none" : retired)",
                json: [
                    "active_version": .integer(Int64(report.activeKeyID)), "resealed_secrets": .integer(Int64(report.resealedSecrets)),
                    "retired_versions": .array(report.retiredKeyIDs.map { .integer(Int64($0)) }),
                ]
            )
        }
    }
}
