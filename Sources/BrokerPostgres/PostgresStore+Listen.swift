import BrokerCore
import Logging
import PostgresNIO

extension PostgresStore: TokenLeases, ClusterFeed, ClusterMembership {
    /// Listens on `ClusterChannel.name` over a dedicated connection, outside the pool: a pooled
    /// connection is lent per query, while a `LISTEN` lasts as long as the connection does.
    public func listen(listening: @escaping @Sendable () async -> Void, received: @escaping @Sendable (String) async -> Void) async throws {
        var quiet = self.logger
        quiet.logLevel = max(self.logger.logLevel, .warning)
        let connection = try await PostgresConnection.connect(configuration: try self.connectionConfiguration(), id: 0, logger: quiet)
        do {
            try await connection.listen(on: ClusterChannel.name) { notifications in
                await listening()
                for try await notification in notifications {
                    await received(notification.payload)
                }
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
        throw PostgresStoreError.connection(operation: "listen for cluster notifications", reason: "the connection closed")
    }
}
