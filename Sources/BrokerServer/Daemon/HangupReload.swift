import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads on `SIGHUP`, as daemons conventionally do (`systemctl reload`, `kill -HUP`): the key file,
/// then credentials, access rules and client keys. In a cluster this is how a broker picks up a master-key version
/// distributed for a rotation.
struct HangupReload: Service {
    let reload: @Sendable () async throws -> Void
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in hangups {
                do {
                    try await self.reload()
                    self.logger.notice("reloaded the key file, credentials, access rules and client keys (SIGHUP)")
                } catch {
                    self.logger.error("reload on SIGHUP failed; keeping the current state", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
