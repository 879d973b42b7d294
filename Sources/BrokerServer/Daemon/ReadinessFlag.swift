import Synchronization

/// Set once, read from anywhere: whether the daemon has reached a point (its socket listens).
final class ReadinessFlag: Sendable {
    private let value = Atomic<Bool>(false)

    func set() { self.value.store(true, ordering: .releasing) }

    var isSet: Bool { self.value.load(ordering: .acquiring) }
}
