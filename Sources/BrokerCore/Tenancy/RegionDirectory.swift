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

    /// The built-ins with `overrides` (the environment variable's text) applied.
    public init(overrides: String?) throws(RegionConfigError) {
        self.init()
        guard let overrides, !overrides.isEmpty else { return }
        for entry in overrides.split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw RegionConfigError(entry: String(entry), reason: "expected region=url") }
            let region = String(parts[0]).trimmingCharacters(in: " ")
            var url = String(parts[1]).trimmingCharacters(in: " ")
            guard Identifier.isValidRegion(region) else {
                throw RegionConfigError(entry: String(entry), reason: "region names are 1-32 of [a-z0-9-]")
            }
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw RegionConfigError(entry: String(entry), reason: "the URL must start with http:// or https://")
            }
            while url.hasSuffix("/") { url.removeLast() }
            self.baseURLs[region] = url
        }
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
        "unknown region \"\(region)\" (known: \(self.names.joined(separator: ", ")); add others with SOBOT_BROKER_REGION_URLS)"
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
