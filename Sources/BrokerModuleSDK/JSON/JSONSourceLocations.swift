/// Where each value of a parsed JSON text starts: what `JSONParser.parseWithLocations` returns beside
/// the value, shaped like it, so a message about a value can point at its place in the file.
public struct JSONSourceNode: Sendable {
    /// Byte offset of the value's first byte (`{`, `[`, `"`, a digit, …).
    public let offset: Int
    /// An object's members by name (the last one when a name repeats, as in the parsed value).
    public let members: [String: JSONSourceMember]
    /// An array's elements in order.
    public let elements: [JSONSourceNode]
}

/// One object member's locations: its name's and its value's.
public struct JSONSourceMember: Sendable {
    /// Byte offset of the opening quote of the member's name.
    public let nameOffset: Int
    public let value: JSONSourceNode
}

/// What the scanner records beside each value. The plain parser uses `NoSourceLocations`, which
/// records nothing and is specialised away, so its hot path does no extra work.
protocol SourceLocationRecording {
    associatedtype Members
    associatedtype Elements
    static var noMembers: Members { get }
    static var noElements: Elements { get }
    static func scalar(at offset: Int) -> Self
    static func object(at offset: Int, members: Members) -> Self
    static func array(at offset: Int, elements: Elements) -> Self
    static func add(_ member: Self, named name: String, nameAt nameOffset: Int, to members: inout Members)
    static func add(_ element: Self, to elements: inout Elements)
}

/// Records nothing: the locations of `JSONParser.parse`.
struct NoSourceLocations: SourceLocationRecording {
    static var noMembers: Void { () }
    static var noElements: Void { () }
    @inline(__always) static func scalar(at offset: Int) -> Self { Self() }
    @inline(__always) static func object(at offset: Int, members: Void) -> Self { Self() }
    @inline(__always) static func array(at offset: Int, elements: Void) -> Self { Self() }
    @inline(__always) static func add(_ member: Self, named name: String, nameAt nameOffset: Int, to members: inout Void) {}
    @inline(__always) static func add(_ element: Self, to elements: inout Void) {}
}

extension JSONSourceNode: SourceLocationRecording {
    static var noMembers: [String: JSONSourceMember] { [:] }
    static var noElements: [JSONSourceNode] { [] }

    static func scalar(at offset: Int) -> Self {
        Self(offset: offset, members: [:], elements: [])
    }

    static func object(at offset: Int, members: [String: JSONSourceMember]) -> Self {
        Self(offset: offset, members: members, elements: [])
    }

    static func array(at offset: Int, elements: [JSONSourceNode]) -> Self {
        Self(offset: offset, members: [:], elements: elements)
    }

    static func add(_ member: Self, named name: String, nameAt nameOffset: Int, to members: inout [String: JSONSourceMember]) {
        members[name] = JSONSourceMember(nameOffset: nameOffset, value: member)
    }

    static func add(_ element: Self, to elements: inout [JSONSourceNode]) {
        elements.append(element)
    }
}
