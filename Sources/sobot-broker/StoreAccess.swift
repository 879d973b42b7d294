import BrokerCore

extension HomeOptions {
    /// Runs `body` with the broker's store: the home's SQLite file. The store is closed afterwards.
    func withStore<Result: Sendable>(_ body: (any BrokerStore) async throws -> Result) async throws -> Result {
        let store = AsyncSQLiteStore(try self.brokerHome.openStore())
        do {
            let result = try await body(store)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }
}
