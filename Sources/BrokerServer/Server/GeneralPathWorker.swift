import BrokerCore
import Synchronization

/// One connection's general path: the lines its state machine dispatches, one at a time, answered by
/// the dispatcher in order. It runs as a child task of the server's task group (`run`), and the
/// socket loop cancels it when the connection closes, which also cancels the call in progress, so a
/// client that went away stops costing work.
final class GeneralPathWorker: Sendable {
    private struct State {
        var line: [UInt8]?
        var waiter: CheckedContinuation<[UInt8]?, Never>?
        var call: Task<[UInt8]?, Never>?
        var cancelled = false
    }

    /// A reply this large (`tenant.list` of many thousand tenants) is followed by `FreedMemory.release()`:
    /// what built it (a JSON tree) is freed by then.
    static let largeReply = 1 << 20

    let context: CallContext
    private let state = Mutex(State())
    private let deliver: @Sendable ([UInt8]?) -> Void

    /// - Parameter deliver: called with each reply (nil for a notification), on the worker's task.
    init(context: CallContext, deliver: @escaping @Sendable ([UInt8]?) -> Void) {
        self.context = context
        self.deliver = deliver
    }

    /// Hands over the next line; the state machine sends one only after the previous one's reply.
    func submit(_ line: [UInt8]) {
        let waiter = self.state.withLock { state -> CheckedContinuation<[UInt8]?, Never>? in
            guard !state.cancelled else { return nil }
            if let waiter = state.waiter.take() { return waiter }
            state.line = line
            return nil
        }
        waiter?.resume(returning: line)
    }

    /// Ends the worker: it takes no more lines, and the call in progress is cancelled.
    func cancel() {
        let (waiter, call) = self.state.withLock { state in
            state.cancelled = true
            state.line = nil
            return (state.waiter.take(), state.call.take())
        }
        waiter?.resume(returning: nil)
        call?.cancel()
    }

    /// Answers lines until cancelled.
    func run(dispatcher: RPCDispatcher) async {
        let context = self.context
        while let line = await self.nextLine() {
            let call = Task { await dispatcher.reply(toLine: line, context: context) }
            let started = self.state.withLock { state in
                guard !state.cancelled else { return false }
                state.call = call
                return true
            }
            if !started { call.cancel() }
            let reply = await withTaskCancellationHandler {
                await call.value
            } onCancel: {
                call.cancel()
            }
            let cancelled = self.state.withLock { state in
                state.call = nil
                return state.cancelled
            }
            if cancelled { break }
            if let reply, reply.count >= Self.largeReply { FreedMemory.release() }
            self.deliver(reply)
        }
    }

    private func nextLine() async -> [UInt8]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[UInt8]?, Never>) in
                let ready = self.state.withLock { state -> [UInt8]?? in
                    if state.cancelled { return .some(nil) }
                    if let line = state.line.take() { return .some(line) }
                    state.waiter = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            self.cancel()
        }
    }
}
