/// The `get_token` signature: lowercase hex `md5(appid + create_time + app_key)`.
public enum SobotSignature {
    public static func sign(appid: String, createTime: Int64, appKey: String) -> String {
        var input = Array("\(appid)\(createTime)\(appKey)".utf8)
        defer { input.wipe() }
        return MD5.hexDigest(input)
    }
}
