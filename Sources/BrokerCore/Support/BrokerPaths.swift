/// Where the broker keeps its state, resolved from flags, then environment, then defaults
/// (see the contract's "Files and environment" table).
public struct BrokerPaths: Sendable, Equatable {
    public var home: String
    public var database: String
    public var masterKey: String
    public var socket: String

    public init(home: String, masterKey: String? = nil, socket: String? = nil) {
        self.home = home
        self.database = home + "/broker.db"
        self.masterKey = masterKey ?? home + "/master.key"
        self.socket = socket ?? home + "/broker.sock"
    }

    /// The lock a running `serve` holds, so a second daemon on the same home refuses to start.
    public var serveLock: String { self.home + "/serve.lock" }

    public static func resolve(
        home: String?,
        masterKey: String?,
        socket: String?,
        environment: [String: String]
    ) -> BrokerPaths {
        let home = home ?? environment["SOBOT_BROKER_HOME"] ?? Self.defaultHome(environment: environment)
        return BrokerPaths(
            home: home,
            masterKey: masterKey ?? environment["SOBOT_BROKER_MASTER_KEY_FILE"],
            socket: socket ?? environment["SOBOT_BROKER_SOCKET"]
        )
    }

    static func defaultHome(environment: [String: String]) -> String {
        if let state = environment["XDG_STATE_HOME"], !state.isEmpty {
            return state + "/sobot-broker"
        }
        return (environment["HOME"] ?? ".") + "/.local/state/sobot-broker"
    }
}
