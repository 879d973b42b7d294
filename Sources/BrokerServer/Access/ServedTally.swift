import BrokerCore

/// A connection's fast-path successes since it last reported to the audit log, as runs of the same
/// (tenant, region) in serving order: counting a request costs a comparison of two short strings,
/// not a hash. The audit log merges runs per caller, tenant and region off the serving threads.
public struct ServedTally: Sendable, ExpressibleByDictionaryLiteral {
    public private(set) var runs: [(key: TokenKey, count: Int)] = []

    public init() {}

    public init(dictionaryLiteral elements: (TokenKey, Int)...) {
        self.runs = elements.map { (key: $0.0, count: $0.1) }
    }

    public var isEmpty: Bool { self.runs.isEmpty }

    public mutating func count(tenant: String, region: String, times: Int = 1) {
        if let last = self.runs.indices.last, self.runs[last].key.tenant == tenant, self.runs[last].key.region == region {
            self.runs[last].count += times
        } else {
            self.runs.append((TokenKey(tenant: tenant, region: region), times))
        }
    }

    public mutating func removeAll() {
        self.runs.removeAll(keepingCapacity: true)
    }
}
