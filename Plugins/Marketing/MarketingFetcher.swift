import BrokerModuleSDK

/// Runs a validated marketing query against the upstream: one page, every page, or one query per
/// tenant, with bounded concurrency.
struct MarketingFetcher: Sendable {
    let endpoint: MarketingEndpoint
    let query: MarketingQuery
    let upstream: any UpstreamCalling

    /// One tenant's answer: a page, or every page merged when `all_pages` is set.
    func fetch(tenant: String, region: String?) async throws(ModuleError) -> JSONValue {
        let first = try await self.page(self.query.pageNo, tenant: tenant, region: region)
        guard self.query.allPages, first.pageCount > 1 else {
            return MarketingReply.json(first, extra: self.query.allPages ? ["pages_fetched": 1, "truncated": false] : [:])
        }
        let lastPage = min(first.pageCount, Int64(MarketingQuery.maximumPages))
        var pages: [Int64: MarketingReply.Page] = [1: first]
        let result = await self.concurrently(Array(2...lastPage)) { page throws(ModuleError) in
            try await self.page(page, tenant: tenant, region: region)
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

    /// One place a fan-out asks: a tenant, in one of its regions (nil when the tenant has one, or its
    /// regions are not known).
    struct Target: Sendable, Hashable {
        var tenant: String
        var region: String?
    }

    /// The same query for each tenant, in the `region` asked for, or else in every region the tenant
    /// has: one result per (tenant, region), so tenants with two regions are answered for both.
    /// One target's failure never fails the others.
    func fetch(tenants: [String]) async -> JSONValue {
        var targets: [Target] = []
        for tenant in tenants {
            if let region = self.query.region {
                targets.append(Target(tenant: tenant, region: region))
                continue
            }
            let regions = (try? await self.upstream.regions(ofTenant: tenant)) ?? []
            if regions.isEmpty {
                targets.append(Target(tenant: tenant, region: nil))
            } else {
                targets += regions.map { Target(tenant: tenant, region: $0) }
            }
        }
        let outcomes = await self.concurrently(targets) { target throws(ModuleError) in
            try await self.fetch(tenant: target.tenant, region: target.region)
        }
        let byTarget = Dictionary(uniqueKeysWithValues: outcomes)
        let results: [JSONValue] = targets.map { target in
            var entry: [String: JSONValue] = ["tenant": .string(target.tenant)]
            if let region = target.region { entry["region"] = .string(region) }
            switch byTarget[target] {
            case .success(let result): entry["result"] = result
            case .failure(let error): entry["error"] = error.errorObject
            case .none: entry["error"] = ModuleError.internalError("no result").errorObject
            }
            return .object(entry)
        }
        let failed = results.filter { $0["error"] != nil }.count
        return ["results": .array(results), "succeeded": .integer(Int64(results.count - failed)), "failed": .integer(Int64(failed))]
    }

    private func page(_ page: Int64, tenant: String, region: String?) async throws(ModuleError) -> MarketingReply.Page {
        let reply = try await self.upstream.post(
            tenant: tenant,
            region: region,
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
