import BrokerCore
import BrokerServer
import Foundation

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

extension BrokerConnection: @unchecked Sendable {}

extension BrokerConnection {
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
