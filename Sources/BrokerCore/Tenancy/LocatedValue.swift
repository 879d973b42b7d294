/// A value of an import file with its JSON path and where it starts in the file, so that the
/// validator can name and point at any part it finds wrong.
struct LocatedValue {
    let value: JSONValue
    let locations: JSONSourceNode
    /// The JSON path; empty for the document itself.
    let path: String

    init(root value: JSONValue, locations: JSONSourceNode) {
        self.init(value, locations, path: "")
    }

    private init(_ value: JSONValue, _ locations: JSONSourceNode, path: String) {
        self.value = value
        self.locations = locations
        self.path = path
    }

    /// The path as messages show it: `(root)` for the document itself.
    var shownPath: String { self.path.isEmpty ? "(root)" : self.path }

    var offset: Int { self.locations.offset }

    /// The path of member `name`, whether or not it is present.
    func pathOfMember(_ name: String) -> String { TenantImportFile.member(name, of: self.path) }

    /// Member `name` of an object, if present.
    func member(_ name: String) -> LocatedValue? {
        guard let value = self.value[name], let member = self.locations.members[name] else { return nil }
        return LocatedValue(value, member.value, path: self.pathOfMember(name))
    }

    /// Where the name of member `name` starts, if present.
    func offsetOfMemberName(_ name: String) -> Int? { self.locations.members[name]?.nameOffset }

    /// An array's elements, in order.
    var elements: [LocatedValue]? {
        guard case .array(let values) = self.value else { return nil }
        return zip(values, self.locations.elements).enumerated().map { index, element in
            LocatedValue(element.0, element.1, path: "\(self.path)[\(index)]")
        }
    }
}
