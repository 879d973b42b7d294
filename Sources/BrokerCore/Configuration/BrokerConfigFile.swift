#if canImport(Glibc)
import Glibc
#endif

/// The settings of `<home>/config.toml` (or `--config FILE`, `SOBOT_BROKER_CONFIG`): every `serve`
/// option under its flag's name without the dashes (`threads = 2`, `http-proxy = ["/run/x.sock"]`), and
/// a `[regions]` table of base URLs. Read strictly: an unknown key or table, a value of the wrong type,
/// or a malformed region URL is an error naming the file, line and key.
public struct BrokerConfigFile: Sendable {
    /// What a key's value must be.
    public enum Kind: Sendable {
        case string, integer, number, boolean
        /// One string, or an array of strings.
        case strings
    }

    /// Every key the file may hold at its top level.
    public static let keys: [String: Kind] = [
        "socket": .string,
        "master-key-file": .string,
        "database-url": .string,
        "log-level": .string,
        "drain-timeout": .number,
        "background-rate": .number,
        "background-concurrency": .integer,
        "socket-group": .string,
        "metrics-listen": .string,
        "metrics-listen-any": .boolean,
        "metrics-max-connections": .integer,
        "metrics-timeout": .number,
        "max-connections": .integer,
        "max-connections-per-uid": .integer,
        "idle-timeout": .number,
        "max-request-memory": .integer,
        "threads": .integer,
        "http-proxy": .strings,
        "proxy-max-connections": .integer,
        "modules": .strings,
    ]

    public let path: String
    private let entries: [String: ConfigEntry]
    /// `[regions]` in file order, each URL already checked.
    public let regionURLs: [(region: String, url: String)]

    /// No file: every setting comes from flags, the environment or defaults.
    public static func empty(path: String) -> BrokerConfigFile {
        BrokerConfigFile(path: path, entries: [:], regionURLs: [])
    }

    /// Reads and checks `path`. A missing file is nil unless `required` (the file was named explicitly);
    /// so is a default path in a home this user cannot enter (a client of another user's daemon).
    public static func load(path: String, required: Bool) throws(ConfigFileError) -> BrokerConfigFile? {
        var status = stat()
        guard stat(path, &status) == 0 else {
            if !required, [ENOENT, ENOTDIR, EACCES].contains(errno) { return nil }
            throw ConfigFileError(path: path, message: errno == ENOENT ? "no such file" : "cannot read (\(String(cString: strerror(errno))))")
        }
        guard status.st_mode & S_IFMT == S_IFREG else { throw ConfigFileError(path: path, message: "not a regular file") }
        // The file chooses where credentials are sent; only its owner (or root) may change it.
        guard status.st_mode & 0o022 == 0 else {
            throw ConfigFileError(path: path, message: "writable by group or others; run chmod go-w on it")
        }
        let bytes: [UInt8]
        do {
            bytes = try FileIO.readBytes(path, limit: ConfigTOML.maximumSize)
        } catch {
            throw ConfigFileError(path: path, message: error is FileTooLargeError ? "larger than 1 MiB" : "cannot read (\(error))")
        }
        return try Self.parse(bytes, path: path)
    }

    public static func parse(_ bytes: [UInt8], path: String) throws(ConfigFileError) -> BrokerConfigFile {
        let parsed: [ConfigEntry]
        do {
            parsed = try ConfigTOML.parse(bytes)
        } catch {
            throw ConfigFileError(path: path, line: error.line, column: error.column, message: error.message)
        }
        var entries: [String: ConfigEntry] = [:]
        var regions: [(region: String, url: String)] = []
        for entry in parsed {
            switch entry.table {
            case nil:
                try Self.check(entry, path: path)
                entries[entry.key] = entry
            case "regions":
                regions.append((entry.key, try Self.regionURL(entry, path: path)))
            case let table?:
                throw ConfigFileError(path: path, line: entry.line, column: 1, message: "unknown table [\(table)] (the file has only [regions])")
            }
        }
        return BrokerConfigFile(path: path, entries: entries, regionURLs: regions)
    }

