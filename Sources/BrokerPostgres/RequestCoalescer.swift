/// Gathers concurrent requests into batches, as group commit does: while one batch is at the
/// database, requests that arrive wait and go together as the next. A lone request goes at once,
/// so batching adds no delay when idle and grows with load, and N concurrent refreshes cost a few
/// statements instead of N round trips each.
///
/// Every request gets its own result: one key's failure is not another's.
actor RequestCoalescer<Request: Sendable, Response: Sendable> {
    /// Handles a batch: one result per request, in order.
    typealias Flush = @Sendable ([Request]) async -> [Result<Response, any Error>]

    private struct Waiter {
        let request: Request
        let continuation: CheckedContinuation<Response, any Error>
    }

    private let maximumBatch: Int
    private var waiting: [Waiter] = []
    private var isFlushing = false

    init(maximumBatch: Int) {
        self.maximumBatch = maximumBatch
    }

    /// Sends `request` with the next batch. Every caller of one coalescer passes the same handler; it
    /// is held only while batches are under way, so a coalescer owned by the object its handler uses
    /// does not keep that object alive.
    func submit(_ request: Request, flush: @escaping Flush) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            self.waiting.append(Waiter(request: request, continuation: continuation))
            guard !self.isFlushing else { return }
            self.isFlushing = true
            Task { await self.drain(with: flush) }
        }
    }

    private func drain(with flush: Flush) async {
        while !self.waiting.isEmpty {
            let batch = Array(self.waiting.prefix(self.maximumBatch))
            self.waiting.removeFirst(batch.count)
            let results = await flush(batch.map(\.request))
            for (index, waiter) in batch.enumerated() {
                waiter.continuation.resume(with: index < results.count ? results[index] : .failure(CancellationError()))
            }
        }
        self.isFlushing = false
    }
}
