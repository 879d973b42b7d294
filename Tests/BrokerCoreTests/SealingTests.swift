import BrokerCore
import Testing

@Suite struct SealingTests {
    let sealer = SecretSealer(keyring: MasterKeyring(keys: [try! MasterKey(randomWithID: 1)]))
    let binding = SecretBinding(tenant: "acme", region: "sg", field: .appKey)

    @Test func roundTrips() throws {
        let sealed = try sealer.seal("the-app-key", for: binding)
        #expect(try sealer.openString(sealed, for: binding) == "the-app-key")
        #expect(sealed.count == 5 + 12 + "the-app-key".utf8.count + 16)
        #expect(sealed[0] == 1)
        #expect(SecretSealer.keyID(of: sealed) == 1)
    }

    @Test func roundTripsEmptyAndLargeSecrets() throws {
        #expect(try sealer.open(try sealer.seal([UInt8](), for: binding), for: binding) == [])
        let large = [UInt8](repeating: 0x41, count: 100_000)
        #expect(try sealer.open(try sealer.seal(large, for: binding), for: binding) == large)
    }

    @Test func tamperingWithAnyByteFails() throws {
        let sealed = try sealer.seal("the-app-key", for: binding)
        for index in sealed.indices {
            var tampered = sealed
            tampered[index] ^= 0x01
            #expect(throws: SealingError.self) { try sealer.open(tampered, for: binding) }
        }
        #expect(throws: SealingError.malformed) { try sealer.open(Array(sealed.prefix(20)), for: binding) }
    }

    @Test func aSecretMovedToAnotherRowOrFieldFails() throws {
        let sealed = try sealer.seal("the-app-key", for: binding)
        let otherRows = [
            SecretBinding(tenant: "acme", region: "us", field: .appKey),
            SecretBinding(tenant: "acme2", region: "sg", field: .appKey),
            SecretBinding(tenant: "acme", region: "sg", field: .token),
        ]
        for other in otherRows {
            #expect(throws: SealingError.authenticationFailed) { try sealer.open(sealed, for: other) }
        }
    }

    @Test func wrongOrMissingKeyVersionFails() throws {
        let sealed = try sealer.seal("the-app-key", for: binding)
        let otherKeyWithSameID = SecretSealer(keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 1)]))
        #expect(throws: SealingError.authenticationFailed) { try otherKeyWithSameID.open(sealed, for: binding) }
        let onlyVersionTwo = SecretSealer(keyring: MasterKeyring(keys: [try MasterKey(randomWithID: 2)]))
        #expect(throws: SealingError.unknownKey(1)) { try onlyVersionTwo.open(sealed, for: binding) }
        var unknownFormat = sealed
        unknownFormat[0] = 9
        #expect(throws: SealingError.unsupportedFormat(9)) { try sealer.open(unknownFormat, for: binding) }
    }

    @Test func newSecretsUseTheNewestKeyAndOldOnesStillOpen() throws {
        let old = try sealer.seal("k", for: binding)
        let rotated = SecretSealer(keyring: try sealer.keyring.addingFreshKey())
        let new = try rotated.seal("k", for: binding)
        #expect(SecretSealer.keyID(of: new) == 2)
        #expect(try rotated.openString(old, for: binding) == "k")
        #expect(throws: SealingError.unknownKey(2)) { try sealer.open(new, for: binding) }
    }

    @Test func noncesNeverRepeatAcross100kSeals() throws {
        var nonces = Set<[UInt8]>()
        for _ in 0..<100_000 {
            let sealed = try sealer.seal([1, 2, 3], for: binding)
            nonces.insert(Array(sealed[5..<17]))
        }
        #expect(nonces.count == 100_000)
    }
}
