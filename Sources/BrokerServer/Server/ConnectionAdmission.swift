import BrokerCore
import Metrics
import Synchronization

/// Decides whether a new connection may be served, so no caller can take every slot:
/// - at most `maximumConnections` in all;
/// - the last `reservedConnections` of them (1/64, at most 64) only for the broker's own uid and
///   root, so an administrator can always connect to see and stop what is going on;
/// - at most `maximumPerUID` for any other uid.
final class ConnectionAdmission: Sendable {
    let maximumConnections: Int
    let maximumPerUID: Int
    let reservedConnections: Int
    private let ownerUID: UInt32
    private let counts = Mutex(Counts())
    private let gauge = Gauge(label: BrokerMetrics.connections)

    private struct Counts {
        var total = 0
        var byUID: [UInt32: Int] = [:]
    }

    init(maximumConnections: Int, maximumPerUID: Int, ownerUID: UInt32) {
        self.maximumConnections = max(1, maximumConnections)
        self.maximumPerUID = max(1, maximumPerUID)
        self.reservedConnections = min(maximumConnections / 64, 64)
        self.ownerUID = ownerUID
    }

    /// The broker's own uid and root: the reserved slots are theirs, and no per-uid cap applies.
    func isPrivileged(uid: UInt32) -> Bool {
        uid == 0 || uid == self.ownerUID
    }

    /// Counts the connection and returns nil, or returns why it is refused (and counts nothing).
    func admit(uid: UInt32) -> String? {
        let privileged = self.isPrivileged(uid: uid)
        let outcome: (refusal: String?, total: Int) = self.counts.withLock { counts in
            if counts.total >= self.maximumConnections {
                return ("too many connections (limit \(self.maximumConnections)); try again later", counts.total)
            }
            if !privileged {
                if counts.total >= self.maximumConnections - self.reservedConnections {
                    return ("too many connections (the last \(self.reservedConnections) of \(self.maximumConnections) are kept for the broker's owner and root); try again later", counts.total)
                }
                if counts.byUID[uid, default: 0] >= self.maximumPerUID {
                    return ("too many connections from uid \(uid) (limit \(self.maximumPerUID) per uid); try again later", counts.total)
                }
                counts.byUID[uid, default: 0] += 1
            }
            counts.total += 1
            return (nil, counts.total)
        }
        if outcome.refusal == nil { self.gauge.record(outcome.total) }
        return outcome.refusal
    }

    /// Releases a connection `admit` counted.
    func release(uid: UInt32) {
        let privileged = self.isPrivileged(uid: uid)
        let total = self.counts.withLock { counts in
            if !privileged {
                let left = counts.byUID[uid, default: 1] - 1
                counts.byUID[uid] = left > 0 ? left : nil
            }
            counts.total -= 1
            return counts.total
        }
        self.gauge.record(total)
    }
}