    private init(path: String, entries: [String: ConfigEntry], regionURLs: [(region: String, url: String)]) {
        self.path = path
        self.entries = entries
        self.regionURLs = regionURLs
    }

    private static func check(_ entry: ConfigEntry, path: String) throws(ConfigFileError) {
        guard let kind = Self.keys[entry.key] else {
            let hint = Self.closestKey(to: entry.key).map { "; did you mean \($0)?" } ?? ""
            throw ConfigFileError(path: path, line: entry.line, column: entry.column, message: "unknown key \"\(entry.key)\"\(hint)")
        }
        let fits: Bool =
            switch (kind, entry.value) {
            case (.string, .string), (.integer, .integer), (.number, .integer), (.number, .float), (.boolean, .boolean), (.strings, .string):
                true
            case (.strings, .array(let elements)):
                elements.allSatisfy { if case .string = $0 { true } else { false } }
            default:
                false
            }
        guard fits else {
            let wanted =
                switch kind {
                case .string: "a string"
                case .integer: "an integer"
                case .number: "a number"
                case .boolean: "true or false"
                case .strings: "a string or an array of strings"
                }
            throw ConfigFileError(path: path, line: entry.line, column: entry.column, message: "\(entry.key) must be \(wanted), not \(entry.value.typeName)")
        }
    }

    private static func regionURL(_ entry: ConfigEntry, path: String) throws(ConfigFileError) -> String {
        guard Identifier.isValidRegion(entry.key) else {
            throw ConfigFileError(path: path, line: entry.line, column: entry.column, message: "region \"\(entry.key)\": names are 1-32 of [a-z0-9-]")
        }
        guard case .string(let text) = entry.value, let url = RegionDirectory.baseURL(text) else {
            throw ConfigFileError(
                path: path,
                line: entry.line,
                column: entry.column,
                message: "regions.\(entry.key) is not a base URL: expected \"http(s)://host[:port][/path]\""
            )
        }
        return url
    }

    /// The known key a typo most likely meant: at most two edits away.
    private static func closestKey(to key: String) -> String? {
        Self.keys.keys
            .map { ($0, EditDistance.between(key, $0)) }
            .filter { $0.1 <= 2 }
            .min { ($0.1, $0.0) < ($1.1, $1.0) }?
            .0
    }

    // MARK: Values

    public func string(_ key: String) -> String? {
        if case .string(let text) = self.entries[key]?.value { return text }
        return nil
    }

    public func integer(_ key: String) -> Int? {
        if case .integer(let number) = self.entries[key]?.value { return number }
        return nil
    }

    public func number(_ key: String) -> Double? {
        switch self.entries[key]?.value {
        case .integer(let number): Double(number)
        case .float(let number): number
        default: nil
        }
    }

    public func boolean(_ key: String) -> Bool? {
        if case .boolean(let value) = self.entries[key]?.value { return value }
        return nil
    }

    public func strings(_ key: String) -> [String]? {
        switch self.entries[key]?.value {
        case .string(let text): [text]
        case .array(let elements): elements.compactMap { if case .string(let text) = $0 { text } else { nil } }
        default: nil
        }
    }

    /// `path:line key`, naming a value of the file in an error.
    public func culprit(_ key: String) -> String {
        "\(self.path):\(self.entries[key]?.line ?? 0): \(key)"
    }
}

/// The config file cannot be used, with where and why. Never quotes a value.
public struct ConfigFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public var line: Int?
    public var column: Int?
    public let message: String

    public init(path: String, line: Int? = nil, column: Int? = nil, message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        switch (self.line, self.column) {
        case (let line?, let column?): "config file \(self.path):\(line):\(column): \(self.message)"
        case (let line?, nil): "config file \(self.path):\(line): \(self.message)"
        default: "config file \(self.path): \(self.message)"
        }
    }
}

/// Levenshtein distance, for "did you mean" hints on short names.
enum EditDistance {
    static func between(_ first: String, _ second: String) -> Int {
        let a = Array(first.utf8)
        let b = Array(second.utf8)
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var row = [i + 1]
            for (j, y) in b.enumerated() {
                row.append(Swift.min(previous[j + 1] + 1, row[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = row
        }
        return previous[b.count]
    }
}
