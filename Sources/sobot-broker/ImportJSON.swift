import BrokerCore

/// What `tenant import --json` prints on stdout: every error of a refused file (none left out), or
/// the result with, for a dry run, the changes `ImportDiffText` shows as text. Never a key.
enum ImportJSON {
    /// `{"file": …, "errors": [{"line", "column", "path", "tenant", "message"}]}`; a part that is not
    /// known (the place of an unreadable file, the tenant of an invalid id) is null.
    static func errors(_ error: ImportError, file: String) -> JSONValue {
        [
            "file": .string(file),
            "errors": .array(
                error.problems.map { problem in
                    [
                        "line": problem.position.map { .integer(Int64($0.line)) } ?? .null,
                        "column": problem.position.map { .integer(Int64($0.column)) } ?? .null,
                        "path": problem.path.map(JSONValue.string) ?? .null,
                        "tenant": problem.tenant.map(JSONValue.string) ?? .null,
                        "message": .string(problem.message),
                    ]
                }
            ),
        ]
    }

    /// The counts of the summary line; with `diff` (a dry run) also `changes` and `unchanged_tenants`;
    /// `daemon` is what happened to a running daemon (null when none runs or for a dry run).
    static func result(tenants: Int, report: UpsertReport, diff: ImportDiff?, daemon: String?) -> JSONValue {
        var result: [String: JSONValue] = [
            "dry_run": .bool(diff != nil),
            "tenants": .integer(Int64(tenants)),
            "new": .integer(Int64(report.tenantsAdded)),
            "updated": .integer(Int64(report.tenantsUpdated)),
            "credentials": .integer(Int64(report.credentialsWritten)),
            "daemon": daemon.map(JSONValue.string) ?? .null,
        ]
        if let diff {
            result["changes"] = .array(diff.tenants.map(Self.tenant))
            result["unchanged_tenants"] = .integer(Int64(diff.unchangedTenants))
        }
        return .object(result)
    }

    private static func tenant(_ tenant: TenantDiff) -> JSONValue {
        [
            "id": .string(tenant.id),
            "new": .bool(tenant.isNew),
            "name": tenant.name.map(JSONValue.string) ?? .null,
            "rename": tenant.renamed.map { ["from": $0.from.map(JSONValue.string) ?? .null, "to": .string($0.to)] } ?? .null,
            "credentials": .array(
                tenant.credentials.map { credential in
                    [
                        "region": .string(credential.region),
                        "appid": .string(credential.appid),
                        "new": .bool(credential.isNew),
                        "previous_appid": credential.previousAppID.map(JSONValue.string) ?? .null,
                        "app_key_changed": .bool(credential.appKeyChanged),
                        "stored_token_dropped": .bool(credential.dropsStoredToken),
                    ]
                }
            ),
            "regions_left_alone": .array(tenant.regionsLeftAlone.map(JSONValue.string)),
        ]
    }
}
