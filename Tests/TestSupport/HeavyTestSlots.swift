import Foundation
import Synchronization
import Testing

/// Marks a suite whose tests start daemons, clusters or PostgreSQL servers: at most a few such tests
/// run at once (`HeavyTestSlots`).
///
/// Swift Testing starts every test of the run together. On a two-core machine that put some 90 child
/// processes (daemons, database servers, CLI runs) on the CPUs in the first minute, and tests whose
/// bounds are the contract's (a change reaches every broker within 2 s) or a test's own (a refresh
/// within its window) failed for want of CPU, not for a fault. Light in-process tests are not bound.
public struct HeavyTest: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    /// Each test case holds a slot while it runs; the suite itself holds none.
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> HeavyTest? {
        testCase == nil ? nil : self
    }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        await HeavyTestSlots.shared.acquire()
        defer { HeavyTestSlots.shared.release() }
        try await function()
    }
}

extension Trait where Self == HeavyTest {
    /// See `HeavyTest`.
    public static var heavy: HeavyTest { HeavyTest() }
}

/// A counting semaphore for `HeavyTest`: `SOBOT_TEST_HEAVY_SLOTS` slots, by default three per core.
public final class HeavyTestSlots: Sendable {
    public static let shared = HeavyTestSlots(count: HeavyTestSlots.configuredCount)

    private static var configuredCount: Int {
        if let text = ProcessInfo.processInfo.environment["SOBOT_TEST_HEAVY_SLOTS"], let count = Int(text), (1...1000).contains(count) {
            return count
        }
        return 3 * max(ProcessInfo.processInfo.activeProcessorCount, 1)
    }

    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    public init(count: Int) {
        self.state = Mutex(State(free: count))
    }

    public func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = self.state.withLock { state in
                guard state.free > 0 else {
                    state.waiting.append(continuation)
                    return false
                }
                state.free -= 1
                return true
            }
            if granted { continuation.resume() }
        }
    }

    /// Hands the slot to the longest waiting test, or frees it.
    public func release() {
        let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.free += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
