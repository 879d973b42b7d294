import BrokerModuleSDK

/// A validated marketing query: whom to ask, and the upstream body. Everything is checked before
/// any network call, so a bad request never reaches Sobot.
struct MarketingQuery: Sendable {
    static let maximumPageSize: Int64 = 100
    /// `all_pages` stops after this many pages and says so with `truncated: true`.
    static let maximumPages = 100

    enum Tenants: Sendable, Equatable {
        case one(String)
        case several([String])
        case all
    }

    var tenants: Tenants
    var region: String?
    var filters: [String: JSONValue]
    var pageNo: Int64
    var pageSize: Int64
    var allPages: Bool

    init(params: JSONValue?, endpoint: MarketingEndpoint) throws(ModuleError) {
        let allowed: Set<String> = Set(["tenant", "tenants", "region", "status", "page_no", "page_size", "all_pages"] + endpoint.idFilters)
        let reader = try ParamReader(params, allowed: allowed)
        switch (try reader.optionalTenantID("tenant"), reader.members["tenants"]) {
        case (.some(let tenant), .none):
            self.tenants = .one(tenant)
        case (.none, .some(.string("*"))):
            self.tenants = .all
        case (.none, .some(.array(let list))):
            let names = list.compactMap(\.stringValue)
            guard !names.isEmpty, names.count == list.count, names.allSatisfy(Identifier.isValidTenantID) else {
                throw .invalidParams("tenants must be \"*\" or a non-empty array of tenant ids")
            }
            self.tenants = .several(Array(Set(names)).sorted())
        case (.none, .some):
            throw .invalidParams("tenants must be \"*\" or a non-empty array of tenant ids")
        case (.some, .some):
            throw .invalidParams("give tenant or tenants, not both")
        case (.none, .none):
            throw .invalidParams("tenant is required (or tenants: [\"a\",\"b\"] or \"*\")")
        }
        self.region = try reader.optionalRegion("region")
        var filters: [String: JSONValue] = [:]
        for name in endpoint.idFilters {
            if let id = try reader.optionalID(name) { filters[name] = .string(id) }
        }
        if let status = try reader.optionalInteger("status", in: -1...1) {
            guard status != 0 else { throw .invalidParams("status must be 1 (normal) or -1 (deleted)") }
            filters["status"] = .integer(status)
        }
        self.filters = filters
        self.allPages = try reader.optionalBool("all_pages") ?? false
        self.pageNo = try reader.optionalInteger("page_no", in: 1...Int64(Int32.max)) ?? 1
        self.pageSize = try reader.optionalInteger("page_size", in: 1...Self.maximumPageSize) ?? (self.allPages ? Self.maximumPageSize : 15)
        if self.allPages, reader.members["page_no"] != nil {
            throw .invalidParams("page_no cannot be combined with all_pages")
        }
    }

    func body(page: Int64) -> JSONValue {
        var body = self.filters
        body["page_no"] = .integer(page)
        body["page_size"] = .integer(self.pageSize)
        return .object(body)
    }
}
