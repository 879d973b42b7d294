/// A problem in an import file, located by its JSON path (`tenants[2].credentials[0].region`).
/// Never quotes a secret value.
public struct ImportError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(self.path): \(self.message)" }
}

/// Reads and validates the tenants file format of `tenants.example.json`, resolving `app_key_env`
/// from the given environment. Validation is complete before anything is written.
public enum TenantImportFile {
    /// Large enough for 100,000 tenants, small enough that a wrong file is refused before it is read.
    public static let maximumSize = 32 << 20

    public static func load(
        path: String,
        environment: [String: String],
        regions: RegionDirectory
    ) throws(ImportError) -> [TenantDefinition] {
        let bytes: [UInt8]
        do {
            bytes = try FileIO.readBytes(path, limit: Self.maximumSize)
        } catch is FileTooLargeError {
            throw ImportError(path: path, message: "file is larger than \(Self.maximumSize >> 20) MiB; split it")
        } catch {
            throw ImportError(path: path, message: "cannot read file (\(error))")
        }
        return try Self.parse(bytes, environment: environment, regions: regions)
    }

    public static func parse(
        _ bytes: [UInt8],
        environment: [String: String],
        regions: RegionDirectory
    ) throws(ImportError) -> [TenantDefinition] {
        guard bytes.contains(where: { !($0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09) }) else {
            throw ImportError(path: "(file)", message: "file is empty")
        }
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw ImportError(path: "(file)", message: "not valid JSON: \(error)")
        }
        let root = try Self.object(document, at: "(root)", allowed: ["tenants"])
        guard let list = root["tenants"] else { throw ImportError(path: "tenants", message: "is required") }
        guard case .array(let entries) = list else {
            throw ImportError(path: "tenants", message: "must be an array, not \(list.typeName)")
        }
        var firstIndexOfID: [String: Int] = [:]
        var definitions: [TenantDefinition] = []
        definitions.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            let path = "tenants[\(index)]"
            let definition = try Self.tenant(entry, at: path, environment: environment, regions: regions)
            if let first = firstIndexOfID[definition.id] {
                throw ImportError(path: "\(path).id", message: "duplicate tenant id \"\(definition.id)\" (also tenants[\(first)])")
            }
            firstIndexOfID[definition.id] = index
            definitions.append(definition)
        }
        return definitions
    }

    private static func tenant(
        _ value: JSONValue,
        at path: String,
        environment: [String: String],
        regions: RegionDirectory
    ) throws(ImportError) -> TenantDefinition {
        let members = try Self.object(value, at: path, allowed: ["id", "name", "credentials"])
        let id = try Self.requiredString(members, "id", at: path)
        guard Identifier.isValidTenantID(id) else {
            throw ImportError(path: "\(path).id", message: "must be 1-64 characters of [a-z0-9_-]")
        }
        let name = try Self.optionalString(members, "name", at: path)
        if let name, name.utf8.count > 200 {
            throw ImportError(path: "\(path).name", message: "must be at most 200 bytes")
        }
        guard let list = members["credentials"] else {
            throw ImportError(path: "\(path).credentials", message: "is required")
        }
        guard case .array(let entries) = list, !entries.isEmpty else {
            throw ImportError(path: "\(path).credentials", message: "must be a non-empty array")
        }
        var seenRegions: [String: Int] = [:]
        var credentials: [CredentialDefinition] = []
        for (index, entry) in entries.enumerated() {
            let credentialPath = "\(path).credentials[\(index)]"
            let credential = try Self.credential(entry, at: credentialPath, environment: environment, regions: regions)
            if let first = seenRegions[credential.region] {
                throw ImportError(
                    path: "\(credentialPath).region",
                    message: "duplicate region \"\(credential.region)\" for tenant \"\(id)\" (also credentials[\(first)])"
                )
            }
            seenRegions[credential.region] = index
            credentials.append(credential)
        }
        return TenantDefinition(id: id, name: name, credentials: credentials)
    }

    private static func credential(
        _ value: JSONValue,
        at path: String,
        environment: [String: String],
        regions: RegionDirectory
    ) throws(ImportError) -> CredentialDefinition {
        let members = try Self.object(value, at: path, allowed: ["region", "appid", "app_key", "app_key_env"])
        let region = try Self.requiredString(members, "region", at: path)
        guard regions.baseURL(for: region) != nil else {
            throw ImportError(
                path: "\(path).region",
                message: regions.unknownRegionMessage(region)
            )
        }
        let appid = try Self.requiredString(members, "appid", at: path)
        guard CredentialRules.isValidAppID(appid) else {
            throw ImportError(path: "\(path).appid", message: CredentialRules.appIDRule)
        }
        let appKey: String
        switch (members["app_key"], members["app_key_env"]) {
        case (.some, .some):
            throw ImportError(path: path, message: "has both app_key and app_key_env; give one")
        case (.none, .none):
            throw ImportError(path: "\(path).app_key", message: "is required (or app_key_env)")
        case (.some(let value), .none):
            guard case .string(let key) = value else {
                throw ImportError(path: "\(path).app_key", message: "must be a string, not \(value.typeName)")
            }
            appKey = key
        case (.none, .some(let value)):
            guard case .string(let variable) = value, !variable.isEmpty else {
                throw ImportError(path: "\(path).app_key_env", message: "must be the name of an environment variable")
            }
            guard let key = environment[variable] else {
                throw ImportError(path: "\(path).app_key_env", message: "environment variable \(variable) is not set")
            }
            appKey = key
        }
        guard CredentialRules.isValidAppKey(appKey) else {
            throw ImportError(path: "\(path).app_key", message: CredentialRules.appKeyRule)
        }
        return CredentialDefinition(region: region, appid: appid, appKey: appKey)
    }

    private static func object(
        _ value: JSONValue,
        at path: String,
        allowed: Set<String>
    ) throws(ImportError) -> [String: JSONValue] {
        guard case .object(let members) = value else {
            throw ImportError(path: path, message: "must be an object, not \(value.typeName)")
        }
        if let unknown = members.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ImportError(
                path: Self.member(unknown, of: path == "(root)" ? "" : path),
                message: "unknown field (allowed: \(allowed.sorted().joined(separator: ", ")))"
            )
        }
        return members
    }

    /// The JSON path of member `name` under `parent`: `parent.name` for plain names, otherwise
    /// `parent["…"]` with the name JSON-escaped, so a path is never empty and always one line.
    static func member(_ name: String, of parent: String) -> String {
        let plain = name.first.map { $0.isASCII && ($0.isLetter || $0 == "_") } == true
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        if plain { return parent.isEmpty ? name : "\(parent).\(name)" }
        var quoted: [UInt8] = []
        JSONWriter.writeString(name, into: &quoted)
        return "\(parent)[\(String(decoding: quoted, as: UTF8.self))]"
    }

    private static func requiredString(_ members: [String: JSONValue], _ key: String, at path: String) throws(ImportError) -> String {
        guard let value = members[key] else { throw ImportError(path: "\(path).\(key)", message: "is required") }
        guard case .string(let text) = value else {
            throw ImportError(path: "\(path).\(key)", message: "must be a string, not \(value.typeName)")
        }
        return text
    }

    private static func optionalString(_ members: [String: JSONValue], _ key: String, at path: String) throws(ImportError) -> String? {
        guard let value = members[key], value != .null else { return nil }
        guard case .string(let text) = value else {
            throw ImportError(path: "\(path).\(key)", message: "must be a string, not \(value.typeName)")
        }
        return text
    }
}

/// Shape rules for credentials, shared by `tenant add` and `tenant import`.
public enum CredentialRules {
    public static let appIDRule = "must be 1-128 printable characters without spaces"
    public static let appKeyRule = "must be 1-1024 printable characters"

    public static func isValidAppID(_ appid: String) -> Bool {
        (1...128).contains(appid.utf8.count) && appid.utf8.allSatisfy { $0 > 0x20 && $0 != 0x7f }
    }

    public static func isValidAppKey(_ key: String) -> Bool {
        (1...1024).contains(key.utf8.count) && key.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x7f }
    }
}
