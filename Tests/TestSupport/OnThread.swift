import BrokerCore
import BrokerServer
import Foundation
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Runs blocking work (socket reads, process waits) on a thread of its own, so it never occupies
/// one of the few cooperative threads that the in-process simulator and the test runner need.
public func onThread<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Swift.Result { try body() })
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// Runs `body` and the child tasks it starts on a thread of their own instead of the test process's
/// cooperative pool. For long, CPU-heavy in-process work (sealing and writing 100,000 tenants): on
/// the pool's two threads it would hold one for most of a minute and starve every other suite.
public func withOwnThread<Result: Sendable>(_ body: () async throws -> Result) async throws -> Result {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    do {
        let result = try await withTaskExecutorPreference(EventLoopTaskExecutor(group.next())) { try await body() }
        try? await group.shutdownGracefully()
        return result
    } catch {
        try? await group.shutdownGracefully()
        throw error
    }
}

extension BrokerConnection: @unchecked Sendable {}

extension BrokerConnection {
    /// Writes as much of `bytes` as the socket takes right now; returns how much that was.
    public func sendWithoutBlocking(_ bytes: [UInt8]) -> Int {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(self.descriptorForLoad, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            guard count > 0 else { break }
            sent += count
        }
        return sent
    }

    /// Sends one line and reads the reply, off the cooperative pool.
    public func reply(_ line: String) async throws -> JSONValue {
        try await onThread {
            try self.send(line: line)
            return try JSONParser.parse(try self.readLine())
        }
    }

    public func nextReply() async throws -> JSONValue {
        try await onThread { try JSONParser.parse(try self.readLine()) }
    }
}
