import ArgumentParser
import Foundation
import Logging

/// `--log-level` (default: $SOBOT_BROKER_LOG_LEVEL, else info). Logs go to stderr.
struct LogOptions: ParsableArguments {
    @Option(help: "trace, debug, info, notice, warning, error or critical (default: $SOBOT_BROKER_LOG_LEVEL, else info).")
    var logLevel: String?

    func validate() throws {
        if let level = self.logLevel, Logger.Level(rawValue: level) == nil {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    /// Bootstraps swift-log once for the process and returns the broker's logger.
    /// - Parameter configured: the config file's `log-level`, below the flag and the environment.
    func makeLogger(label: String = "sobot-broker", defaultLevel: Logger.Level = .info, configured: String? = nil) -> Logger {
        let level = self.logLevel.flatMap(Logger.Level.init(rawValue:))
            ?? Environment.variables["SOBOT_BROKER_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
            ?? configured.flatMap(Logger.Level.init(rawValue:))
            ?? defaultLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}
