import BrokerModuleSDK

/// One of Sobot's two marketing query endpoints: its path, the filters it takes, and how to
/// normalise the items it returns.
struct MarketingEndpoint: Sendable {
    let path: String
    /// Filter params passed to Sobot as string ids.
    let idFilters: [String]
    /// Item fields that hold ids (normalised to strings).
    let idFields: [String]
    /// Item fields that hold names (may carry `{dc_…}` multilingual placeholders).
    let nameFields: [String]

    static let catalogs = MarketingEndpoint(
        path: "/marketing-open/api/5/marketing_subject_catalog/query_page",
        idFilters: ["catalogid"],
        idFields: ["catalogid"],
        nameFields: ["name"]
    )

    static let subjects = MarketingEndpoint(
        path: "/marketing-open/api/5/marketing_subject/query_page",
        idFilters: ["catalogid", "subjectid"],
        idFields: ["catalogid", "subjectid"],
        nameFields: ["subject"]
    )
}
