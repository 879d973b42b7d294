import Foundation
import TestSupport
import Testing

/// The Python client's own tests (clients/python), run against the built broker and its simulator,
/// so `swift test` (and with it CI) runs them too.
@Suite(.heavy) struct PythonClientTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func thePythonClientsTestsPass() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            let reason = "python3 is not installed: the Python client's tests cannot run"
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record(Comment(rawValue: reason)) } else { print("skipped: \(reason)") }
            return
        }
        let script = Self.packageRoot.appendingPathComponent("clients/python/run_tests.sh").path
        let binary = BrokerExecutable.path
        let result = try await onThread { () -> (Int32, String) in
            let process = BrokerProcess([script, binary], executable: "/bin/bash")
            process.directory = Self.packageRoot.path
            try process.start()
            let exit = process.waitForExit()
            return (exit.status, exit.stdout + exit.stderr)
        }
        #expect(result.0 == 0, "the Python client's tests failed:\n\(result.1.suffix(4000))")
        #expect(result.1.contains("OK"), "unittest reported no success")
    }
}
