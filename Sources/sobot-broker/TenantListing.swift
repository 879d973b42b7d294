import BrokerCore

/// Renders stored tenants for `tenant list`.
enum TenantListing {
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

    static func tokenText(_ expiresAt: Int64?, now: Int64) -> String {
        guard let expiresAt else { return "none" }
        return expiresAt > now ? "stored, expires in \(DurationText.short(Double(expiresAt - now)))" : "expired"
    }
}
