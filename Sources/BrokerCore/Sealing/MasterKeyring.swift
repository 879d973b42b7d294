#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Every master-key version the broker can open secrets with; the newest one seals new secrets.
///
/// Rotation adds a version, re-seals every secret with it, then drops the old versions, so a crash at
/// any point leaves each secret openable by some version still in the file.
public struct MasterKeyring: Sendable {
    /// Ascending by id; never empty.
    public let keys: [MasterKey]

    public init(keys: [MasterKey]) {
        precondition(!keys.isEmpty, "a keyring holds at least one key")
        self.keys = keys.sorted { $0.id < $1.id }
    }

    /// The key that seals new secrets.
    public var active: MasterKey { self.keys[self.keys.count - 1] }

    public func key(id: UInt32) -> MasterKey? {
        self.keys.first { $0.id == id }
    }

    /// This keyring plus one new random version that becomes active.
    public func addingFreshKey() throws(KeyringError) -> MasterKeyring {
        // The id comes from the key file; a sealed value names it in 4 bytes, so there may be no next.
        guard self.active.id < UInt32.max else { throw .noVersionLeft(self.active.id) }
        do throws(OpenSSLError) {
            return MasterKeyring(keys: self.keys + [try MasterKey(randomWithID: self.active.id + 1)])
        } catch {
            throw .random(error)
        }
    }

    /// Only the active version: what remains once every secret is sealed with it.
    public func activeOnly() -> MasterKeyring {
        MasterKeyring(keys: [self.active])
    }
}

/// Why a keyring could not gain a version.
public enum KeyringError: Error, Sendable, CustomStringConvertible {
    /// The active version is the largest id a sealed value can name.
    case noVersionLeft(UInt32)
    case random(OpenSSLError)

    public var description: String {
        switch self {
        case .noVersionLeft(let id):
            "the master key is at version \(id), the largest a sealed secret can name: it cannot be rotated further"
        case .random(let error):
            "cannot create a new master key: \(error)"
        }
    }
}

/// Reads and writes the keyring file (`master.key`): a header line, then `<id> <64 hex digits>` per version.
public enum MasterKeyFile {
    static let header = "# sobot-broker master keyring v1: keep private (mode 0600), back it up with broker.db"

    /// Loads the keyring, refusing a file that group or others can access.
    public static func load(from path: String) throws(HomeError) -> MasterKeyring {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw errno == ENOENT ? .notInitialized(path) : .io("cannot read master key file \(path)", errno)
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else { throw .insecureKeyFile(path: path, mode: mode) }
        let text: String
        do {
            text = try FileIO.readSmallFile(path, limit: 1 << 20)
        } catch {
            throw .io("cannot read master key file \(path)", error.errnoCode)
        }
        var keys: [MasterKey] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop { $0 == " " }
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = trimmed.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 2, let id = UInt32(fields[0]), let key = MasterKey(id: id, hex: fields[1]),
                !keys.contains(where: { $0.id == id })
            else { throw .malformedKeyFile(path: path, line: number + 1) }
            keys.append(key)
        }
        guard !keys.isEmpty else { throw .malformedKeyFile(path: path, line: 1) }
        return MasterKeyring(keys: keys)
    }

    /// Writes the keyring atomically (temporary file, fsync, rename) with mode 0600 from creation on.
    public static func write(_ keyring: MasterKeyring, to path: String) throws(HomeError) {
        var text = Self.header + "\n"
        for key in keyring.keys {
            text += "\(key.id) \(key.hexEncoded)\n"
        }
        var bytes = Array(text.utf8)
        defer { bytes.wipe() }
        do {
            try FileIO.writeAtomically(bytes, to: path, mode: 0o600)
        } catch {
            throw .io("cannot write master key file \(path)", error.errnoCode)
        }
    }
}
