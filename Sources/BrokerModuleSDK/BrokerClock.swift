#if canImport(Glibc)
import Glibc
#endif

/// Time as the token engine sees it. Tests substitute a manual clock to drive time.
///
/// Two clocks, as Go's `time.Time` carries two readings: the engine schedules refreshes and decides
/// freshness on the monotonic clock, so a wall-clock step (NTP, an operator, a VM resume) neither
/// expires a token early nor serves one late; the wall clock only stamps times that leave the process
/// (`expires_at` in replies, the store, the upstream's `create_time`, the audit log).
public protocol BrokerClock: Sendable {
    /// Monotonic seconds since an arbitrary origin: what every timer and expiry check compares against.
    func monotonicNow() -> Double
    /// Wall-clock Unix seconds: stamps only, never a comparison that decides what to serve.
    func unixNow() -> Double
    /// Suspends until the monotonic time `deadline`. Throws `CancellationError` when cancelled.
    func sleep(until deadline: Double) async throws
}

extension BrokerClock {
    /// How far the wall clock reads ahead of the monotonic one now: added to a monotonic moment it gives
    /// that moment's Unix time; subtracted from a Unix stamp it places the stamp on the monotonic clock.
    /// Read it once for a batch of conversions.
    public func unixOffset() -> Double {
        self.unixNow() - self.monotonicNow()
    }
}

/// The real clock: `CLOCK_BOOTTIME` for the engine (monotonic, and it keeps counting through a
/// suspend, as the upstream's token lifetime does), `CLOCK_REALTIME` for stamps.
public struct SystemClock: BrokerClock {
    public init() {}

    public func monotonicNow() -> Double { Self.read(CLOCK_BOOTTIME) }

    public func unixNow() -> Double { Self.read(CLOCK_REALTIME) }

    public func sleep(until deadline: Double) async throws {
        let seconds = deadline - self.monotonicNow()
        guard seconds > 0 else { return try Task.checkCancellation() }
        try await Task.sleep(for: .nanoseconds(Int64(min(seconds, 86_400 * 365) * 1e9)))
    }

    private static func read(_ clock: clockid_t) -> Double {
        var spec = timespec()
        clock_gettime(clock, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
