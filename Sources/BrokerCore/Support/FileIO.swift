#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call, with the errno it left.
public struct SystemCallError: Error, Sendable, CustomStringConvertible {
    public let call: String
    public let errno: Int32

    public init(_ call: String, errno: Int32 = Glibc.errno) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(self.call): \(String(cString: strerror(self.errno)))" }
}

/// A file was larger than the caller allows.
public struct FileTooLargeError: Error, Sendable {
    public let limit: Int
}

extension Error {
    /// The errno behind a system-call failure, or 0 when the error is not one.
    var errnoCode: Int32 { (self as? SystemCallError)?.errno ?? 0 }
}

/// Small POSIX file helpers; Foundation's file APIs do not let us set modes at creation or fsync.
public enum FileIO {
    /// Reads a whole file, refusing (before reading it all) one larger than `limit` bytes.
    public static func readSmallFile(_ path: String, limit: Int) throws -> String {
        String(decoding: try Self.readBytes(path, limit: limit), as: UTF8.self)
    }

    public static func readBytes(_ path: String, limit: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError("open \(path)") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemCallError("stat \(path)") }
        guard Int(info.st_size) <= limit else { throw FileTooLargeError(limit: limit) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemCallError("read \(path)")
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            guard bytes.count <= limit else { throw FileTooLargeError(limit: limit) }
        }
        return bytes
    }

    /// Replaces `path` with `bytes` atomically: a new file (created with `mode`) is written,
    /// fsynced and renamed over the old one, and the directory is fsynced.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
        let temporary = "\(path).tmp-\(getpid())"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemCallError("create \(temporary)") }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                let failure = SystemCallError("write \(temporary)")
                close(fd)
                unlink(temporary)
                throw failure
            }
            written += count
        }
        guard fchmod(fd, mode) == 0, fsync(fd) == 0 else {
            let failure = SystemCallError("sync \(temporary)")
            close(fd)
            unlink(temporary)
            throw failure
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let failure = SystemCallError("rename \(temporary)")
            unlink(temporary)
            throw failure
        }
        Self.syncDirectory(of: path)
    }

    static func syncDirectory(of path: String) {
        let directory = Self.directoryName(of: path)
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    public static func directoryName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Creates `path` and its missing parents; the last component gets `mode`, and is tightened to
    /// `mode` if it already existed with a wider one.
    public static func makeDirectory(_ path: String, mode: mode_t) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else { throw SystemCallError("mkdir \(path)", errno: ENOTDIR) }
            if info.st_mode & 0o777 != mode, chmod(path, mode) != 0 { throw SystemCallError("chmod \(path)") }
            return
        }
        let parent = Self.directoryName(of: path)
        if parent != path, !Self.exists(parent) {
            try Self.makeDirectory(parent, mode: 0o755)
        }
        guard mkdir(path, mode) == 0 || errno == EEXIST else { throw SystemCallError("mkdir \(path)") }
        // mkdir's mode is filtered by the umask; make sure the final mode is exactly what was asked.
        guard chmod(path, mode) == 0 else { throw SystemCallError("chmod \(path)") }
    }
}
