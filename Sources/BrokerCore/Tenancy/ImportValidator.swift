/// Walks a parsed import file and collects every problem in it rather than stopping at the first,
/// so one run shows the operator all there is to fix. What it returns is only meaningful when
/// `problems` is empty.
struct ImportValidator {
    let environment: [String: String]
    let regions: RegionDirectory
    let lines: TextLines
    private(set) var problems: [(offset: Int, problem: ImportProblem)] = []

    init(environment: [String: String], regions: RegionDirectory, lines: TextLines) {
        self.environment = environment
        self.regions = regions
        self.lines = lines
    }

    /// The problems ordered by where they are in the file (then in the order found).
    var problemsInFileOrder: [ImportProblem] {
        self.problems.enumerated().sorted { ($0.element.offset, $0.offset) < ($1.element.offset, $1.offset) }.map(\.element.problem)
    }

    mutating func tenants(in root: LocatedValue) -> [TenantDefinition] {
        guard self.object(root, allowed: ["tenants"], tenant: nil) else { return [] }
        guard let list = root.member("tenants") else {
            self.report(root.pathOfMember("tenants"), at: root.offset, tenant: nil, "is required")
            return []
        }
        guard let entries = list.elements else {
            self.report(list, tenant: nil, "must be an array, not \(list.value.typeName)")
            return []
        }
        var firstIndexOfID: [String: Int] = [:]
        var definitions: [TenantDefinition] = []
        definitions.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            guard let definition = self.tenant(entry) else { continue }
            if let first = firstIndexOfID[definition.id], let id = entry.member("id") {
                self.report(id, tenant: definition.id, "duplicate tenant id \"\(definition.id)\" (also tenants[\(first)])")
            }
            firstIndexOfID[definition.id] = firstIndexOfID[definition.id] ?? index
            definitions.append(definition)
        }
        return definitions
    }

    /// The tenant's definition when its id is valid (its other parts may still have problems).
    private mutating func tenant(_ entry: LocatedValue) -> TenantDefinition? {
        guard self.isObject(entry, tenant: nil) else { return nil }
        var id = self.requiredString("id", of: entry, tenant: nil)
        if let given = id, !Identifier.isValidTenantID(given), let located = entry.member("id") {
            self.report(located, tenant: nil, "must be 1-64 characters of [a-z0-9_-]")
            id = nil
        }
        self.reportUnknownMembers(of: entry, allowed: ["id", "name", "credentials"], tenant: id)
        let name = self.name(of: entry, tenant: id)
        let credentials = self.credentials(of: entry, tenant: id)
        guard let id else { return nil }
        return TenantDefinition(id: id, name: name, credentials: credentials)
    }

    private mutating func name(of entry: LocatedValue, tenant: String?) -> String? {
        guard let located = entry.member("name"), located.value != .null else { return nil }
        guard case .string(let name) = located.value else {
            self.report(located, tenant: tenant, "must be a string, not \(located.value.typeName)")
            return nil
        }
        if name.utf8.count > 200 { self.report(located, tenant: tenant, "must be at most 200 bytes") }
        return name
    }

    private mutating func credentials(of entry: LocatedValue, tenant: String?) -> [CredentialDefinition] {
        guard let list = entry.member("credentials") else {
            self.report(entry.pathOfMember("credentials"), at: entry.offset, tenant: tenant, "is required")
            return []
        }
        guard let entries = list.elements, !entries.isEmpty else {
            self.report(list, tenant: tenant, "must be a non-empty array")
            return []
        }
        var firstIndexOfRegion: [String: Int] = [:]
        var credentials: [CredentialDefinition] = []
        for (index, entry) in entries.enumerated() {
            guard let credential = self.credential(entry, tenant: tenant) else { continue }
            if let first = firstIndexOfRegion[credential.region], let region = entry.member("region") {
                self.report(region, tenant: tenant, "duplicate region \"\(credential.region)\" (also credentials[\(first)])")
            }
            firstIndexOfRegion[credential.region] = firstIndexOfRegion[credential.region] ?? index
            credentials.append(credential)
        }
        return credentials
    }

    /// The credential when its region is known (its other parts may still have problems).
    private mutating func credential(_ entry: LocatedValue, tenant: String?) -> CredentialDefinition? {
        guard self.object(entry, allowed: ["region", "appid", "app_key", "app_key_env"], tenant: tenant) else { return nil }
        var region = self.requiredString("region", of: entry, tenant: tenant)
        if let given = region, self.regions.baseURL(for: given) == nil, let located = entry.member("region") {
            self.report(located, tenant: tenant, self.regions.unknownRegionMessage(given))
            region = nil
        }
        let appid = self.requiredString("appid", of: entry, tenant: tenant)
        if let appid, !CredentialRules.isValidAppID(appid), let located = entry.member("appid") {
            self.report(located, tenant: tenant, CredentialRules.appIDRule)
        }
        let appKey = self.appKey(of: entry, tenant: tenant)
        guard let region else { return nil }
        return CredentialDefinition(region: region, appid: appid ?? "", appKey: appKey ?? "")
    }

    /// The key from `app_key` or from the variable `app_key_env` names. Never quoted in a message.
    private mutating func appKey(of entry: LocatedValue, tenant: String?) -> String? {
        let key: String
        let keyPath = entry.pathOfMember("app_key")
        switch (entry.member("app_key"), entry.member("app_key_env")) {
        case (.some, .some):
            self.report(entry, tenant: tenant, "has both app_key and app_key_env; give one")
            return nil
        case (.none, .none):
            self.report(keyPath, at: entry.offset, tenant: tenant, "is required (or app_key_env)")
            return nil
        case (.some(let located), .none):
            guard case .string(let value) = located.value else {
                self.report(located, tenant: tenant, "must be a string, not \(located.value.typeName)")
                return nil
            }
            key = value
            if !CredentialRules.isValidAppKey(key) { self.report(located, tenant: tenant, CredentialRules.appKeyRule) }
        case (.none, .some(let located)):
            guard case .string(let variable) = located.value, !variable.isEmpty else {
                self.report(located, tenant: tenant, "must be the name of an environment variable")
                return nil
            }
            guard let value = self.environment[variable] else {
                self.report(located, tenant: tenant, "environment variable \(variable) is not set")
                return nil
            }
            key = value
            if !CredentialRules.isValidAppKey(key) {
                self.report(keyPath, at: located.offset, tenant: tenant, "from \(variable) \(CredentialRules.appKeyRule)")
            }
        }
        return key
    }

    /// Whether `value` is an object; reports it if not, and every member not in `allowed`.
    private mutating func object(_ value: LocatedValue, allowed: Set<String>, tenant: String?) -> Bool {
        guard self.isObject(value, tenant: tenant) else { return false }
        self.reportUnknownMembers(of: value, allowed: allowed, tenant: tenant)
        return true
    }

    /// Whether `value` is an object; reports it if not.
    private mutating func isObject(_ value: LocatedValue, tenant: String?) -> Bool {
        guard case .object = value.value else {
            self.report(value, tenant: tenant, "must be an object, not \(value.value.typeName)")
            return false
        }
        return true
    }

    private mutating func reportUnknownMembers(of value: LocatedValue, allowed: Set<String>, tenant: String?) {
        for unknown in (value.value.objectValue ?? [:]).keys.sorted() where !allowed.contains(unknown) {
            self.report(
                value.pathOfMember(unknown),
                at: value.offsetOfMemberName(unknown) ?? value.offset,
                tenant: tenant,
                "unknown field (allowed: \(allowed.sorted().joined(separator: ", ")))"
            )
        }
    }

    /// Member `key`'s text; reports it missing or not a string.
    private mutating func requiredString(_ key: String, of parent: LocatedValue, tenant: String?) -> String? {
        guard let located = parent.member(key) else {
            self.report(parent.pathOfMember(key), at: parent.offset, tenant: tenant, "is required")
            return nil
        }
        guard case .string(let text) = located.value else {
            self.report(located, tenant: tenant, "must be a string, not \(located.value.typeName)")
            return nil
        }
        return text
    }

    private mutating func report(_ value: LocatedValue, tenant: String?, _ message: String) {
        self.report(value.shownPath, at: value.offset, tenant: tenant, message)
    }

    private mutating func report(_ path: String, at offset: Int, tenant: String?, _ message: String) {
        let problem = ImportProblem(path: path, tenant: tenant, position: self.lines.position(ofOffset: offset), message: message)
        self.problems.append((offset, problem))
    }
}
