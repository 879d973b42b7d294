/// A PostgreSQL connection URL, as libpq writes them:
/// `postgres[ql]://user[:password]@host[:port][/database][?sslmode=…&application_name=…&host=/socket/dir]`.
///
/// The host is a name, an IPv4 address, `[an IPv6 address]`, or (empty in the authority, given as
/// `?host=/dir` or percent-encoded as `%2Fdir`) the directory of a Unix socket, as with libpq. The port
/// defaults to 5432 and the database to the user name. User, password and database are
/// percent-decoded. Nothing this type prints (`redacted()`, its errors) ever holds the password.
public struct DatabaseURL: Sendable, Equatable {
    /// Where the server listens.
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        /// A Unix socket in `directory`, named after the port as libpq names it (`.s.PGSQL.<port>`).
        case unixSocket(directory: String, port: Int)
    }

    /// libpq's `sslmode` values the broker honours. `prefer` is what an absent `sslmode` means.
    public enum SSLMode: String, Sendable, Equatable, CaseIterable {
        /// Never TLS.
        case disable
        /// TLS when the server offers it, certificate not verified (libpq's default).
        case prefer
        /// TLS or no connection; the certificate is not verified (as libpq's `require`).
        case require
        /// TLS or no connection, with a certificate chained to the system's trust roots for this host name.
        case verifyFull = "verify-full"
    }

    public var user: String
    /// Kept private so no description of this value can print it: see `hasPassword`, `password(environment:)`.
    private var urlPassword: String?
    public var endpoint: Endpoint
    public var database: String
    public var sslMode: SSLMode
    public var applicationName: String?

    /// Whether the URL itself carries a password. `--database-url` refuses such a URL (argv is visible
    /// to every user of the host); `SOBOT_BROKER_DATABASE_URL` may carry one.
    public var hasPassword: Bool { self.urlPassword != nil }

    /// The password to log in with: the URL's, else `PGPASSWORD` from `environment` (as libpq); an
    /// empty one counts as none.
    public func password(environment: [String: String]) -> String? {
        if let password = self.urlPassword { return password }
        guard let password = environment["PGPASSWORD"], !password.isEmpty else { return nil }
        return password
    }

    /// The URL with its password, if any, replaced by `***`: safe to print and log.
    public func redacted() -> String {
        var text = "postgres://" + URLComponentCoding.encode(self.user)
        if self.hasPassword { text += ":***" }
        text += "@"
        var parameters: [String] = []
        switch self.endpoint {
        case .tcp(let host, let port):
            text += (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
        case .unixSocket(let directory, let port):
            text += ":\(port)"
            parameters.append("host=" + URLComponentCoding.encode(directory, keeping: "/"))
        }
        text += "/" + URLComponentCoding.encode(self.database)
        if self.sslMode != .prefer { parameters.append("sslmode=\(self.sslMode.rawValue)") }
        if let name = self.applicationName { parameters.append("application_name=" + URLComponentCoding.encode(name)) }
        return parameters.isEmpty ? text : text + "?" + parameters.joined(separator: "&")
    }

    public init(user: String, password: String?, endpoint: Endpoint, database: String, sslMode: SSLMode = .prefer, applicationName: String? = nil) {
        self.user = user
        self.urlPassword = password.flatMap { $0.isEmpty ? nil : $0 }
        self.endpoint = endpoint
        self.database = database
        self.sslMode = sslMode
        self.applicationName = applicationName
    }

    /// Parses `text`; the error names the part at fault and never holds the password.
    public init(parsing text: String) throws(DatabaseURLError) {
        self = try DatabaseURLParser.parse(text)
    }
}

/// Every way of printing a URL shows it redacted, `dump` and string interpolation included.
extension DatabaseURL: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { self.redacted() }
    public var debugDescription: String { self.redacted() }
    public var customMirror: Mirror { Mirror(self, children: ["url": self.redacted()]) }
}

