#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Problems with the broker's home: its directory, key file and database.
public enum HomeError: Error, Sendable, CustomStringConvertible {
    case notInitialized(String)
    case insecureKeyFile(path: String, mode: mode_t)
    case malformedKeyFile(path: String, line: Int)
    case io(String, Int32)

    public var description: String {
        switch self {
        case .notInitialized(let path):
            "\(path) does not exist; run `sobot-broker init` first"
        case .insecureKeyFile(let path, let mode):
            "refusing to use master key file \(path): mode \(String(mode, radix: 8)) lets group or others access it; run `chmod 600 \(path)`"
        case .malformedKeyFile(let path, let line):
            "master key file \(path) is malformed at line \(line)"
        case .io(let what, let code):
            code == 0 ? what : "\(what): \(String(cString: strerror(code)))"
        }
    }
}
