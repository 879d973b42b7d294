import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The test support's `posix_spawn` children: what every end-to-end test relies on when it starts the
/// broker, PostgreSQL or a script.
@Suite struct ChildProcessTests {
    private static func shell(_ script: String, directory: String? = nil, stdin: String? = nil) async throws -> CommandResult {
        try await onThread {
            let process = BrokerProcess(["-c", script], executable: "/bin/sh")
            process.directory = directory
            process.stdin = stdin
            try process.start()
            return process.waitForExit()
        }
    }

    @Test func statusOutputInputAndDirectoryArriveAsGiven() async throws {
        let directory = TemporaryDirectory("cwd")
        let result = try await Self.shell("pwd; cat; echo oops >&2; exit 7", directory: directory.path, stdin: "from stdin\n")
        #expect(result.status == 7)
        let resolved = URL(fileURLWithPath: directory.path).resolvingSymlinksInPath().path
        #expect(result.stdout == "\(resolved)\nfrom stdin\n" || result.stdout == "\(directory.path)\nfrom stdin\n", "\(result.stdout)")
        #expect(result.stderr == "oops\n")
    }

    @Test func withoutInputStdinIsEmptyAndTheEnvironmentHasNoBrokerVariables() async throws {
        let result = try await onThread {
            let process = BrokerProcess(["-c", "cat; env"], environment: ["CHILD_MARK": "yes"], executable: "/bin/sh")
            try process.start()
            return process.waitForExit()
        }
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.contains("CHILD_MARK=yes"))
        #expect(!lines.contains { $0.hasPrefix("SOBOT_BROKER_") })
    }

    @Test func aSignalledChildReports128PlusTheSignal() async throws {
        let process = BrokerProcess(["-c", "exec sleep 60"], executable: "/bin/sh")
        try await process.launch()
        #expect(process.isRunning)
        process.signal(SIGTERM)
        let result = try await process.exit()
        #expect(result.status == 128 + SIGTERM)
        #expect(!process.isRunning)
    }

    @Test func theChildInheritsNoDescriptorOfTheTestProcess() async throws {
        // A descriptor opened without O_CLOEXEC would be inherited by exec; the child must not see it.
        let descriptor = open("/dev/null", O_RDONLY)
        try #require(descriptor > 2)
        defer { close(descriptor) }
        let result = try await Self.shell("[ -e /proc/self/fd/\(descriptor) ] && echo open || echo closed")
        #expect(result.stdout == "closed\n")
    }

    @Test func aMissingExecutableIsAnErrorNotAChild() async throws {
        let process = BrokerProcess([], executable: "/nonexistent/program")
        #expect(throws: DaemonTestError.self) { try process.start() }
        #expect(!process.isRunning)
    }
}
