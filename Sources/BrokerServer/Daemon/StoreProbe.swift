import BrokerCore
import Synchronization

/// Whether the store answers a trivial read within a probe's patience. A database that is gone can take
/// its connect timeout to fail; a readiness probe must answer sooner than the prober gives up (and the
/// metrics listener's own request timeout), so the answer is "no" once `seconds` pass. The read itself
/// is left to finish in the background.
enum StoreProbe {
    static func answers(_ store: any BrokerStore, within seconds: Double) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let answer = FirstAnswer(continuation)
            Task { answer.give((try? await store.changeMarker()) != nil) }
            Task {
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                answer.give(false)
            }
        }
    }
}

/// Resumes a continuation with the first of several racing answers.
private final class FirstAnswer: Sendable {
    private let given = Atomic<Bool>(false)
    private let continuation: CheckedContinuation<Bool, Never>

    init(_ continuation: CheckedContinuation<Bool, Never>) {
        self.continuation = continuation
    }

    func give(_ answer: Bool) {
        guard !self.given.exchange(true, ordering: .acquiringAndReleasing) else { return }
        self.continuation.resume(returning: answer)
    }
}
