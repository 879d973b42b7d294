import BrokerServer

/// Tells a running daemon that the CLI changed its database, so the change applies at once.
/// (Without it the daemon notices within a few seconds by itself.)
enum DaemonNotice {
    /// Text to append to the command's output: what happened to the daemon, if one runs.
    static func reload(_ options: HomeOptions) -> String {
        Self.reloadOutcome(options).map { "; \($0)" } ?? ""
    }

    /// What happened to the daemon, or nil when none runs.
    static func reloadOutcome(_ options: HomeOptions) -> String? {
        switch try? BrokerClient(socketPath: options.daemonSocket, timeoutSeconds: 10).call("broker.reload") {
        case .success?: return "the running daemon reloaded"
        case .failure(let error)?: return "the running daemon did not reload (\(error.message)); it will notice within seconds"
        case nil: return nil
        }
    }
}
