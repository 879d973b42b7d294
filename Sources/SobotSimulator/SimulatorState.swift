import BrokerCore

/// Everything the simulator knows and has seen. Guarded by the simulator's mutex.
struct SimulatorState {
    var appKeys: [String: String] = [:]
    /// The one valid token per appid (issuing a new one revokes the previous: the worst case).
    var currentTokens: [String: (token: String, expiresAt: Double)] = [:]
    var appidByToken: [String: String] = [:]
    var tokenTTL: Double
    var fault: SimulatorFault = .none
    var businessFault: SimulatorFault = .none
    var tokenRequests: [(appid: String, at: Double)] = []
    var businessRequests = 0
    /// Connections accepted so far.
    var connections = 0

    init(tokenTTL: Double) {
        self.tokenTTL = tokenTTL
    }

    /// Issues `value` (by default a random token) as `appid`'s one valid token.
    mutating func issueToken(appid: String, now: Double, value: String? = nil) -> String {
        if let previous = self.currentTokens[appid] {
            self.appidByToken[previous.token] = nil
        }
        let token = value ?? Hex.encode((try? SecureRandom.bytes(16)) ?? [])
        self.currentTokens[appid] = (token, now + self.tokenTTL)
        self.appidByToken[token] = appid
        return token
    }

    /// The appid a business call's token belongs to, if the token is current and unexpired.
    func appid(forToken token: String, now: Double) -> String? {
        guard let appid = self.appidByToken[token], let current = self.currentTokens[appid],
            current.token == token, current.expiresAt > now
        else { return nil }
        return appid
    }
}
