import BrokerCore

/// What one audit line says about a call, apart from its time and count: who called (a local uid
/// and gid, where a nil `pid` marks a line merging many of a uid's calls; or, over the HTTP proxy's
/// TCP port, a client key's id), what they asked for (names already passed through `AuditField`), and
/// how it ended. Failures with equal entries are merged into one line.
struct AuditEntry: Hashable, Sendable {
    var uid: UInt32?
    var gid: UInt32?
    var pid: Int32?
    var method: String
    var tenant: String?
    var region: String?
    var outcome: AuditLog.Outcome
    var code: Int?
    /// For a forwarded Sobot call: its HTTP method, path (already checked by `SobotPath`) and status.
    var call: ForwardedCallRecord?
    /// The client key's id, for a caller over TCP (who has no uid).
    var clientKey: String? = nil

    /// The JSON line (with its `\n`) for `count` such calls, the first at `time`.
    func line(count: Int, time: Double) -> [UInt8] {
        var object: [String: JSONValue] = [
            "time": .double((time * 1000).rounded() / 1000),
            "method": .string(self.method),
            "outcome": .string(self.outcome.rawValue),
        ]
        if let uid = self.uid { object["uid"] = .integer(Int64(uid)) }
        if let gid = self.gid { object["gid"] = .integer(Int64(gid)) }
        if let pid = self.pid { object["pid"] = .integer(Int64(pid)) }
        if let clientKey = self.clientKey { object["client_key"] = .string(clientKey) }
        if let tenant = self.tenant { object["tenant"] = .string(tenant) }
        if let region = self.region { object["region"] = .string(region) }
        if let code = self.code { object["code"] = .integer(Int64(code)) }
        if let call = self.call {
            object["http_method"] = .string(call.httpMethod)
            object["path"] = .string(call.path)
            if let status = call.status { object["status"] = .integer(Int64(status)) }
        }
        if count != 1 { object["count"] = .integer(Int64(count)) }
        var line = JSONWriter.bytes(.object(object))
        line.append(0x0a)
        return line
    }
}
