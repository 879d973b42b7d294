import BrokerModuleSDK

/// Runs a validated marketing query against the upstream: one page, every page, or one query per
/// tenant, with bounded concurrency.
struct MarketingFetcher: Sendable {
    let endpoint: MarketingEndpoint
    let query: MarketingQuery
    let upstream: any UpstreamCalling

    /// One tenant's answer: a page, or every page merged when `all_pages` is set.
    func fetch(tenant: String) async throws(ModuleError) -> JSONValue {
        let first = try await self.page(self.query.pageNo, tenant: tenant)
        guard self.query.allPages, first.pageCount > 1 else {
            return MarketingReply.json(first, extra: self.query.allPages ? ["pages_fetched": 1, "truncated": false] : [:])
        }
        let lastPage = min(first.pageCount, Int64(MarketingQuery.maximumPages))
        var pages: [Int64: MarketingReply.Page] = [1: first]
        let result = await self.concurrently(Array(2...lastPage)) { page throws(ModuleError) in
            try await self.page(page, tenant: tenant)
        }
        for (page, outcome) in result {
            pages[page] = try outcome.get()
        }
        var merged = first
        merged.items = (1...lastPage).flatMap { pages[$0]?.items ?? [] }
        merged.pageNo = 1
        return MarketingReply.json(
            merged,
            extra: ["pages_fetched": .integer(lastPage), "truncated": .bool(lastPage < first.pageCount)]
        )
    }

    /// The same query for each tenant; one tenant's failure never fails the others.
    func fetch(tenants: [String]) async -> JSONValue {
        let outcomes = await self.concurrently(tenants) { tenant throws(ModuleError) in
            try await self.fetch(tenant: tenant)
        }
        let byTenant = Dictionary(uniqueKeysWithValues: outcomes)
        let results: [JSONValue] = tenants.map { tenant in
            switch byTenant[tenant] {
            case .success(let result): ["tenant": .string(tenant), "result": result]
            case .failure(let error): ["tenant": .string(tenant), "error": error.errorObject]
            case .none: ["tenant": .string(tenant), "error": ModuleError.internalError("no result").errorObject]
            }
        }
        let failed = results.filter { $0["error"] != nil }.count
        return ["results": .array(results), "succeeded": .integer(Int64(results.count - failed)), "failed": .integer(Int64(failed))]
    }

    private func page(_ page: Int64, tenant: String) async throws(ModuleError) -> MarketingReply.Page {
        let reply = try await self.upstream.post(
            tenant: tenant,
            region: self.query.region,
            path: self.endpoint.path,
            body: self.query.body(page: page)
        )
        return try MarketingReply.page(from: reply, endpoint: self.endpoint)
    }

    /// Runs `work` for every input, at most `MarketingModule.concurrency` at a time.
    private func concurrently<Input: Sendable & Hashable, Output: Sendable>(
        _ inputs: [Input],
        _ work: @escaping @Sendable (Input) async throws(ModuleError) -> Output
    ) async -> [(Input, Result<Output, ModuleError>)] {
        await withTaskGroup(of: (Input, Result<Output, ModuleError>).self) { group in
            var results: [(Input, Result<Output, ModuleError>)] = []
            var pending = inputs.makeIterator()
            func startNext() -> Bool {
                guard let input = pending.next() else { return false }
                group.addTask {
                    do throws(ModuleError) {
                        return (input, .success(try await work(input)))
                    } catch {
                        return (input, .failure(error))
                    }
                }
                return true
            }
            for _ in 0..<MarketingModule.concurrency where !startNext() { break }
            while let result = await group.next() {
                results.append(result)
                _ = startNext()
            }
            return results
        }
    }
}
