import ArgumentParser
import BrokerCore
import BrokerServer
import Foundation

/// `--home`, `--config`, `--master-key-file`, `--socket` and `--database-url`, shared by every command.
///
/// Each setting is resolved flag, then environment, then config file, then default. The config file is
/// `--config`, else `$SOBOT_BROKER_CONFIG`, else `<home>/config.toml` when present; it is checked
/// strictly as the command starts, and a bad one stops the command with one line (exit 64).
struct HomeOptions: ParsableArguments {
    @Option(help: "State directory (default: $SOBOT_BROKER_HOME, else $XDG_STATE_HOME/sobot-broker, else ~/.local/state/sobot-broker).")
    var home: String?

    @Option(help: "Config file (default: $SOBOT_BROKER_CONFIG, else <home>/config.toml when present). Flags beat the environment, which beats the file.")
    var config: String?

    @Option(help: "Master key file (default: $SOBOT_BROKER_MASTER_KEY_FILE, else config master-key-file, else <home>/master.key).")
    var masterKeyFile: String?

    @Option(help: "Daemon socket (default: $SOBOT_BROKER_SOCKET, else the running daemon's, else config socket, else <home>/broker.sock).")
    var socket: String?

    @Option(help: "A postgres:// URL: keep the state in that PostgreSQL database, shared by a cluster of brokers (default: $SOBOT_BROKER_DATABASE_URL, else config database-url, else <home>/broker.db). No password here: use the environment variable, the config file or PGPASSWORD.")
    var databaseURL: String?

    func validate() throws {
        do {
            _ = try self.loadConfigFile()
            _ = try self.regions()
        } catch let failure as UsageFailure {
            throw failure.exit
        }
        _ = try self.storeLocation
    }

    var homeDirectory: String {
        BrokerPaths.resolve(home: self.home, masterKey: nil, socket: nil, environment: Environment.variables).home
    }

    /// The config file in force, checked; `validate()` has already refused a bad one.
    var configFile: BrokerConfigFile {
        (try? self.loadConfigFile()) ?? .empty(path: self.homeDirectory + "/config.toml")
    }

    /// Reads and checks the config file now; a bad one is a `UsageFailure`.
    func loadConfigFile() throws -> BrokerConfigFile {
        let named = self.config ?? Environment.variables["SOBOT_BROKER_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let path = named ?? self.homeDirectory + "/config.toml"
        do {
            return try BrokerConfigFile.load(path: path, required: named != nil) ?? .empty(path: path)
        } catch {
            throw UsageFailure(error.description)
        }
    }

    /// Where the daemon's socket is for `serve` itself: flag, environment, config, default.
    var paths: BrokerPaths {
        let environment = Environment.variables
        let config = self.configFile
        return BrokerPaths(
            home: self.homeDirectory,
            masterKey: self.masterKeyFile ?? environment["SOBOT_BROKER_MASTER_KEY_FILE"] ?? config.string("master-key-file"),
            socket: self.socket ?? environment["SOBOT_BROKER_SOCKET"] ?? config.string("socket")
        )
    }

    /// Where a client command finds the daemon: as `paths`, except that a daemon running on this home
    /// (it records its socket in `serve.lock`) is found even when it was started with `--socket`.
    var daemonSocket: String {
        if let socket = self.socket ?? Environment.variables["SOBOT_BROKER_SOCKET"] { return socket }
        let paths = self.paths
        return ServeLock.runningDaemonSocket(at: paths.serveLock) ?? paths.socket
    }

    var brokerHome: BrokerHome { BrokerHome(paths: self.paths) }

    /// The region URLs in force: built in, then the config file's `[regions]`, then
    /// `SOBOT_BROKER_REGION_URLS`. A malformed list is a usage error naming the entry.
    func regions(configuredBy config: BrokerConfigFile? = nil) throws -> RegionDirectory {
        do {
            return try RegionDirectory(configured: (config ?? self.configFile).regionURLs, overrides: Environment.variables["SOBOT_BROKER_REGION_URLS"])
        } catch {
            throw UsageFailure(error.description)
        }
    }
}

enum Environment {
    static var variables: [String: String] { ProcessInfo.processInfo.environment }
}
