import BrokerModuleSDK

/// Reserves the `crm` namespace for Sobot's CRM APIs (customers, tickets, contact records).
///
/// Only `crm.describe` answers; every other `crm.*` call gets -32601 saying the module is a placeholder.
public struct CRMModule: EndpointModule {
    public let name = "crm"
    public let status = ModuleStatus.placeholder
    public let version = "0.0.0"
    public let summary = "Placeholder for Sobot's CRM APIs (customers, tickets, contact records); no calls yet."

    public init() {}

    public var methods: [ModuleMethod] {
        [
            ModuleMethod(name: "crm.describe", summary: "What the CRM module will cover.", params: []) { params, _ throws(ModuleError) in
                _ = try ParamReader(params, allowed: [])
                return [
                    "module": "crm",
                    "status": "placeholder",
                    "planned": ["customer lookup and upsert", "ticket query", "contact records"],
                    "note": "No Sobot CRM endpoint is called yet; other crm.* methods answer -32601.",
                ]
            }
        ]
    }
}
