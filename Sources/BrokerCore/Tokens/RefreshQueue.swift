/// A min-heap of (due time, slot): the refresh scheduler's agenda. Entries are never removed in
/// place; the scheduler skips entries whose due time no longer matches the key's plan.
struct RefreshQueue {
    struct Entry {
        var due: Double
        var slot: TokenSlot
    }

    private var heap: [Entry] = []

    var count: Int { self.heap.count }
    var nextDue: Double? { self.heap.first?.due }

    mutating func insert(_ slot: TokenSlot, due: Double) {
        self.heap.append(Entry(due: due, slot: slot))
        var child = self.heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard self.heap[child].due < self.heap[parent].due else { break }
            self.heap.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    mutating func popDue(at now: Double) -> Entry? {
        guard let first = self.heap.first, first.due <= now else { return nil }
        let last = self.heap.removeLast()
        if !self.heap.isEmpty {
            self.heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < self.heap.count, self.heap[left].due < self.heap[smallest].due { smallest = left }
                if right < self.heap.count, self.heap[right].due < self.heap[smallest].due { smallest = right }
                guard smallest != parent else { break }
                self.heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return first
    }
}
