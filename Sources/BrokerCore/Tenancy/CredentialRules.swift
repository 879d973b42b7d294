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
