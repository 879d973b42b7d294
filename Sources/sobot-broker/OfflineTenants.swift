import BrokerCore

/// A tenants file read for offline use (`simulate`, `demo`): an `app_key_env` whose variable is unset
/// gets a stand-in key, and every region named in the file is accepted.
enum OfflineTenants {
    struct Loaded {
        var definitions: [TenantDefinition]
        var regions: [String]
        /// Variables named by `app_key_env` that were unset and got a random stand-in key.
        var standIns: [String]
    }

    /// What `--tenants-file` names, or the built-in example when it is nil.
    static func load(_ path: String?, environment: [String: String]) throws -> Loaded {
        let bytes: [UInt8]
        let name = path ?? "the built-in example tenants"
        if let path {
            do {
                bytes = try FileIO.readBytes(path, limit: TenantImportFile.maximumSize)
            } catch {
                throw CLIError("\(path): cannot read the tenants file (\(error))")
            }
        } else {
            bytes = Array(TenantImportFile.example.utf8)
        }
        var environment = environment
        var regions = RegionDirectory.builtIn
        var standIns: [String] = []
        let credentials = (try? JSONParser.parse(bytes))?["tenants"]?.arrayValue?.flatMap { $0["credentials"]?.arrayValue ?? [] } ?? []
        for credential in credentials {
            if let variable = credential["app_key_env"]?.stringValue, environment[variable] == nil {
                environment[variable] = Hex.encode((try? SecureRandom.bytes(16)) ?? [])
                standIns.append(variable)
            }
            if let region = credential["region"]?.stringValue, Identifier.isValidRegion(region) {
                regions[region] = "http://127.0.0.1"
            }
        }
        do {
            let definitions = try TenantImportFile.parse(bytes, environment: environment, regions: RegionDirectory(baseURLs: regions))
            return Loaded(
                definitions: definitions,
                regions: Set(definitions.flatMap { $0.credentials.map(\.region) }).sorted(),
                standIns: standIns
            )
        } catch {
            throw CLIError("\(name): \(error)")
        }
    }
}
