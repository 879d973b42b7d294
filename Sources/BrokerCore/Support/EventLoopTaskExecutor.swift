import NIOCore

/// Runs a task's jobs on one NIO event loop, so a task that serves a connection keeps answering
/// while the cooperative pool is busy, and hops to no other thread for each request. Work on such a
/// task must never block: it holds up every channel of the loop.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
