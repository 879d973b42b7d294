extension LoadGenerator {
    /// The request lines a load cycles through, kept as what they all share at the start and at the
    /// end plus each line's own middle, the middles laid end to end in one buffer.
    ///
    /// Spread over 100,000 tenants the lines differ only in the tenant: each request then reads a
    /// few bytes from a table of about 1 MB instead of a whole line from one of 8 MB, so the
    /// generator's own reads do not push what the daemon under test uses out of the shared cache.
    public struct RequestLines: Sendable {
        private let prefix: [UInt8]
        private let suffix: [UInt8]
        private let middles: [UInt8]
        /// Where each middle ends in `middles`; middle n starts where middle n-1 ends.
        private let ends: [Int]

        public init(_ lines: [[UInt8]]) {
            let first = lines.first ?? []
            let shortest = lines.map(\.count).min() ?? 0
            var prefixCount = shortest
            for line in lines.dropFirst() {
                prefixCount = zip(first.prefix(prefixCount), line).prefix { $0 == $1 }.count
            }
            var suffixCount = shortest - prefixCount
            for line in lines.dropFirst() {
                suffixCount = zip(first.reversed().prefix(suffixCount), line.reversed()).prefix { $0 == $1 }.count
            }
            self.prefix = Array(first.prefix(prefixCount))
            self.suffix = Array(first.suffix(suffixCount))
            var middles: [UInt8] = []
            var ends: [Int] = []
            ends.reserveCapacity(lines.count)
            for line in lines {
                middles.append(contentsOf: line[prefixCount..<(line.count - suffixCount)])
                ends.append(middles.count)
            }
            self.middles = middles
            self.ends = ends
        }

        public var count: Int { self.ends.count }

        /// Replaces `line`'s contents with request line `index`.
        public func assemble(_ index: Int, into line: inout [UInt8]) {
            let start = index == 0 ? 0 : self.ends[index - 1]
            line.removeAll(keepingCapacity: true)
            line.append(contentsOf: self.prefix)
            line.append(contentsOf: self.middles[start..<self.ends[index]])
            line.append(contentsOf: self.suffix)
        }
    }
}
