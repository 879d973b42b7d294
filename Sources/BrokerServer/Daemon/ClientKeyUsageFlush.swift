import BrokerCore
import Logging
import ServiceLifecycle

/// Writes when client keys were last used: every `flushInterval` of the verifier, and once more at
/// shutdown, after the server has drained. A failed write is retried at the next one; only the first
/// failure of a run of them is logged.
struct ClientKeyUsageFlush: Service {
    let keys: ClientKeyVerifier
    let store: any BrokerStore
    let clock: any BrokerClock
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var failing = false
            while !Task.isCancelled {
                try? await self.clock.sleep(until: self.clock.monotonicNow() + self.keys.flushInterval)
                guard !Task.isCancelled else { break }
                failing = await self.flush(failing: failing)
            }
        }
        _ = await self.flush(failing: false)
    }

    /// One flush; returns whether it failed. Logs a failure unless the last one failed too.
    private func flush(failing: Bool) async -> Bool {
        do {
            try await self.keys.flush(to: self.store)
            return false
        } catch {
            if !failing {
                self.logger.warning("could not record when client keys were last used; retrying", metadata: ["error": "\(error)"])
            }
            return true
        }
    }
}
