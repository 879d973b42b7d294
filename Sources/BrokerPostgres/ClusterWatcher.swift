import Synchronization
import BrokerCore
import Logging
import ServiceLifecycle

/// Keeps a broker in step with its cluster: a dedicated `LISTEN` connection (reconnected with
/// backoff, and caught up after every connection), plus a cheap poll as the fallback for lost
/// notifications, both through one `ChangeFollower`.
public struct ClusterWatcher: Service {
    let feed: any ClusterFeed
    let follower: ChangeFollower
    let outage: OutageLog
    let pollInterval: Double
    let logger: Logger

    public init(feed: any ClusterFeed, follower: ChangeFollower, outage: OutageLog, pollInterval: Double = 1, logger: Logger) {
        self.feed = feed
        self.follower = follower
        self.outage = outage
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.listen() }
                group.addTask { await self.poll() }
            }
        }
    }

    private func listen() async {
        var backoff = 0.25
        let follower = self.follower
        while !Task.isCancelled {
            do {
                try await self.feed.listen(
                    listening: { await follower.catchUp() },
                    received: { payload in await follower.received(payload) }
                )
                backoff = 0.25
            } catch {
                if Task.isCancelled { return }
                self.outage.failed(error)
            }
            try? await Task.sleep(for: .milliseconds(Int64(backoff * 1000 * Double.random(in: 0.5...1))))
            backoff = min(backoff * 2, 5)
        }
    }

    private func poll() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int64(self.pollInterval * 1000)))
            if Task.isCancelled { return }
            await self.follower.catchUp()
        }
    }
}

/// Writes this broker's heartbeat row every few seconds, keeps the count of live members for
/// `broker.health`, and removes the row on a clean shutdown.
public final class ClusterHeartbeat: Service, Sendable {
    public let memberID: String
    let membership: any ClusterMembership
    let keyIDs: @Sendable () -> [UInt32]
    let interval: Double
    let outage: OutageLog
    private let liveMembers = Mutex<Int>(1)

    public init(memberID: String, membership: any ClusterMembership, keyIDs: @escaping @Sendable () -> [UInt32], interval: Double = 5, outage: OutageLog) {
        self.memberID = memberID
        self.membership = membership
        self.keyIDs = keyIDs
        self.interval = interval
        self.outage = outage
    }

    /// Brokers seen alive in the last 30 s, as of the last heartbeat (this one included).
    public var members: Int { self.liveMembers.withLock { $0 } }

    public func run() async throws {
        let host = ProcessIdentity.hostName
        let pid = ProcessIdentity.pid
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.membership.heartbeat(id: self.memberID, host: host, pid: pid, version: BrokerVersion.current, keyIDs: self.keyIDs())
                    let live = try await self.membership.members(seenWithin: 30).count
                    self.liveMembers.withLock { $0 = max(live, 1) }
                    self.outage.succeeded()
                } catch {
                    self.outage.failed(error)
                }
                try? await Task.sleep(for: .milliseconds(Int64(self.interval * 1000)))
            }
        }
        try? await self.membership.leaveCluster(id: self.memberID)
    }
}
