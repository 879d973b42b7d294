import ArgumentParser
import BrokerCore
import BrokerServer

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Manage the master key.",
        subcommands: [Rotate.self]
    )

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a new master key version and re-seal every secret with it in one transaction."
        )

        @OptionGroup var options: HomeOptions

        func run() async throws {
            let home = self.options.brokerHome
            _ = try home.loadKeyring()
            // The daemon seals new tokens with the key it loaded; rotating under it would strand them.
            let lock: ServeLock
            do {
                lock = try ServeLock.acquire(at: home.paths.serveLock)
            } catch is ServeLockError {
                throw CLIError("a daemon is running on \(home.paths.home); stop `sobot-broker serve` before rotating the master key")
            }
            defer { withExtendedLifetime(lock) {} }
            let report = try await self.options.withStore { try await KeyRotation.rotate(home: home, store: $0) }
            let retired = report.retiredKeyIDs.map(String.init).joined(separator: ", ")
            print(
                "master key is now version \(report.activeKeyID); \(report.resealedSecrets) secrets re-sealed; retired versions: \(retired.isEmpty ? "none" : retired)"
            )
        }
    }
}
