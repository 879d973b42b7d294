#if canImport(Glibc)
import Glibc
#endif

/// Time as the token engine sees it. Tests substitute a manual clock to drive time.
public protocol BrokerClock: Sendable {
    /// Wall-clock Unix time in seconds: used only to stamp issue and expiry times.
    func now() -> Double
    /// Suspends until the wall-clock time `deadline`. The distance is measured once, when the call
    /// starts, and then waited in monotonic time, so a later wall-clock jump neither stretches nor
    /// skips the wait. Throws `CancellationError` when cancelled.
    func sleep(until deadline: Double) async throws
}

/// The real clock: `CLOCK_REALTIME` for stamps, `ContinuousClock` (monotonic) for waiting, so a
/// wall-clock jump never stretches or skips a sleep.
public struct SystemClock: BrokerClock {
    public init() {}

    public func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    public func sleep(until deadline: Double) async throws {
        let seconds = deadline - self.now()
        guard seconds > 0 else { return try Task.checkCancellation() }
        try await Task.sleep(for: .nanoseconds(Int64(min(seconds, 86_400 * 365) * 1e9)))
    }
}
