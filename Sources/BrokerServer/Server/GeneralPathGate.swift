import Synchronization

/// What the general path may do at once for the connections of one uid (other than the broker's
/// owner and root): at most `maximumLinesInFlight` lines being answered, and no new line while
/// `maximumUnreadBytes` of replies wait unread on that uid's connections. Each connection already
/// gets one line at a time and no new one while its own replies wait; this bounds what a user with
/// many connections can make the broker build and hold for clients that do not read.
///
/// A connection the gate holds back is looked at again on its next event or the loop's next
/// housekeeping pass (at most a second later).
final class GeneralPathGate: Sendable {
    let maximumLinesInFlight: Int
    let maximumUnreadBytes: Int
    private let usage = Mutex<[UInt32: Usage]>([:])

    private struct Usage {
        var linesInFlight = 0
        var unreadBytes = 0
        var isEmpty: Bool { self.linesInFlight == 0 && self.unreadBytes == 0 }
    }

    init(maximumLinesInFlight: Int = 64, maximumUnreadBytes: Int = 64 << 20) {
        self.maximumLinesInFlight = maximumLinesInFlight
        self.maximumUnreadBytes = maximumUnreadBytes
    }

    /// Counts a line for `uid` and returns true, or returns false (counting nothing) when the uid is at a limit.
    func admitLine(uid: UInt32) -> Bool {
        self.usage.withLock { usage in
            var mine = usage[uid] ?? Usage()
            guard mine.linesInFlight < self.maximumLinesInFlight, mine.unreadBytes < self.maximumUnreadBytes else { return false }
            mine.linesInFlight += 1
            usage[uid] = mine
            return true
        }
    }

    /// A line `admitLine` counted was answered, or its connection closed.
    func lineDone(uid: UInt32) {
        self.update(uid) { $0.linesInFlight -= 1 }
    }

    /// `uid`'s connections owe `delta` more (or fewer) bytes of replies.
    func adjustUnread(by delta: Int, uid: UInt32) {
        guard delta != 0 else { return }
        self.update(uid) { $0.unreadBytes += delta }
    }

    /// What `uid` holds now.
    func counts(for uid: UInt32) -> (linesInFlight: Int, unreadBytes: Int) {
        self.usage.withLock { usage in usage[uid].map { ($0.linesInFlight, $0.unreadBytes) } ?? (0, 0) }
    }

    private func update(_ uid: UInt32, _ change: (inout Usage) -> Void) {
        self.usage.withLock { usage in
            var mine = usage[uid] ?? Usage()
            change(&mine)
            usage[uid] = mine.isEmpty ? nil : mine
        }
    }
}
