import BrokerModuleSDK

/// Sobot's marketing theme APIs (operations support): catalogs and subjects, with paging,
/// whole-list fetches (`all_pages`) and cross-tenant queries for agencies (`tenants`).
public struct MarketingModule: EndpointModule {
    public let name = "marketing"
    public let status = ModuleStatus.active
    public let version = "1.0.0"
    public let summary = "Marketing theme catalogs and subjects (Sobot operations support API)."

    /// Concurrent upstream calls for one `all_pages` or cross-tenant request.
    static let concurrency = 4

    public init() {}

    public var methods: [ModuleMethod] {
        [
            Self.method(
                "marketing.catalog.query",
                summary: "Query marketing theme catalogs.",
                params: ["tenant", "tenants", "region", "catalogid", "status", "page_no", "page_size", "all_pages"],
                endpoint: .catalogs
            ),
            Self.method(
                "marketing.subject.query",
                summary: "Query marketing themes.",
                params: ["tenant", "tenants", "region", "catalogid", "subjectid", "status", "page_no", "page_size", "all_pages"],
                endpoint: .subjects
            ),
        ]
    }

    /// One upstream reply decoded as each endpoint's page, as a query decodes it: what the fuzzer
    /// feeds hostile bodies to.
    public static func decodePages(_ reply: JSONValue) -> [Result<JSONValue, ModuleError>] {
        [MarketingEndpoint.catalogs, .subjects].map { endpoint in
            Result { () throws(ModuleError) in MarketingReply.json(try MarketingReply.page(from: reply, endpoint: endpoint)) }
        }
    }

    private static func method(_ name: String, summary: String, params: [String], endpoint: MarketingEndpoint) -> ModuleMethod {
        ModuleMethod(name: name, summary: summary, params: params) { params, context throws(ModuleError) in
            let query = try MarketingQuery(params: params, endpoint: endpoint)
            let fetcher = MarketingFetcher(endpoint: endpoint, query: query, upstream: context.upstream)
            switch query.tenants {
            case .one(let tenant):
                return try await fetcher.fetch(tenant: tenant, region: query.region)
            case .several(let tenants):
                return await fetcher.fetch(tenants: tenants)
            case .all:
                return await fetcher.fetch(tenants: try await context.upstream.tenantIDs())
            }
        }
    }
}
