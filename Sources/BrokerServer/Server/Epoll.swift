#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import CLinuxEvents

/// A level-triggered epoll instance that owns its descriptor, with an eventfd other threads use to
/// wake its waiter. Each registered descriptor carries a 64-bit tag that comes back with its events.
final class Epoll {
    struct Event {
        var tag: UInt64
        var flags: UInt32

        var isReadable: Bool { self.flags & EPOLLIN.rawValue != 0 }
        var isWritable: Bool { self.flags & EPOLLOUT.rawValue != 0 }
        /// The peer can no longer receive (it closed, or shut down both ways), or the socket failed.
        var isHangUp: Bool { self.flags & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 }
    }

    static let readable = EPOLLIN.rawValue
    static let writable = EPOLLOUT.rawValue

    /// The epoll descriptor (internal for tests that make it fail).
    let descriptor: Int32
    private let wakeDescriptor: Int32
    private let events: UnsafeMutableBufferPointer<epoll_event>

    /// - Parameter wakeTag: the tag reported when another thread calls `wake()`.
    init(capacity: Int = 256, wakeTag: UInt64) throws {
        self.descriptor = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard self.descriptor >= 0 else { throw SystemCallError("epoll_create1") }
        self.wakeDescriptor = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard self.wakeDescriptor >= 0 else {
            let failure = SystemCallError("eventfd")
            close(self.descriptor)
            throw failure
        }
        self.events = .allocate(capacity: capacity)
        do {
            try self.add(self.wakeDescriptor, interest: Self.readable, tag: wakeTag)
        } catch {
            self.events.deallocate()
            close(self.wakeDescriptor)
            close(self.descriptor)
            throw error
        }
    }

    deinit {
        self.events.deallocate()
        close(self.wakeDescriptor)
        close(self.descriptor)
    }

    func add(_ descriptor: Int32, interest: UInt32, tag: UInt64) throws {
        try self.control(EPOLL_CTL_ADD, descriptor, interest: interest, tag: tag)
    }

    func modify(_ descriptor: Int32, interest: UInt32, tag: UInt64) throws {
        try self.control(EPOLL_CTL_MOD, descriptor, interest: interest, tag: tag)
    }

    /// Closing a descriptor removes it too; this is for one that stays open.
    func remove(_ descriptor: Int32) {
        _ = epoll_ctl(self.descriptor, EPOLL_CTL_DEL, descriptor, nil)
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever); returns how many descriptors are ready,
    /// which `event(at:)` then reports until the next wait. A signal's interruption is no event;
    /// any other failure (a closed or invalid epoll descriptor) is thrown, never taken for "nothing ready".
    func wait(timeoutMilliseconds: Int32) throws -> Int {
        let ready = epoll_wait(self.descriptor, self.events.baseAddress, Int32(self.events.count), timeoutMilliseconds)
        if ready >= 0 { return Int(ready) }
        if errno == EINTR { return 0 }
        throw SystemCallError("epoll_wait")
    }

    func event(at index: Int) -> Event {
        Event(tag: self.events[index].data.u64, flags: self.events[index].events)
    }

    /// Makes the waiter return (from any thread); wakes that arrive together coalesce.
    func wake() {
        var one: UInt64 = 1
        _ = write(self.wakeDescriptor, &one, MemoryLayout<UInt64>.size)
    }

    /// Resets the wake descriptor once its tag has been reported.
    func acknowledgeWake() {
        var count: UInt64 = 0
        _ = read(self.wakeDescriptor, &count, MemoryLayout<UInt64>.size)
    }

    private func control(_ operation: Int32, _ descriptor: Int32, interest: UInt32, tag: UInt64) throws {
        var event = epoll_event()
        event.events = interest
        event.data.u64 = tag
        guard epoll_ctl(self.descriptor, operation, descriptor, &event) == 0 else { throw SystemCallError("epoll_ctl") }
    }
}
