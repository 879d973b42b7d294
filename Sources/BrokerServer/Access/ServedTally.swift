import BrokerCore

/// A connection's fast-path successes since it last reported to the audit log, as runs of the same
/// token slot in serving order: counting a request costs one integer comparison, not a hash. The
/// audit log merges runs per caller and slot off the serving threads, and names the slots only when
/// it writes.
public struct ServedTally: Sendable, ExpressibleByDictionaryLiteral {
    public private(set) var runs: [(slot: TokenSlot, count: Int)] = []

    public init() {}

    public init(dictionaryLiteral elements: (TokenSlot, Int)...) {
        self.runs = elements.map { (slot: $0.0, count: $0.1) }
    }

    public var isEmpty: Bool { self.runs.isEmpty }

    public mutating func count(_ slot: TokenSlot, times: Int = 1) {
        if let last = self.runs.indices.last, self.runs[last].slot == slot {
            self.runs[last].count += times
        } else {
            self.runs.append((slot, times))
        }
    }

    public mutating func removeAll() {
        self.runs.removeAll(keepingCapacity: true)
    }
}
