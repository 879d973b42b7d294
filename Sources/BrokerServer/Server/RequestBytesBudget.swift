import Synchronization

/// The request bytes that connections of ordinary callers may hold at once (partial lines, and lines
/// waiting for the general path), so many connections each holding a nearly full line cannot pin
/// the daemon's memory: at most `limit` in all, and at most `limitPerUID` for any one uid, so one
/// local user cannot take it all. Each connection counts its own bytes in and out
/// (`ConnectionStateMachine`); the broker's owner and root are not counted here.
final class RequestBytesBudget: Sendable {
    let limit: Int
    let limitPerUID: Int
    private let held = Mutex(Held())

    private struct Held {
        var total = 0
        var byUID: [UInt32: Int] = [:]
    }

    /// - Parameter limitPerUID: defaults to a quarter of `limit`.
    init(limit: Int, limitPerUID: Int? = nil) {
        self.limit = limit
        self.limitPerUID = limitPerUID ?? max(1, limit / 4)
    }

    var heldBytes: Int { self.held.withLock { $0.total } }

    /// Counts `delta` bytes more (or fewer) for `uid`; false when an increase takes the total or the
    /// uid's share past its limit. The bytes are counted either way: the caller gives them back once
    /// it has let them go.
    func adjust(by delta: Int, uid: UInt32) -> Bool {
        guard delta != 0 else { return true }
        return self.held.withLock { held in
            held.total += delta
            let mine = held.byUID[uid, default: 0] + delta
            held.byUID[uid] = mine > 0 ? mine : nil
            return delta < 0 || (held.total <= self.limit && mine <= self.limitPerUID)
        }
    }
}
