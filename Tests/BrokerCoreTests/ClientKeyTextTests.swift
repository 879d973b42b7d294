import BrokerCore
import Testing

/// The client key format, the digest and comparison it relies on, and method-pattern lists. A key's
/// text is compared here, never printed: expectations take booleans and labels.
@Suite struct ClientKeyTextTests {
    @Test func aGeneratedKeyHasTheFormatAndParsesBackToItsIDAndHash() throws {
        let key = try ClientKeyText.generate()
        let text = key.revealed
        let length = text.utf8.count
        #expect(length == ClientKeyText.length && ClientKeyText.length == 81)
        let shaped = text.hasPrefix("sbk_" + key.id + "_") && text.utf8.dropFirst(4).allSatisfy { Array("0123456789abcdef_".utf8).contains($0) }
        #expect(shaped, "sbk_<12 hex>_<64 hex>")
        #expect(ClientKeyText.isValidID(key.id))
        let reread = ClientKeyText(parsing: text)
        let parsed = try #require(reread)
        #expect(parsed.id == key.id)
        #expect(parsed.secretHash == key.secretHash && key.secretHash.count == SHA256.byteCount)
        let other = try ClientKeyText.generate()
        #expect(other.id != key.id && other.secretHash != key.secretHash)
    }

    @Test func neitherDescriptionNorMirrorHoldsTheSecret() throws {
        let key = try ClientKeyText.generate()
        let secret = String(key.revealed.suffix(64))
        let described = "\(key)"
        var dumped = ""
        dump(key, to: &dumped)
        let leaked = [described, String(reflecting: key), dumped].contains { $0.contains(secret) }
        #expect(!leaked)
        #expect(described == "sbk_\(key.id)_…")
    }

    @Test func anythingButExactlyTheFormatIsRefused() throws {
        let text = try ClientKeyText.generate().revealed
        let malformed: [(String, String)] = [
            ("empty", ""),
            ("truncated", String(text.dropLast())),
            ("overlong", text + "0"),
            ("far overlong", text + String(repeating: "0", count: 10_000)),
            ("other prefix", "sbx_" + text.dropFirst(4)),
            ("no separator", String(text.prefix(16)) + "0" + text.dropFirst(17)),
            ("uppercase secret", text.prefix(17) + "F" + text.dropFirst(18)),
            ("uppercase id", "sbk_A" + text.dropFirst(5)),
            ("base64 character", String(text.dropLast()) + "-"),
            ("non-ASCII", String(text.dropLast()) + "é"),
            ("surrounding blank", " " + text.dropLast()),
            ("id alone", String(text.prefix(16))),
        ]
        for (label, candidate) in malformed {
            let accepted = ClientKeyText(parsing: candidate) != nil
            #expect(!accepted, "\(label)")
        }
        #expect(!ClientKeyText.isValidID("0123456789a") && !ClientKeyText.isValidID("0123456789ABC") && ClientKeyText.isValidID("0123456789ab"))
    }

    @Test func sha256MatchesTheStandardVectors() {
        #expect(Hex.encode(SHA256.digest(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Hex.encode(SHA256.digest([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(MD5.hexDigest(Array("abc".utf8)) == "900150983cd24fb0d6963f7d28e17f72")
    }

    @Test func constantTimeEqualityComparesEveryByteAndTheLength() {
        let bytes: [UInt8] = Array(0..<32)
        #expect(ConstantTime.equal(bytes, bytes))
        #expect(ConstantTime.equal([], []))
        #expect(!ConstantTime.equal(bytes, Array(bytes.dropLast())))
        for index in bytes.indices {
            var changed = bytes
            changed[index] ^= 0x80
            #expect(!ConstantTime.equal(bytes, changed))
        }
    }

    @Test func methodListsAreTrimmedAndChecked() {
        #expect(MethodPattern.parseList("sobot.request, token.get") == ["sobot.request", "token.get"])
        #expect(MethodPattern.parseList(" marketing.* ,,*") == ["marketing.*", "*"])
        #expect(MethodPattern.parseList("") == nil && MethodPattern.parseList(" , ") == nil)
        #expect(MethodPattern.parseList("token.get;rm") == nil && MethodPattern.parseList("token get") == nil)
        #expect(MethodPattern.allows(["marketing.*"], method: "marketing.catalog.query"))
        #expect(!MethodPattern.allows(["marketing.*"], method: "marketingx.query") && !MethodPattern.allows(["marketing.*"], method: "token.get"))
        #expect(MethodPattern.allows(["*"], method: "sobot.request") && !MethodPattern.allows([], method: "token.get"))
    }
}
