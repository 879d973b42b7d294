/// Maps region names to Sobot base URLs: the built-in `sg` and `us`, overridden or extended by
/// `SOBOT_BROKER_REGION_URLS="sg=http://127.0.0.1:8081,eu=https://…"`.
public struct RegionDirectory: Sendable, Equatable {
    public static let builtIn: [String: String] = [
        "sg": "https://sg.sobot.io",
        "us": "https://us.sobot.com",
    ]

    public private(set) var baseURLs: [String: String]

    public init(baseURLs: [String: String] = Self.builtIn) {
        self.baseURLs = baseURLs
    }

    /// The built-ins with `overrides` (the environment variable's text) applied. Strict, so a typo
    /// never becomes a base URL: entries are `region=URL` separated by commas, each region at most
    /// once, and each URL `http(s)://host[:port][/path]` with nothing else in it (a `;` instead of
    /// a comma is refused rather than read as part of the first URL).
    public init(overrides: String?) throws(RegionConfigError) {
        try self.init(configured: [], overrides: overrides)
    }

    /// The built-ins, then the config file's `[regions]` (already checked), then the environment's
    /// overrides: a region named in several places takes the last one's URL.
    public init(configured: [(region: String, url: String)], overrides: String?) throws(RegionConfigError) {
        self.init()
        for (region, url) in configured { self.baseURLs[region] = url }
        guard let overrides, !overrides.isEmpty else { return }
        var seen = Set<String>()
        for entry in overrides.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw RegionConfigError(entry: String(entry), reason: "expected region=url") }
            let region = String(parts[0]).trimmingCharacters(in: " ")
            guard Identifier.isValidRegion(region) else {
                throw RegionConfigError(entry: String(entry), reason: "region names are 1-32 of [a-z0-9-]")
            }
            guard seen.insert(region).inserted else { throw RegionConfigError(entry: String(entry), reason: "region \(region) is given twice") }
            guard let url = Self.baseURL(String(parts[1]).trimmingCharacters(in: " ")) else {
                throw RegionConfigError(
                    entry: String(entry),
                    reason: "not a base URL: expected http(s)://host[:port][/path], separated from the next entry by a comma"
                )
            }
            self.baseURLs[region] = url
        }
    }

    /// A base URL's pieces, as `parse` checked them.
    struct BaseURLParts: Equatable, Sendable {
        let isTLS: Bool
        /// Without the brackets of an IPv6 address.
        let host: String
        /// Nil: the scheme's default.
        let port: Int?
        /// `host[:port]` as written, brackets included: a `Host` header's value.
        let authority: String
        /// Without trailing slashes; empty for none.
        let path: String
    }

    /// `text` as a base URL without trailing slashes, or nil unless `parse` accepts it.
    static func baseURL(_ text: String) -> String? {
        guard Self.parse(text) != nil else { return nil }
        var url = text
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    /// `text`'s pieces, or nil unless it is exactly `http(s)://host[:port][/path]`: a host of letters,
    /// digits, dots and hyphens (or a bracketed IPv6 address), a port of 1-65535, a path of unreserved
    /// characters, `/` and `%`; no user, query, fragment, space or `;`.
    static func parse(_ text: String) -> BaseURLParts? {
        let rest: Substring
        let isTLS: Bool
        if text.hasPrefix("http://") {
            rest = text.dropFirst(7)
            isTLS = false
        } else if text.hasPrefix("https://") {
            rest = text.dropFirst(8)
            isTLS = true
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" }
        var path = rest.dropFirst(authority.count)
        let host: Substring
        var port: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            guard host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }), host.contains(":") else { return nil }
            if !after.isEmpty {
                guard after.first == ":" else { return nil }
                port = after.dropFirst()
            }
        } else {
            let pieces = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            host = pieces[0]
            if pieces.count == 2 { port = pieces[1] }
            let hostCharacters = host.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2e || $0 == 0x2d }
            guard hostCharacters, (1...253).contains(host.utf8.count), host.first != ".", host.first != "-", host.last != "-" else { return nil }
        }
        var portNumber: Int?
        if let port {
            guard (1...5).contains(port.utf8.count), port.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let number = Int(port), (1...65535).contains(number) else {
                return nil
            }
            portNumber = number
        }
        let pathCharacters = path.utf8.allSatisfy { byte in
            (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x30 && byte <= 0x39) || "-._~/%".utf8.contains(byte)
        }
        guard pathCharacters, path.utf8.count <= 1024 else { return nil }
        while path.hasSuffix("/") { path.removeLast() }
        return BaseURLParts(isTLS: isTLS, host: String(host), port: portNumber, authority: String(authority), path: String(path))
    }

    public static func fromEnvironment(_ environment: [String: String]) throws(RegionConfigError) -> RegionDirectory {
        try RegionDirectory(overrides: environment["SOBOT_BROKER_REGION_URLS"])
    }

    public func baseURL(for region: String) -> String? {
        self.baseURLs[region]
    }

    public var names: [String] { self.baseURLs.keys.sorted() }

    /// Why `region` is refused, with the known names and how to add one.
    public func unknownRegionMessage(_ region: String) -> String {
        "unknown region \"\(region)\" (known: \(self.names.joined(separator: ", ")); add others in config.toml [regions] or SOBOT_BROKER_REGION_URLS)"
    }
}

/// `SOBOT_BROKER_REGION_URLS` could not be understood.
public struct RegionConfigError: Error, Sendable, CustomStringConvertible {
    public let entry: String
    public let reason: String

    public var description: String { "SOBOT_BROKER_REGION_URLS entry \"\(self.entry)\": \(self.reason)" }
}

extension String {
    func trimmingCharacters(in character: Character) -> String {
        var text = Substring(self)
        while text.first == character { text.removeFirst() }
        while text.last == character { text.removeLast() }
        return String(text)
    }
}
