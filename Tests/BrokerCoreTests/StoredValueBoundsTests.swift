import BrokerCore
import Foundation
import TestSupport
import Testing

/// Numbers read back from the database are range-checked before they are converted.
@Suite struct StoredValueBoundsTests {
    /// Truncated to 32 bits, a stored subject id of 2^32 would have granted uid 0 (root).
    @Test(arguments: [Int64(1) << 32, -1, Int64.max])
    func aStoredRuleWhoseIDNoUIDHoldsNamesNobody(_ stored: Int64) throws {
        let directory = TemporaryDirectory("rule")
        let path = directory.file("broker.db")
        let store = try SQLiteStore(path: path, sealer: SecretSealer(keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 1)])))
        try store.grant(AccessRule(subject: .uid(1000), tenant: "*", methods: ["*"]), now: 1)
        try store.grant(AccessRule(subject: .gid(2000), tenant: "*", methods: ["token.get"]), now: 1)
        try SQLiteConnection(path: path).statement("UPDATE access_rules SET subject_id = ? WHERE subject_kind = 'uid'").run([.integer(stored)])
        let rules = try store.accessRules()
        #expect(rules.map(\.subject) == [.gid(2000)])
    }
}
