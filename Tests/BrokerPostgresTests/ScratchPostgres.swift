import Foundation
import Synchronization
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL server for one test: `initdb` into a temporary directory, `pg_ctl start` on a
/// free loopback port, trust authentication for the superuser `postgres`.
///
/// Temporary: this stands in for TestSupport's `PostgresServer` until that lands, with the same calls
/// (`startOrSkip`, `url`, `psql`, `createDatabase`, `stop`), so switching is a rename.
///
///     guard let server = try await onThread({ try ScratchPostgres.startOrSkip() }) else { return }
///     defer { server.stop() }
///
/// PostgreSQL refuses to run as root, so as root its programs run as the OS user `postgres` (through
/// `setpriv`), which owns the directory. Without PostgreSQL the test is skipped, or fails under CI.
final class ScratchPostgres: Sendable {
    static let binDirectory = "/usr/lib/postgresql/15/bin"

    let host = "127.0.0.1"
    let port: Int
    let user = "postgres"
    let directory: TemporaryDirectory
    private let stopped = Mutex(false)

    private init(directory: TemporaryDirectory, port: Int) {
        self.directory = directory
        self.port = port
    }

    /// Starts a server, or returns nil after saying why on stderr when PostgreSQL is not installed.
    /// Under CI (`CI=true`) a missing PostgreSQL throws instead.
    static func startOrSkip() throws -> ScratchPostgres? {
        guard FileManager.default.isExecutableFile(atPath: Self.binDirectory + "/initdb") else {
            let reason = "PostgreSQL not found in \(Self.binDirectory)"
            if ProcessInfo.processInfo.environment["CI"] == "true" { throw ScratchPostgresError("PostgreSQL is required under CI: \(reason)") }
            FileHandle.standardError.write(Data("skipping: \(reason)\n".utf8))
            return nil
        }
        let directory = TemporaryDirectory("pgs")
        if geteuid() == 0, let account = getpwnam("postgres") {
            guard chown(directory.path, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
                throw ScratchPostgresError("chown \(directory.path) to postgres failed: errno \(errno)")
            }
        }
        try run(Self.binDirectory + "/initdb", ["-D", directory.file("data"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"], in: directory.path)
        var attempt = 1
        while true {
            let server = ScratchPostgres(directory: directory, port: try freeLoopbackPort())
            let options = "-p \(server.port) -k \(directory.path) -c listen_addresses=127.0.0.1 -c fsync=off"
            do {
                try run(Self.binDirectory + "/pg_ctl", ["-D", directory.file("data"), "-l", directory.file("log"), "-w", "-o", options, "start"], in: directory.path)
                return server
            } catch where attempt < 5 {
                attempt += 1  // another process took the port between the probe and the server's bind
            }
        }
    }

    /// Stops the server at once and removes its directory; idempotent.
    func stop() {
        let first = self.stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        _ = try? Self.run(Self.binDirectory + "/pg_ctl", ["-D", self.directory.file("data"), "-m", "immediate", "-w", "stop"], in: self.directory.path)
        try? FileManager.default.removeItem(atPath: self.directory.path)
    }

    /// `postgres://user[:password]@127.0.0.1:PORT/database?sslmode=disable`.
    func url(database: String = "postgres", user: String? = nil, password: String? = nil) -> String {
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        func encoded(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: allowed)! }
        let credentials = encoded(user ?? self.user) + (password.map { ":" + encoded($0) } ?? "")
        return "postgres://\(credentials)@\(self.host):\(self.port)/\(encoded(database))?sslmode=disable"
    }

    /// Runs `sql` with psql as the superuser; returns the rows (fields joined by `|`), without the last newline.
    @discardableResult
    func psql(_ sql: String, database: String = "postgres") throws -> String {
        var output = try Self.run(
            Self.binDirectory + "/psql",
            ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url(database: database), "-c", sql],
            in: self.directory.path
        )
        while output.hasSuffix("\n") { output.removeLast() }
        return output
    }

    func createDatabase(_ name: String) throws {
        try self.psql("CREATE DATABASE \"\(name)\"")
    }

    /// Runs a program to completion and returns its stdout; as root, as the OS user `postgres`.
    ///
    /// Spawned directly, with every descriptor above stderr closed, rather than with Foundation's
    /// `Process`: that one learns of a child's exit from a socket the child inherits, which the server
    /// `pg_ctl start` leaves running inherits too, so waiting for `pg_ctl` would never end.
    @discardableResult
    private static func run(_ executable: String, _ arguments: [String], in directory: String) throws -> String {
        var command = [executable] + arguments
        if geteuid() == 0 {
            command = ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"] + command
        }
        let output = TemporaryDirectory("pgs-out")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output.file("stdout"), O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, output.file("stderr"), O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // glibc's non-portable actions, which Swift does not import: found at run time.
        guard let addChdir = Self.glibc("posix_spawn_file_actions_addchdir_np", as: AddChdir.self),
            let addClosefrom = Self.glibc("posix_spawn_file_actions_addclosefrom_np", as: AddClosefrom.self)
        else { throw ScratchPostgresError("glibc 2.34 or later is needed to spawn PostgreSQL's programs") }
        _ = addChdir(&actions, directory)
        _ = addClosefrom(&actions, 3)
        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, command[0], &actions, nil, argv, environ)
        guard spawned == 0 else { throw ScratchPostgresError("cannot run \(command[0]): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw ScratchPostgresError("waitpid failed: errno \(errno)") }
        }
        let stdout = (try? String(contentsOfFile: output.file("stdout"), encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: output.file("stderr"), encoding: .utf8)) ?? ""
        // WIFEXITED and WEXITSTATUS, which Swift does not import.
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw ScratchPostgresError("\((executable as NSString).lastPathComponent) failed (status \(status)): \(stderr)")
        }
        return stdout
    }

    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    private static func glibc<Function>(_ name: String, as type: Function.Type) -> Function? {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(symbol, to: type)
    }

    private static func freeLoopbackPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ScratchPostgresError("socket failed: errno \(errno)") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw ScratchPostgresError("cannot bind a loopback port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct ScratchPostgresError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
