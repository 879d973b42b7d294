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
        let input = Pipe()
        process.process.standardInput = input
        try process.start()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
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

/// A `sobot-broker` child process. Its output goes to files (a daemon's log must never block on a
/// full pipe) that are read once it exits.
public final class BrokerProcess: @unchecked Sendable {
    public let process = Process()
    private let outputDirectory = TemporaryDirectory("out")

    public init(_ arguments: [String], environment: [String: String] = [:], executable: String = BrokerExecutable.path) {
        self.process.executableURL = URL(fileURLWithPath: executable)
        self.process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for key in merged.keys where key.hasPrefix("SOBOT_BROKER_") { merged[key] = nil }
        merged.merge(environment) { _, new in new }
        self.process.environment = merged
        FileManager.default.createFile(atPath: self.outputDirectory.file("stdout"), contents: nil)
        FileManager.default.createFile(atPath: self.outputDirectory.file("stderr"), contents: nil)
        self.process.standardOutput = FileHandle(forWritingAtPath: self.outputDirectory.file("stdout"))
        self.process.standardError = FileHandle(forWritingAtPath: self.outputDirectory.file("stderr"))
    }

    public func start() throws {
        try self.process.run()
    }

    /// `start()` on a thread of its own, so a spawn (slow while the machine is loaded) never holds one
    /// of the test process's two cooperative threads.
    public func launch() async throws {
        try await onThread { try self.start() }
    }

    public var pid: Int32 { self.process.processIdentifier }

    public func signal(_ signal: Int32) {
        kill(self.process.processIdentifier, signal)
    }

    public var isRunning: Bool { self.process.isRunning }

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

    public func waitForExit() -> CommandResult {
        self.process.waitUntilExit()
        return CommandResult(
            status: self.process.terminationStatus,
            stdout: (try? String(contentsOfFile: self.outputDirectory.file("stdout"), encoding: .utf8)) ?? "",
            stderr: self.stderrSoFar
        )
    }
}
