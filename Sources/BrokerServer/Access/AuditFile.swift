#if canImport(Glibc)
import Glibc
#endif
import BrokerCore

/// `audit.log` on disk, rotated by size (`audit.log` → `.1` → … → `.keptFiles`, the oldest
/// dropped), mode 0600. Every append leaves whole lines: a write that fails or stops short (the disk
/// is full) is cut back off, so the file never ends in half a line.
struct AuditFile: Sendable {
    let path: String
    let maximumBytes: Int
    let keptFiles: Int

    /// Appends `bytes` (whole lines) or, failing, leaves the file as it was and throws.
    func append(_ bytes: [UInt8]) throws(SystemCallError) {
        var info = stat()
        if stat(self.path, &info) == 0, Int(info.st_size) + bytes.count > self.maximumBytes {
            self.rotate()
        }
        let fd = open(self.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemCallError("open \(self.path)") }
        defer { close(fd) }
        // Only this process writes the file, so its size now is where these bytes start.
        guard fstat(fd, &info) == 0 else { throw SystemCallError("fstat \(self.path)") }
        let start = info.st_size
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                let failure = SystemCallError("write \(self.path)")
                if written > 0 { _ = ftruncate(fd, start) }
                throw failure
            }
            written += count
        }
    }

    private func rotate() {
        unlink("\(self.path).\(self.keptFiles)")
        for index in stride(from: self.keptFiles - 1, through: 1, by: -1) {
            rename("\(self.path).\(index)", "\(self.path).\(index + 1)")
        }
        rename(self.path, "\(self.path).1")
    }
}
