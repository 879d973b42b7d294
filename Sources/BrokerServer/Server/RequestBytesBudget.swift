import Synchronization

/// The request bytes all connections of a server may hold at once (partial lines, and lines waiting
/// for the general path), so many connections each holding a nearly full line cannot pin the
/// daemon's memory. Each connection counts its own bytes in and out (`ConnectionStateMachine`).
final class RequestBytesBudget: Sendable {
    let limit: Int
    private let held = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    var heldBytes: Int { self.held.load(ordering: .relaxed) }

    /// Counts `delta` bytes more (or fewer); false when an increase takes the total past the limit.
    /// The bytes are counted either way: the caller gives them back once it has let them go.
    func adjust(by delta: Int) -> Bool {
        guard delta != 0 else { return true }
        let total = self.held.add(delta, ordering: .relaxed).newValue
        return delta < 0 || total <= self.limit
    }
}
