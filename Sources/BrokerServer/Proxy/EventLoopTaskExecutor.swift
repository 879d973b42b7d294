import NIOCore

/// Runs a task's jobs on one NIO event loop, so a task that serves a connection runs on the thread
/// that reads and writes its socket instead of hopping to the cooperative pool and back for every
/// request. Work on such a task must never block: it holds up every channel of the loop.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
