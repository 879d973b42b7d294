import BrokerCore
import CRM
import Marketing

/// The endpoint modules compiled into the broker. Adding a module: one target under Plugins/,
/// one line here.
enum BuiltinModules {
    static let all: [any EndpointModule] = [
        MarketingModule(),
        CRMModule(),
    ]
}