/// Why a database URL was refused: one line, naming the part at fault, never holding the password.
public enum DatabaseURLError: Error, Sendable, Equatable, CustomStringConvertible {
    case scheme
    /// An `@` after the host: a user name or password holds an unencoded `/`, `?`, `#` or `@`.
    case unencodedUserInfo
    case missingUser
    case missingHost
    case invalidHost
    case conflictingHost
    case invalidPort
    case nestedDatabasePath
    case fragment
    /// `component` is "user name", "password", "database name" or a query parameter's name.
    case invalidEncoding(component: String)
    /// The value when it is short and plain enough to echo safely, else nil.
    case invalidSSLMode(String?)
    /// The parameter's name when it is short and plain enough to echo safely, else nil.
    case unknownParameter(String?)
    case parameterWithoutValue(String?)
    case duplicateParameter(String)

    public var description: String {
        let detail: String
        switch self {
        case .scheme:
            detail = "it must start with postgres:// or postgresql://"
        case .unencodedUserInfo:
            detail = "an \"@\" follows the host: percent-encode \"/\", \"?\", \"#\" and \"@\" in the user name and password (%2F %3F %23 %40)"
        case .missingUser:
            detail = "it names no user (postgres://USER@HOST/DATABASE)"
        case .missingHost:
            detail = "it names no host (a host name, an address, or ?host=/socket/directory)"
        case .invalidHost:
            detail = "the host is not a host name, an IPv4 address, [an IPv6 address] or an absolute socket directory"
        case .conflictingHost:
            detail = "the host is given both before the path and as ?host="
        case .invalidPort:
            detail = "the port must be a number from 1 to 65535"
        case .nestedDatabasePath:
            detail = "the path must be one database name (percent-encode \"/\" as %2F)"
        case .fragment:
            detail = "a fragment (#…) is not supported: percent-encode \"#\" as %23"
        case .invalidEncoding(let component):
            detail = "the \(component) is not valid percent-encoded UTF-8 (or holds a NUL byte)"
        case .invalidSSLMode(let value):
            let allowed = DatabaseURL.SSLMode.allCases.map(\.rawValue).joined(separator: ", ")
            detail = "sslmode \(value.map { "\"\($0)\" " } ?? "")is not supported (use one of \(allowed))"
        case .unknownParameter(let name):
            detail = "unknown query parameter \(name.map { "\"\($0)\"" } ?? "(name not shown)") (known: sslmode, application_name, host)"
        case .parameterWithoutValue(let name):
            detail = "query parameter \(name.map { "\"\($0)\"" } ?? "(name not shown)") has no value"
        case .duplicateParameter(let name):
            detail = "query parameter \"\(name)\" is given twice"
        }
        return "invalid database URL: \(detail)"
    }
}

