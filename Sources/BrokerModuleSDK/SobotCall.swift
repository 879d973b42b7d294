/// A whole Sobot business call, as `sobot.request` and the HTTP proxy forward it. The broker adds
/// the token; the caller never sees or sends one.
public struct SobotCall: Sendable {
    public enum Method: String, Sendable, CaseIterable {
        case get = "GET"
        case post = "POST"
        case put = "PUT"
        case delete = "DELETE"
    }

    /// Request and reply bodies larger than this are refused with a clear error.
    public static let maximumBodySize = 8 << 20

    public var tenant: String
    public var region: String?
    public var method: Method
    public var path: SobotPath
    public var query: SobotQuery
    public var body: [UInt8]?
    public var contentType: String?
    /// Sobot's `language` header: `en` or `zh`.
    public var language: String?

    public init(
        tenant: String,
        region: String?,
        method: Method,
        path: SobotPath,
        query: SobotQuery = .none,
        body: [UInt8]? = nil,
        contentType: String? = nil,
        language: String? = nil
    ) {
        self.tenant = tenant
        self.region = region
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.contentType = contentType
        self.language = language
    }
}

extension SobotCall {
    /// The path and, when there is one, `?` and the encoded query: what follows the base URL.
    public var target: String {
        self.query.encoded.isEmpty ? self.path.value : self.path.value + "?" + self.query.encoded
    }
}

/// Sobot's answer to a forwarded call, as it came: status, content type and body.
public struct SobotCallReply: Sendable, Equatable {
    public var status: Int
    public var contentType: String?
    public var body: [UInt8]

    public init(status: Int, contentType: String?, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}

/// What the audit log records of a call that forwards to Sobot, besides method, tenant and region.
/// Never a query value or a body: they may hold personal data.
public struct ForwardedCallRecord: Sendable, Hashable {
    public var httpMethod: String
    public var path: String
    /// Sobot's HTTP status; nil when no answer came.
    public var status: Int?

    public init(httpMethod: String, path: String, status: Int?) {
        self.httpMethod = httpMethod
        self.path = path
        self.status = status
    }
}
