import NIOCore
import Synchronization

/// The proxy's open connections: admits at most `limit` (a connection past it is closed at once), and
/// on graceful shutdown closes their input and waits for the requests in progress.
final class ProxyConnections: Sendable {
    private let limit: Int
    private let open = Mutex<[ObjectIdentifier: Channel]>([:])

    init(limit: Int) {
        self.limit = limit
    }

    /// Counts `channel` in, unless `limit` are open; it counts out when it closes.
    func admit(_ channel: Channel) -> Bool {
        let admitted = self.open.withLock { open in
            guard open.count < self.limit else { return false }
            open[ObjectIdentifier(channel)] = channel
            return true
        }
        if admitted {
            channel.closeFuture.whenComplete { _ in self.open.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(channel)) } }
        }
        return admitted
    }

    var count: Int { self.open.withLock { $0.count } }

    /// Stops every connection reading; waits until they have answered what they were answering and
    /// closed, at most `limit`, then closes what is left.
    func drain(within limit: TimeAmount) async {
        for channel in self.open.withLock({ Array($0.values) }) { channel.close(mode: .input, promise: nil) }
        let deadline = ContinuousClock.now + .nanoseconds(limit.nanoseconds)
        while self.count > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for channel in self.open.withLock({ Array($0.values) }) { channel.close(promise: nil) }
    }
}
