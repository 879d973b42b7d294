import BrokerCore
import Logging
import NIOPosix
import ServiceLifecycle

/// Re-reads what other processes may have changed: credentials (the token engine's view), access
/// rules and client keys. Used by `broker.reload`, `SIGHUP`, `StoreWatcher` and, in a cluster, by
/// every configuration change another broker announces.
public struct BrokerReload: Sendable {
    let store: any BrokerStore
    let tokens: TokenManager
    let access: AccessControl
    let clientKeys: ClientKeyVerifier

    public init(store: any BrokerStore, tokens: TokenManager, access: AccessControl, clientKeys: ClientKeyVerifier) {
        self.store = store
        self.tokens = tokens
        self.access = access
        self.clientKeys = clientKeys
    }

    public func callAsFunction() async throws {
        try await self.tokens.reload()
        try await self.access.reload(from: self.store)
        try await self.clientKeys.reload(from: self.store)
    }
}

/// Notices changes other processes commit to the database (the admin CLI adding, replacing or
/// removing tenants, or changing access rules or client keys) and reloads the daemon's view, so onboarding needs
/// no restart even when the CLI could not reach the daemon. Polls SQLite's `data_version`, which
/// changes only on other connections' commits.
public struct StoreWatcher: Service {
    let store: any BrokerStore
    let reload: BrokerReload
    let interval: Duration
    let logger: Logger

    public init(store: any BrokerStore, reload: BrokerReload, interval: Duration = .seconds(2), logger: Logger) {
        self.store = store
        self.reload = reload
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var seen = try? await self.store.changeMarker()
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: self.interval)
            guard let version = try? await self.store.changeMarker(), version != seen else {
                continue
            }
            seen = version
            do {
                try await self.reload()
            } catch {
                self.logger.error("reload after a database change failed; keeping the current view", metadata: ["error": "\(error)"])
            }
        }
    }
}
