import BrokerCore
import CRM
import Marketing
import SobotRequest

/// The endpoint modules compiled into the broker. Adding a module: one target under Plugins/,
/// one line here.
enum BuiltinModules {
    static let all: [any EndpointModule] = [
        SobotRequestModule(),
        MarketingModule(),
        CRMModule(),
    ]
}
