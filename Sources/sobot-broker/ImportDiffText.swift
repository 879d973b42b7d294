import BrokerCore

/// How `tenant import --dry-run` shows what it would change, one line per change, each naming its
/// tenant (and region), so a long diff can be grepped: `+` adds, `~` changes, `=` stays as it is.
/// Never shows a key: an app_key is only said to change.
///
/// ```
/// + delta: new tenant "Delta Air"
/// + delta/sg: new credential, appid 9
/// ~ beta: name "Beta" -> "Beta Corp"
/// ~ beta/sg: appid 4021 -> 4022, app_key changed; stored token dropped
/// = beta/jp: not in the file; left alone
/// = 297 tenants unchanged
/// ```
enum ImportDiffText {
    static func render(_ diff: ImportDiff) -> String {
        var lines: [String] = []
        for tenant in diff.tenants {
            if tenant.isNew {
                lines.append("+ \(tenant.id): new tenant\(tenant.name.map { " \(JSONWriter.quoted($0))" } ?? "")")
            } else if let renamed = tenant.renamed {
                lines.append("~ \(tenant.id): name \(renamed.from.map(JSONWriter.quoted) ?? "(none)") -> \(JSONWriter.quoted(renamed.to))")
            }
            for credential in tenant.credentials {
                lines.append(Self.line(credential, of: tenant.id))
            }
            for region in tenant.regionsLeftAlone {
                lines.append("= \(tenant.id)/\(region): not in the file; left alone")
            }
        }
        if diff.unchangedTenants > 0 {
            lines.append("= \(diff.unchangedTenants) tenant\(diff.unchangedTenants == 1 ? "" : "s") unchanged")
        }
        return lines.map { $0 + "\n" }.joined()
    }

    private static func line(_ credential: CredentialDiff, of tenant: String) -> String {
        let key = "\(tenant)/\(credential.region)"
        if credential.isNew { return "+ \(key): new credential, appid \(credential.appid)" }
        var changes: [String] = []
        if let previous = credential.previousAppID { changes.append("appid \(previous) -> \(credential.appid)") }
        if credential.appKeyChanged { changes.append("app_key changed") }
        return "~ \(key): \(changes.joined(separator: ", "))\(credential.dropsStoredToken ? "; stored token dropped" : "")"
    }
}
