import BrokerCore
import BrokerServer
import Logging

/// What `serve` logs as it starts, so an operator sees what is in force without reading the config:
/// the config file, the URL each region uses and where it came from, the store, and every option.
/// No secret is in any of it (a database URL is shown redacted).
struct ServeStartupLog {
    let config: BrokerConfigFile
    let regions: RegionDirectory
    let settings: ServeSettings
    let store: StoreLocation
    let paths: BrokerPaths

    func write(to logger: Logger) {
        logger.info("config file: \(FileIO.exists(self.config.path) ? self.config.path : "none (\(self.config.path) does not exist)")")
        let fromFile = Set(self.config.regionURLs.map(\.region))
        let fromEnvironment = Set(
            (Environment.variables["SOBOT_BROKER_REGION_URLS"] ?? "").split(separator: ",").compactMap { entry in
                entry.split(separator: "=", maxSplits: 1).first.map { String($0).trimmingCharacters(in: .whitespaces) }
            }
        )
        for region in self.regions.names {
            let origin = fromEnvironment.contains(region) ? "SOBOT_BROKER_REGION_URLS" : fromFile.contains(region) ? "config" : "built in"
            logger.info("region \(region) uses \(self.regions.baseURL(for: region) ?? "?") (\(origin))")
        }
        switch self.store {
        case .sqlite: logger.info("store: SQLite \(self.paths.database)")
        case .postgres(let url): logger.info("store: PostgreSQL \(url.redacted())")
        }
        let options = self.settings.summary.map { item in
            item.origin.map { "\(item.name)=\(item.value) (\($0))" } ?? "\(item.name)=\(item.value)"
        }
        logger.info("options: \(options.joined(separator: ", "))")
    }
}

/// On SIGHUP the daemon reloads credentials, access rules and client keys itself; this re-reads the
/// config file beside that. Options are fixed for the life of the process (sockets, threads and limits
/// are set up once), so a changed option is logged as taking effect at the next start, and a file that
/// no longer reads is logged and left alone: the running daemon keeps serving either way.
enum ServeConfigReload {
    static func check(command: ServeCommand, running: ServeSettings, regions: RegionDirectory, logger: Logger) {
        let reread: ServeSettings
        let rereadRegions: RegionDirectory
        let config: BrokerConfigFile
        do {
            config = try command.options.loadConfigFile()
            reread = try ServeSettings(command, config: config)
            rereadRegions = try command.options.regions(configuredBy: config)
        } catch {
            logger.error("config file no longer reads; keeping the options in force: \(error)")
            return
        }
        let before = Dictionary(uniqueKeysWithValues: running.summary.map { ($0.name, $0.value) })
        var changed = reread.summary.filter { before[$0.name] != $0.value }.map(\.name)
        if rereadRegions != regions { changed.append("regions") }
        if changed.isEmpty {
            logger.info("config file \(config.path) re-read; no option changed")
        } else {
            logger.notice("config file \(config.path) re-read: \(changed.joined(separator: ", ")) changed; takes effect when the daemon restarts")
        }
    }
}
