/// One problem in an import file: where it is (line and column, JSON path, tenant) and what is wrong.
/// Never quotes a secret value.
public struct ImportProblem: Sendable, Equatable, CustomStringConvertible {
    /// The JSON path of the offending value (`tenants[2].credentials[0].region`); nil when the
    /// problem is the file as a whole (unreadable, empty, not JSON).
    public let path: String?
    /// The id of the tenant the value belongs to, when the file gives a valid one.
    public let tenant: String?
    /// Where the offending value starts (for a missing member: where its object starts).
    public let position: TextPosition?
    public let message: String

    public init(path: String?, tenant: String? = nil, position: TextPosition? = nil, message: String) {
        self.path = path
        self.tenant = tenant
        self.position = position
        self.message = message
    }

    /// `7:15: tenants[1].credentials[0].region (tenant beta): unknown region …`: one line.
    public var description: String {
        var text = self.position.map { "\($0): " } ?? ""
        if let path = self.path {
            text += path
            if let tenant = self.tenant { text += " (tenant \(tenant))" }
            text += ": "
        }
        return text + self.message
    }
}

/// Why an import file was refused: every problem in it, in the order they appear in the file.
public struct ImportError: Error, Sendable, Equatable, CustomStringConvertible {
    public let problems: [ImportProblem]

    public init(_ problems: [ImportProblem]) {
        self.problems = problems
    }

    /// The first problem, and how many more there are: one line, for logs.
    public var description: String {
        let more = self.problems.count - 1
        return "\(self.problems.first?.description ?? "no problem")\(more > 0 ? " (and \(more) more)" : "")"
    }
}

/// Reads and validates the tenants file format of `tenants.example.json`, resolving `app_key_env`
/// from the given environment. The whole file is checked and every problem reported before anything
/// is written.
public enum TenantImportFile {
    /// Large enough for 100,000 tenants, small enough that a wrong file is refused before it is read.
    public static let maximumSize = 32 << 20

    public static func load(
        path: String,
        environment: [String: String],
        regions: RegionDirectory
    ) throws(ImportError) -> [TenantDefinition] {
        let bytes: [UInt8]
        do {
            bytes = try FileIO.readBytes(path, limit: Self.maximumSize)
        } catch is FileTooLargeError {
            throw ImportError([ImportProblem(path: nil, message: "file is larger than \(Self.maximumSize >> 20) MiB; split it")])
        } catch {
            throw ImportError([ImportProblem(path: nil, message: "cannot read file (\(error))")])
        }
        return try Self.parse(bytes, environment: environment, regions: regions)
    }

    public static func parse(
        _ bytes: [UInt8],
        environment: [String: String],
        regions: RegionDirectory
    ) throws(ImportError) -> [TenantDefinition] {
        guard bytes.contains(where: { !($0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09) }) else {
            throw ImportError([ImportProblem(path: nil, message: "file is empty")])
        }
        let lines = TextLines(bytes)
        let document: (value: JSONValue, locations: JSONSourceNode)
        do {
            document = try JSONParser.parseWithLocations(bytes)
        } catch {
            throw ImportError([ImportProblem(path: nil, position: lines.position(ofOffset: error.offset), message: "not valid JSON: \(error.reason)")])
        }
        var validator = ImportValidator(environment: environment, regions: regions, lines: lines)
        let definitions = validator.tenants(in: LocatedValue(root: document.value, locations: document.locations))
        guard validator.problems.isEmpty else { throw ImportError(validator.problemsInFileOrder) }
        return definitions
    }

    /// The JSON path of member `name` under `parent`: `parent.name` for plain names, otherwise
    /// `parent["…"]` with the name JSON-escaped, so a path is never empty and always one line.
    static func member(_ name: String, of parent: String) -> String {
        let plain = name.first.map { $0.isASCII && ($0.isLetter || $0 == "_") } == true
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        if plain { return parent.isEmpty ? name : "\(parent).\(name)" }
        return "\(parent)[\(JSONWriter.quoted(name))]"
    }
}
