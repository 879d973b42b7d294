import Foundation

/// The built `sobot-broker` executable, next to the test bundle in the build directory.
public enum BrokerExecutable {
    public static var path: String {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        // The test runner may be inside `….xctest/` or beside it.
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("sobot-broker").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        fatalError("sobot-broker executable not found near \(testBinary.path)")
    }
}

public struct CommandResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs `sobot-broker` with `arguments` to completion.
public func runBroker(_ arguments: [String], environment: [String: String] = [:], stdin: String? = nil) async throws -> CommandResult {
    try await onThread {
        let process = BrokerProcess(arguments, environment: environment)
        process.stdin = stdin
        try process.start()
        return process.waitForExit()
    }
}

/// Runs `sobot-broker` as another user and group (through `setpriv`; the caller must be root).
public func runBrokerAs(uid: UInt32, gid: UInt32, _ arguments: [String]) async throws -> CommandResult {
    try await onThread {
        let process = BrokerProcess(
            ["--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", BrokerExecutable.path] + arguments,
            executable: "/usr/bin/setpriv"
        )
        try process.start()
        return process.waitForExit()
    }
}

/// A `sobot-broker` child process (or another program's). Its output goes to files (a daemon's log
/// must never block on a full pipe) that are read once it exits.
public final class BrokerProcess: @unchecked Sendable {
    public let executable: String
    public let arguments: [String]
    public let environment: [String: String]
    /// The working directory; set before `start()`.
    public var directory: String?
    /// Text for standard input (otherwise it is `/dev/null`); set before `start()`.
    public var stdin: String?
    private var child: ChildProcess?
    private let outputDirectory = TemporaryDirectory("out")

    public init(_ arguments: [String], environment: [String: String] = [:], executable: String = BrokerExecutable.path) {
        self.executable = executable
        self.arguments = arguments
        self.environment = ChildProcess.environment(environment)
        _ = FileManager.default.createFile(atPath: self.outputDirectory.file("stdout"), contents: nil)
        _ = FileManager.default.createFile(atPath: self.outputDirectory.file("stderr"), contents: nil)
    }

    public func start() throws {
        var input = ChildProcess.Input.null
        if let stdin {
            let path = self.outputDirectory.file("stdin")
            try stdin.write(toFile: path, atomically: false, encoding: .utf8)
            input = .file(path)
        }
        self.child = try ChildProcess(
            executable: self.executable, arguments: self.arguments, environment: self.environment,
            directory: self.directory, input: input,
            output: self.outputDirectory.file("stdout"), error: self.outputDirectory.file("stderr")
        )
    }

    /// `start()` on a thread of its own, so a spawn (slow while the machine is loaded) never holds one
    /// of the test process's two cooperative threads.
    public func launch() async throws {
        try await onThread { try self.start() }
    }

    public var pid: Int32 { self.child?.pid ?? 0 }

    public func signal(_ signal: Int32) {
        self.child?.signal(signal)
    }

    public var isRunning: Bool { self.child?.isRunning ?? false }

    /// What the process has written to stderr so far.
    public var stderrSoFar: String {
        (try? String(contentsOfFile: self.outputDirectory.file("stderr"), encoding: .utf8)) ?? ""
    }

    /// What the process has written to stdout so far.
    public var stdoutSoFar: String {
        (try? String(contentsOfFile: self.outputDirectory.file("stdout"), encoding: .utf8)) ?? ""
    }

    public func exit() async throws -> CommandResult {
        try await onThread { self.waitForExit() }
    }

    /// Waits for the process to exit; its status is 128 + the signal if a signal killed it.
    public func waitForExit() -> CommandResult {
        let status = self.child?.waitForExit() ?? -1
        return CommandResult(status: status, stdout: self.stdoutSoFar, stderr: self.stderrSoFar)
    }

    /// Kills the process if it still runs and waits for it (for a fixture's `deinit`).
    public func kill() {
        guard self.isRunning else { return }
        self.signal(SIGKILL)
        _ = self.waitForExit()
    }
}
