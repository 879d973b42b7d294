/// Failed and denied calls since the audit log last wrote them, merged per caller and what they
/// asked for, so a flood of the same refused call is one line with a count, not a line per call.
///
/// Distinct entries are bounded too: past `maximumEntries`, a caller's further failures are counted
/// per uid, gid and outcome on an `<other>` entry; past a reserve of those, they are only counted
/// as `dropped`. Whatever a stranger sends, an interval costs at most `maximumEntries +
/// otherReserve` lines.
struct FailureTally {
    /// When the first of the merged calls came, and how many there were.
    struct Count {
        var first: Double
        var count: Int
    }

    /// Written in place of the method on an entry that merges what did not fit.
    static let other = "<other>"
    /// `<other>` entries allowed beyond `maximumEntries` (one per uid, gid and outcome).
    static let otherReserve = 64

    let maximumEntries: Int
    private(set) var entries: [AuditEntry: Count] = [:]
    /// Calls neither an entry nor an `<other>` entry could take.
    private(set) var dropped = 0

    init(maximumEntries: Int) {
        self.maximumEntries = maximumEntries
    }

    mutating func add(_ key: AuditEntry, count: Int, now: Double) {
        guard let target = self.target(for: key) else {
            self.dropped += count
            return
        }
        self.entries[target, default: Count(first: now, count: 0)].count += count
    }

    /// Where a call for `key` is counted: its own entry, its caller's `<other>` entry, or nowhere.
    private func target(for key: AuditEntry) -> AuditEntry? {
        if self.entries[key] != nil || self.entries.count < self.maximumEntries { return key }
        let other = AuditEntry(uid: key.uid, gid: key.gid, pid: nil, method: Self.other, outcome: key.outcome)
        if self.entries[other] != nil || self.entries.count < self.maximumEntries + Self.otherReserve { return other }
        return nil
    }
}
