import Foundation

/// A private (0700) directory under /tmp, removed with its contents when released.
/// Paths stay short so Unix socket paths inside fit in `sun_path`.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "t") {
        var template = Array("/tmp/sb-\(label)-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(created != nil, "mkdtemp failed")
        self.path = String(cString: template)
    }

    public func file(_ name: String) -> String { self.path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: self.path) }
}

/// Polls `condition` until it holds or `timeout` seconds pass; returns whether it held.
public func eventually(timeout: Double = 60, interval: Double = 0.02, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
    }
    return try await condition()
}
