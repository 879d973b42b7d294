import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn` and reaped by a thread of its own.
///
/// Tests spawn children from many threads at once. Foundation's `Process.run()` crashed the test
/// process twice in about fifteen full runs doing that (a bad `memcpy` inside the spawn), so the
/// tests start their children here instead: one `posix_spawn` call with everything it needs built
/// beforehand, no shared state with other spawns, and every descriptor above stderr closed in the
/// child so that a child never holds a socket of the test process open.
public final class ChildProcess: @unchecked Sendable {
    /// Where the child's standard input comes from.
    public enum Input: Sendable {
        case null
        case file(String)
    }

    public let pid: pid_t
    private let exited = NSCondition()
    private var exitStatus: Int32?

    /// Starts `executable` with `arguments` (not including argv[0]).
    /// - Parameters:
    ///   - environment: the child's whole environment.
    ///   - directory: its working directory, or the test process's own.
    ///   - output: a file for stdout; `error` one for stderr (either may be the same path).
    public init(
        executable: String, arguments: [String], environment: [String: String],
        directory: String? = nil, input: Input = .null, output: String, error: String
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let inputPath: String
        switch input {
        case .null: inputPath = "/dev/null"
        case .file(let path): inputPath = path
        }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_APPEND, 0)
        posix_spawn_file_actions_addopen(&actions, 2, error, O_WRONLY | O_APPEND, 0)
        GNUSpawnActions.closeFrom(&actions, 3)
        if let directory { GNUSpawnActions.changeDirectory(&actions, directory) }

        // Signal dispositions the test process set (ignored SIGPIPE, signals a ServiceGroup watches)
        // and its threads' masks must not leak into the child.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw DaemonTestError("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        self.pid = pid

        let reaper = Thread { [self, pid] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1, errno == EINTR {}
            // The shell's convention: a child killed by a signal reports 128 + the signal.
            let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            self.exited.lock()
            self.exitStatus = code
            self.exited.broadcast()
            self.exited.unlock()
        }
        reaper.stackSize = 1 << 18
        reaper.start()
    }

    public var isRunning: Bool {
        self.exited.lock()
        defer { self.exited.unlock() }
        return self.exitStatus == nil
    }

    public func signal(_ signal: Int32) {
        guard self.isRunning else { return }
        kill(self.pid, signal)
    }

    /// Blocks until the child exits; returns its status (128 + the signal if a signal killed it).
    public func waitForExit() -> Int32 {
        self.exited.lock()
        defer { self.exited.unlock() }
        while self.exitStatus == nil { self.exited.wait() }
        return self.exitStatus!
    }

    /// The test process's environment without any `SOBOT_BROKER_` variable, merged with `overrides`.
    public static func environment(_ overrides: [String: String]) -> [String: String] {
        var merged = ProcessInfo.processInfo.environment
        for key in merged.keys where key.hasPrefix("SOBOT_BROKER_") { merged[key] = nil }
        merged.merge(overrides) { _, new in new }
        return merged
    }
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` and `…_addchdir_np` (glibc 2.34 and 2.29),
/// which Swift's Glibc module does not import because it is not built with `_GNU_SOURCE`.
private enum GNUSpawnActions {
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private typealias ChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    private static func symbol<Function>(_ name: String, as type: Function.Type) -> Function {
        guard let address = dlsym(nil, name) else { fatalError("this C library lacks \(name) (glibc 2.34 or later has it)") }
        return unsafeBitCast(address, to: type)
    }

    private static let closeFromFunction = symbol("posix_spawn_file_actions_addclosefrom_np", as: CloseFrom.self)
    private static let changeDirectoryFunction = symbol("posix_spawn_file_actions_addchdir_np", as: ChangeDirectory.self)

    static func closeFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ lowest: Int32) {
        _ = closeFromFunction(actions, lowest)
    }

    static func changeDirectory(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: String) {
        _ = changeDirectoryFunction(actions, path)
    }
}
