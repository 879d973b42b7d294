import ArgumentParser
import BrokerCore
import Foundation

/// `--home`, `--master-key-file`, `--socket` and `--database-url`, shared by every command.
struct HomeOptions: ParsableArguments {
    @Option(help: "State directory (default: $SOBOT_BROKER_HOME, else $XDG_STATE_HOME/sobot-broker, else ~/.local/state/sobot-broker).")
    var home: String?

    @Option(help: "Master key file (default: $SOBOT_BROKER_MASTER_KEY_FILE, else <home>/master.key).")
    var masterKeyFile: String?

    @Option(help: "Daemon socket (default: $SOBOT_BROKER_SOCKET, else <home>/broker.sock).")
    var socket: String?

    @Option(help: "A postgres:// URL: keep the state in that PostgreSQL database, shared by a cluster of brokers (default: $SOBOT_BROKER_DATABASE_URL, else <home>/broker.db). No password here: use the environment variable or PGPASSWORD.")
    var databaseURL: String?

    func validate() throws {
        _ = try self.storeLocation
    }

    var paths: BrokerPaths {
        BrokerPaths.resolve(home: self.home, masterKey: self.masterKeyFile, socket: self.socket, environment: Environment.variables)
    }

    var brokerHome: BrokerHome { BrokerHome(paths: self.paths) }
}

enum Environment {
    static var variables: [String: String] { ProcessInfo.processInfo.environment }

    /// The region URLs in force; a malformed `SOBOT_BROKER_REGION_URLS` is a usage error: one line
    /// naming the entry, exit 64.
    static func regions() throws -> RegionDirectory {
        do {
            return try RegionDirectory.fromEnvironment(Self.variables)
        } catch {
            FileHandle.standardError.write(Data("Error: \(error.description)\n".utf8))
            throw ExitCode(64)
        }
    }
}
