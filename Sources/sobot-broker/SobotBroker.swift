import ArgumentParser
import BrokerCore

@main
struct SobotBroker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sobot-broker",
        abstract: "Holds one live Sobot token per (tenant, region) and serves it to local processes.",
        version: BrokerVersion.current,
        subcommands: [
            InitCommand.self, TenantCommand.self, AccessCommand.self, KeyCommand.self, ServeCommand.self, TokenCommand.self,
            CallCommand.self, StatusCommand.self, RefreshCommand.self, HealthCommand.self, CompletionCommand.self, SimulateCommand.self, DemoCommand.self, BenchCommand.self,
        ]
    )
}
