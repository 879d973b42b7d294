/// Why a token could not be served.
public enum TokenError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownTenant(String)
    case unknownRegion(tenant: String, region: String)
    /// The tenant has several regions and the caller named none.
    case regionRequired(tenant: String, regions: [String])
    case upstream(SobotError)
    /// The store could not be read (the message never holds a secret).
    case storage(String)
    /// No refresh could be agreed with the other brokers (the cluster's database is unreachable),
    /// so none was made: a fetch nobody coordinates could knock out another broker's token.
    case uncoordinated(String)

    public var description: String {
        switch self {
        case .unknownTenant(let tenant): "unknown tenant \"\(tenant)\""
        case .unknownRegion(let tenant, let region): "tenant \"\(tenant)\" has no credential for region \"\(region)\""
        case .regionRequired(let tenant, let regions):
            "tenant \"\(tenant)\" has several regions (\(regions.joined(separator: ", "))); pass region"
        case .upstream(let error): error.description
        case .storage(let message): "token store error: \(message)"
        case .uncoordinated(let reason): "no token available: \(reason)"
        }
    }

    /// A bounded name for what kind of failure this is, for metrics and alerts: `credential` (Sobot
    /// refuses the appid or key: an operator must act), `rejected` (another refusal), `unavailable`,
    /// `store`, `coordination` or `other`.
    public var failureClass: String {
        switch self {
        case .upstream(.rejected(let code, _)) where SobotReturnCode.credentialProblems.contains(code): "credential"
        case .upstream(.rejected): "rejected"
        case .upstream(.unavailable): "unavailable"
        case .storage: "store"
        case .uncoordinated: "coordination"
        case .unknownTenant, .unknownRegion, .regionRequired: "other"
        }
    }

    /// Every value `failureClass` takes, so each can be reported (as 0 too).
    public static let failureClasses = ["credential", "rejected", "unavailable", "store", "coordination", "other"]
}
