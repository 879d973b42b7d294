/// The endpoint modules the broker serves, with their methods indexed by name.
///
/// Built once at start-up; a duplicate method name, or a method outside its module's namespace,
/// is a configuration error that stops the broker from starting.
public struct ModuleRegistry: Sendable {
    /// Namespaces the broker's own methods use; modules may not claim them.
    public static let reservedNamespaces: Set<String> = ["broker", "token", "tenant", "module", "rpc"]

    public let modules: [any EndpointModule]
    private let methodsByName: [String: ModuleMethod]

    /// - Parameter enabled: module names to serve; nil serves all.
    public init(_ modules: [any EndpointModule], enabled: Set<String>? = nil) throws(RegistryError) {
        var selected: [any EndpointModule] = []
        var methods: [String: ModuleMethod] = [:]
        var namespaces: Set<String> = []
        for module in modules where enabled?.contains(module.name) ?? true {
            guard !Self.reservedNamespaces.contains(module.name) else { throw .reservedNamespace(module.name) }
            guard namespaces.insert(module.name).inserted else { throw .duplicateModule(module.name) }
            for method in module.methods {
                guard method.name.hasPrefix(module.name + "."), method.name.count > module.name.count + 1 else {
                    throw .outsideNamespace(method: method.name, module: module.name)
                }
                guard methods[method.name] == nil else { throw .duplicateMethod(method.name) }
                methods[method.name] = method
            }
            selected.append(module)
        }
        self.modules = selected
        self.methodsByName = methods
    }

    public func method(named name: String) -> ModuleMethod? {
        self.methodsByName[name]
    }

    /// The module whose namespace `method` falls in, if any.
    public func module(owning method: String) -> (any EndpointModule)? {
        guard let dot = method.firstIndex(of: ".") else { return nil }
        let namespace = method[..<dot]
        return self.modules.first { $0.name == namespace }
    }

    /// The `module.list` result.
    public var listing: JSONValue {
        .object([
            "modules": .array(
                self.modules.map { module in
                    [
                        "name": .string(module.name),
                        "status": .string(module.status.rawValue),
                        "version": .string(module.version),
                        "summary": .string(module.summary),
                        "methods": .array(module.methods.map { .string($0.name) }),
                    ]
                }
            )
        ])
    }
}

public enum RegistryError: Error, Sendable, Equatable, CustomStringConvertible {
    case duplicateMethod(String)
    case duplicateModule(String)
    case reservedNamespace(String)
    case outsideNamespace(method: String, module: String)

    public var description: String {
        switch self {
        case .duplicateMethod(let name): "two endpoint modules register the method \(name)"
        case .duplicateModule(let name): "two endpoint modules are named \(name)"
        case .reservedNamespace(let name): "endpoint module name \(name) is reserved for the broker's own methods"
        case .outsideNamespace(let method, let module): "method \(method) is outside its module's namespace \(module)."
        }
    }
}