/// RFC 3986 parsing of a libpq-style URL. Errors are built from fixed text and from fragments that
/// pass `isPlain`, so no part of a password can reach them even when a URL is malformed.
enum DatabaseURLParser {
    static func parse(_ text: String) throws(DatabaseURLError) -> DatabaseURL {
        guard let schemeEnd = text.range(of: "://"),
            ["postgres", "postgresql"].contains(text[..<schemeEnd.lowerBound].lowercased())
        else { throw .scheme }
        let rest = text[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var tail = rest[authorityEnd...]
        // A password with an unencoded "/", "?" or "#" ends the authority early and leaves its "@"
        // behind: refuse that before any part of the tail can be echoed.
        guard !tail.contains("@") else { throw .unencodedUserInfo }
        guard !tail.contains("#") else { throw .fragment }

        guard let at = authority.lastIndex(of: "@") else { throw .missingUser }
        let userInfo = authority[..<at]
        let hostPort = authority[authority.index(after: at)...]
        let colon = userInfo.firstIndex(of: ":")
        let user = try decode(userInfo[..<(colon ?? userInfo.endIndex)], component: "user name")
        guard !user.isEmpty else { throw .missingUser }
        var password: String?
        if let colon { password = try decode(userInfo[userInfo.index(after: colon)...], component: "password") }

        var query: Substring = ""
        if let question = tail.firstIndex(of: "?") {
            query = tail[tail.index(after: question)...]
            tail = tail[..<question]
        }
        let path = tail.dropFirst()  // the "/" before the database name, if any
        guard !path.contains("/") else { throw .nestedDatabasePath }
        let database = try decode(path, component: "database name")

        let parameters = try self.parameters(query)
        let sslMode: DatabaseURL.SSLMode
        if let mode = parameters["sslmode"] {
            guard let known = DatabaseURL.SSLMode(rawValue: mode) else { throw .invalidSSLMode(isPlain(mode) ? mode : nil) }
            sslMode = known
        } else {
            sslMode = .prefer
        }
        let (host, port) = try self.hostAndPort(hostPort)
        let endpoint: DatabaseURL.Endpoint
        switch (host, parameters["host"]) {
        case (.some, .some):
            throw .conflictingHost
        case (.none, .none):
            throw .missingHost
        case (.some(let host), .none), (.none, .some(let host)):
            if host.hasPrefix("/") {
                endpoint = .unixSocket(directory: host, port: port)
            } else {
                guard isHostName(host) else { throw .invalidHost }
                endpoint = .tcp(host: host, port: port)
            }
        }
        return DatabaseURL(
            user: user,
            password: password,
            endpoint: endpoint,
            database: database.isEmpty ? user : database,
            sslMode: sslMode,
            applicationName: parameters["application_name"]
        )
    }

    /// The host (percent-decoded, brackets removed; nil when empty) and the port (5432 when absent).
    private static func hostAndPort(_ text: Substring) throws(DatabaseURLError) -> (String?, Int) {
        var hostText = text
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .invalidHost }
            hostText = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidHost }
                portText = after.dropFirst()
            }
            guard hostText.contains(":"), hostText.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { throw .invalidHost }
        } else if let colon = text.firstIndex(of: ":") {
            hostText = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        var port = 5432
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isASCIIDigit), let number = Int(portText),
                (1...65535).contains(number)
            else { throw .invalidPort }
            port = number
        }
        let host = try decode(hostText, component: "host")
        return (host.isEmpty ? nil : host, port)
    }

    private static func parameters(_ query: Substring) throws(DatabaseURLError) -> [String: String] {
        var parameters: [String: String] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: "=")
            let name = String(pair[..<(equals ?? pair.endIndex)])
            guard ["sslmode", "application_name", "host"].contains(name) else { throw .unknownParameter(isPlain(name) ? name : nil) }
            guard let equals else { throw .parameterWithoutValue(name) }
            guard parameters[name] == nil else { throw .duplicateParameter(name) }
            parameters[name] = try decode(pair[pair.index(after: equals)...], component: "\(name) parameter")
        }
        return parameters
    }

    /// Short lower-case words only: what may be echoed in an error.
    private static func isPlain(_ text: String) -> Bool {
        (1...32).contains(text.utf8.count) && text.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// A DNS name or an address: letters, digits, `.`, `-`, `_`, and `:` for IPv6.
    private static func isHostName(_ text: String) -> Bool {
        text.utf8.count <= 253
            && text.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":")
            }
    }

    private static func decode(_ text: Substring, component: String) throws(DatabaseURLError) -> String {
        guard let decoded = URLComponentCoding.decode(text) else { throw .invalidEncoding(component: component) }
        return decoded
    }
}

/// Percent-encoding as URLs use it, without Foundation.
enum URLComponentCoding {
    /// `text` with every `%XX` decoded; nil when an escape is malformed, the bytes are not UTF-8, or
    /// they hold a NUL (PostgreSQL's startup message cannot carry one).
    static func decode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        guard !bytes.contains(0) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    /// `text` with every byte outside RFC 3986's unreserved set (and `keeping`) percent-encoded.
    static func encode(_ text: String, keeping: Character? = nil) -> String {
        var result = ""
        for byte in text.utf8 {
            let character = Character(Unicode.Scalar(byte))
            if byte < 0x80, character.isLetter || character.isNumber || "-._~".contains(character) || character == keeping {
                result.append(character)
            } else {
                result += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { self.isASCII && self.isNumber }
}
