import BrokerCore
import Synchronization

/// A clock that only moves when a test calls `advance(by:)`: timing tests become exact and fast.
/// Its wall clock reads the same as its monotonic one until a test steps it with `jumpWallClock(by:)`.
public final class ManualClock: BrokerClock {
    private struct Sleeper {
        let id: Int
        let deadline: Double
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Double
        var wallOffset = 0.0
        var sleepers: [Sleeper] = []
        var nextID = 0
    }

    private let state: Mutex<State>

    public init(now: Double = 1_800_000_000) {
        self.state = Mutex(State(now: now))
    }

    public func monotonicNow() -> Double { self.state.withLock { $0.now } }

    public func unixNow() -> Double { self.state.withLock { $0.now + $0.wallOffset } }

    /// Steps the wall clock alone, as NTP or an operator would; sleepers are not woken.
    public func jumpWallClock(by seconds: Double) {
        self.state.withLock { $0.wallOffset += seconds }
    }

    public func sleep(until deadline: Double) async throws {
        let id = self.state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = self.state.withLock { state -> Bool in
                    if Task.isCancelled || deadline <= state.now { return true }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return false
                }
                if resumeNow {
                    if Task.isCancelled { continuation.resume(throwing: CancellationError()) } else { continuation.resume() }
                }
            }
        } onCancel: {
            let cancelled = self.state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            cancelled?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    public func advance(by seconds: Double) {
        let due = self.state.withLock { state -> [Sleeper] in
            state.now += seconds
            let due = state.sleepers.filter { $0.deadline <= state.now }
            state.sleepers.removeAll { $0.deadline <= state.now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }
}
