import NIOCore

/// When each key is refreshed in the background: a due time on the agenda, then a place in its
/// region's queue, which it leaves as the region's pacing (starts per second, fetches in flight)
/// allows. On-demand fetches bypass it.
///
/// The scheduling third of the token engine: it decides *when*. The issuer decides *how* (local
/// single flight, or the cluster's database lease) and the `TokenCache` holds and serves the token.
/// A value the token manager owns, indexed by `TokenSlot`, so 100,000 keys cost a few flat arrays.
struct RefreshScheduler {
    private struct RegionPacer {
        var pending = CircularBuffer<TokenSlot>()
        var inFlight = 0
        var nextStart = 0.0
    }

    private struct Plan {
        var region = ""
        /// When the key's refresh is due (monotonic); nil once it is queued, or with nothing planned.
        var due: Double?
        var queued = false
    }

    private let rate: Double
    private let concurrency: Int
    private var agenda = RefreshQueue()
    private var pacers: [String: RegionPacer] = [:]
    private var plans: [Plan] = []

    init(policy: TokenPolicy) {
        self.rate = policy.backgroundRatePerRegion
        self.concurrency = policy.backgroundConcurrencyPerRegion
    }

    /// Plans `slot`'s next refresh at `due`, replacing whatever was planned.
    mutating func schedule(_ slot: TokenSlot, region: String, at due: Double) {
        let index = Int(slot.index)
        if index >= self.plans.count {
            self.plans.append(contentsOf: repeatElement(Plan(), count: index + 1 - self.plans.count))
        }
        self.plans[index].region = region
        self.plans[index].due = due
        self.agenda.insert(slot, due: due)
    }

    /// Forgets `slot`'s plan: its key is no longer tracked.
    mutating func cancel(_ slot: TokenSlot) {
        guard self.plans.indices.contains(Int(slot.index)) else { return }
        self.plans[Int(slot.index)].due = nil
        self.plans[Int(slot.index)].queued = false
    }

    /// When `slot`'s refresh is due; nil while it waits in its region's queue or has nothing planned.
    func due(of slot: TokenSlot) -> Double? {
        self.plans.indices.contains(Int(slot.index)) ? self.plans[Int(slot.index)].due : nil
    }

    func isQueued(_ slot: TokenSlot) -> Bool {
        self.plans.indices.contains(Int(slot.index)) && self.plans[Int(slot.index)].queued
    }

    /// The keys whose background refresh starts at `now`. Keys that came due join their region's
    /// queue; each region then lets out as many as its rate and concurrency allow, each counted in
    /// flight until `finished(region:)`. `isIdle` says whether a key has no fetch running: a key
    /// being fetched is skipped, and the fetch's outcome plans its next refresh.
    mutating func starts(at now: Double, isIdle: (TokenSlot) -> Bool) -> [TokenSlot] {
        while let entry = self.agenda.popDue(at: now) {
            let index = Int(entry.slot.index)
            guard self.plans[index].due == entry.due else { continue }
            self.plans[index].due = nil
            if isIdle(entry.slot), !self.plans[index].queued {
                self.plans[index].queued = true
                self.pacers[self.plans[index].region, default: RegionPacer()].pending.append(entry.slot)
            }
        }
        var started: [TokenSlot] = []
        for region in Array(self.pacers.keys) {
            guard var pacer = self.pacers[region] else { continue }
            while pacer.inFlight < self.concurrency, pacer.nextStart <= now, let slot = pacer.pending.popFirst() {
                let index = Int(slot.index)
                // Cancelled, or planned again meanwhile (an on-demand fetch came first): not now.
                guard self.plans[index].queued else { continue }
                self.plans[index].queued = false
                guard self.plans[index].due == nil, isIdle(slot) else { continue }
                pacer.inFlight += 1
                pacer.nextStart = max(pacer.nextStart, now) + 1 / self.rate
                started.append(slot)
            }
            self.pacers[region] = pacer
        }
        return started
    }

    /// A background fetch in `region` ended: its place in flight is free.
    mutating func finished(region: String) {
        self.pacers[region]?.inFlight -= 1
    }

    /// When `starts(at:isIdle:)` next has something to do: the earliest due time, or a region's next
    /// permitted start while it has keys queued and room in flight.
    func wakeTime(after now: Double) -> Double {
        var next = self.agenda.nextDue ?? now + 3600
        for pacer in self.pacers.values where !pacer.pending.isEmpty && pacer.inFlight < self.concurrency {
            next = min(next, pacer.nextStart)
        }
        return next
    }

    /// Keys waiting in their region's queue, and the earliest planned refresh.
    func backlog() -> (queued: Int, nextDue: Double?) {
        var queued = 0
        var nextDue: Double?
        for plan in self.plans {
            if plan.queued { queued += 1 }
            if let due = plan.due { nextDue = min(nextDue ?? due, due) }
        }
        return (queued, nextDue)
    }
}
