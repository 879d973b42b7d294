/// Turns per-key fetch outcomes into a few log lines per region: one when a region starts failing,
/// at most one a minute while it fails, and one when its last failing key recovers. An upstream
/// outage fails every key of a region together, and a line per key and retry (1,343 lines for a
/// 45 s outage of 300 keys) buried the one thing an operator needs: which region, since when, why.
///
/// A state machine without I/O: the token manager feeds it outcomes with the time and logs the
/// lines it returns.
struct RegionOutageLog {
    enum Line: Equatable {
        case started(region: String, key: TokenKey, error: String)
        case continuing(region: String, failingKeys: Int, failures: Int, seconds: Double, lastError: String)
        case recovered(region: String, seconds: Double, failures: Int)
    }

    private struct Outage {
        var since: Double
        var lastLine: Double
        var failingKeys: Set<TokenKey>
        /// Failures since the outage began.
        var failures: Int
        var lastError: String
    }

    /// Seconds between the lines of a continuing outage.
    let interval: Double
    private var outages: [String: Outage] = [:]

    init(interval: Double = 60) {
        self.interval = interval
    }

    mutating func failed(_ key: TokenKey, error: String, now: Double) -> Line? {
        guard var outage = self.outages[key.region] else {
            self.outages[key.region] = Outage(since: now, lastLine: now, failingKeys: [key], failures: 1, lastError: error)
            return .started(region: key.region, key: key, error: error)
        }
        outage.failingKeys.insert(key)
        outage.failures += 1
        outage.lastError = error
        var line: Line?
        if now - outage.lastLine >= self.interval {
            outage.lastLine = now
            line = .continuing(
                region: key.region,
                failingKeys: outage.failingKeys.count,
                failures: outage.failures,
                seconds: now - outage.since,
                lastError: error
            )
        }
        self.outages[key.region] = outage
        return line
    }

    /// A key fetched (or adopted) a token, or is no longer tracked: the region recovers once no
    /// key of it is failing.
    mutating func cleared(_ key: TokenKey, now: Double) -> Line? {
        guard var outage = self.outages[key.region], outage.failingKeys.remove(key) != nil else { return nil }
        guard outage.failingKeys.isEmpty else {
            self.outages[key.region] = outage
            return nil
        }
        self.outages[key.region] = nil
        return .recovered(region: key.region, seconds: now - outage.since, failures: outage.failures)
    }
}
