import ArgumentParser
import BrokerCore
import BrokerServer
import Foundation

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the daemon: JSON-RPC 2.0 over the Unix socket. SIGTERM/SIGINT drain requests, remove the socket, exit 0."
    )

    @OptionGroup var options: HomeOptions
    @OptionGroup var logging: LogOptions

    @Option(help: "Seconds to let in-flight requests finish on shutdown.")
    var drainTimeout: Double = 10

    func run() async throws {
        // Everything the daemon creates (database, WAL, lock) is private to its user.
        umask(0o077)
        let logger = self.logging.makeLogger()
        var configuration = BrokerDaemon.Configuration(paths: self.options.paths, regions: try Environment.regions())
        configuration.modules = BuiltinModules.all
        configuration.drainTimeout = self.drainTimeout
        let daemon = try await BrokerDaemon(configuration: configuration, logger: logger)
        try await daemon.run()
    }
}
