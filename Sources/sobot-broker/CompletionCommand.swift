import ArgumentParser

struct CompletionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "completion",
        abstract: "Print a shell completion script for bash, zsh or fish.",
        discussion: """
            bash: sobot-broker completion bash > /etc/bash_completion.d/sobot-broker
            zsh:  sobot-broker completion zsh > "${fpath[1]}/_sobot-broker"
            fish: sobot-broker completion fish > ~/.config/fish/completions/sobot-broker.fish
            """
    )

    enum Shell: String, CaseIterable, ExpressibleByArgument {
        case bash, zsh, fish
    }

    @Argument(help: "bash, zsh or fish.")
    var shell: Shell

    func run() {
        let shell: CompletionShell =
            switch self.shell {
            case .bash: .bash
            case .zsh: .zsh
            case .fish: .fish
            }
        print(SobotBroker.completionScript(for: shell))
    }
}
