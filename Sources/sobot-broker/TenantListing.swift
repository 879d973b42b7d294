import ArgumentParser
import BrokerCore

/// Renders stored tenants for `tenant list`.
enum TenantListing {
    /// What a stored token says without the daemon: `status` adds stale and failing.
    enum StoredState: String, CaseIterable, ExpressibleByArgument {
        case valid, expired, missing
    }

    /// `tenant list`'s filters; they combine, like `status`'s.
    struct Filter {
        var tenants: Set<String> = []
        var state: StoredState?
        var region: String?

        var isEmpty: Bool { self.tenants.isEmpty && self.state == nil && self.region == nil }

        /// The tenant with only the regions that pass, or nil when none does.
        func apply(to tenant: TenantSummary, now: Int64) -> TenantSummary? {
            guard self.tenants.isEmpty || self.tenants.contains(tenant.id) else { return nil }
            var tenant = tenant
            tenant.regions = tenant.regions.filter { region in
                (self.region == nil || region.region == self.region)
                    && (self.state == nil || TenantListing.state(region.tokenExpiresAt, now: now) == self.state?.rawValue)
            }
            return tenant.regions.isEmpty ? nil : tenant
        }
    }

    static func json(_ summaries: [TenantSummary], now: Int64) -> JSONValue {
        [
            "tenants": .array(
                summaries.map { tenant in
                    [
                        "id": .string(tenant.id),
                        "name": tenant.name.map(JSONValue.string) ?? .null,
                        "regions": .array(
                            tenant.regions.map { region in
                                var entry: [String: JSONValue] = [
                                    "region": .string(region.region),
                                    "appid": .string(region.appid),
                                    "token_state": .string(Self.state(region.tokenExpiresAt, now: now)),
                                ]
                                if let expiresAt = region.tokenExpiresAt { entry["expires_at"] = .integer(expiresAt) }
                                return .object(entry)
                            }
                        ),
                    ]
                }
            )
        ]
    }

    static func state(_ expiresAt: Int64?, now: Int64) -> String {
        guard let expiresAt else { return TokenState.missing.rawValue }
        return expiresAt > now ? TokenState.valid.rawValue : TokenState.expired.rawValue
    }

    /// The state word of the JSON, then the expiry relative and absolute, as `status` shows it.
    static func tokenText(_ expiresAt: Int64?, now: Int64) -> String {
        guard let expiresAt else { return TokenState.missing.rawValue }
        let state = Self.state(expiresAt, now: now)
        return "\(state), " + (expiresAt > now ? "expires " : "") + TimeText.expiry(Double(expiresAt), now: Double(now))
    }
}
