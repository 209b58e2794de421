import Foundation
import Glibc
import Testing
import SwiftPool

struct Order: Codable, Equatable, Sendable {
    var id: Int
    var customer: String
    var items: [String]
    var price: Double?
    var tags: [String: Int]
}

/// A thrown error the caller gets back as itself.
struct OrderRejected: Error, Codable, Equatable {
    var id: Int
    var reason: String
}

/// A value whose encoding fails for a negative number, and whose decoding fails for 13.
struct Picky: Codable, Equatable, Sendable {
    var n: Int
    var label = "" // not trivially copyable: encoded, not copied
    struct Refused: Error {}
    init(_ n: Int) { self.n = n }
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        n = try c.decode(Int.self)
        if n == 13 { throw Refused() }
    }
    func encode(to encoder: any Encoder) throws {
        if n < 0 { throw Refused() }
        var c = encoder.singleValueContainer()
        try c.encode(n)
    }
}

/// Every API with the values of one kind: the results must equal the transform's.
func checkEveryAPI<I: Codable & Sendable, O: Codable & Equatable & Sendable>(
    _ pool: ProcessPool, _ inputs: [I], _ body: @escaping @Sendable (I) throws -> O
) async throws {
    let want = try inputs.map(body)
    #expect(try syncMap(pool, inputs, body) == want, "map")
    #expect(try pool.mapResults(inputs, body).map { try $0.get() } == want, "mapResults")
    #expect(try await pool.map(inputs, body) == want, "async map")
    #expect(try pool.imap(inputs, chunkSize: 3, body).map { try $0.get() } == want, "imap")
    let unordered = try pool.imapUnordered(inputs, chunkSize: 3, body).map { try $0.get() }
    #expect(unordered.count == want.count, "imapUnordered")
    var streamed: [O] = []
    for await r in try pool.mapStream(inputs, chunkSize: 2, body) { streamed.append(try r.get()) }
    #expect(streamed == want, "mapStream")
    let registered = pool.register(body)
    #expect(try syncMapRegistered(pool, registered, inputs) == want, "registered map")
    if let first = inputs.first {
        #expect(try pool.apply(first, body) == want[0], "apply")
        #expect(try pool.submit(first, body).get() == want[0], "submit")
        #expect(try await pool.submit(first, body).value == want[0], "submit, awaited")
        #expect(try await pool.run { try body(first) } == want[0], "run")
        let pairs = inputs.map { ($0, $0) }
        #expect(try pool.starmap(pairs) { a, _ in try body(a) } == want, "starmap")
    }
}

func syncMap<I: Codable & Sendable, O: Codable & Sendable>(_ pool: ProcessPool, _ inputs: [I],
                                                          _ body: @escaping @Sendable (I) throws -> O) throws -> [O] {
    try pool.map(inputs, body)
}

func syncMapRegistered<I, O>(_ pool: ProcessPool, _ f: PoolFunction<I, O>, _ inputs: [I]) throws -> [O] {
    try pool.map(f, inputs)
}

@Suite("Values of every type and size")
struct ValuesTests {
    @Test func stringsThroughEveryAPI() async throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let words = ["", "a"] + (0..<300).map { "word-\($0)-é🙂" } + [""]
        try await checkEveryAPI(pool, words) { $0.uppercased() + "!" }
        try await checkEveryAPI(pool, words) { $0.count }
        let s = try await pool.run { "hello" } // a String, not ()
        #expect(s == "hello")
        let doubled = try await withProcessPool(.init(workerCount: 1)) { pool in
            try await pool.map(["a", ""]) { $0 + $0 }
        }
        #expect(doubled == ["aa", ""])
    }

    @Test func arraysAndBytesThroughEveryAPI() async throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let arrays: [[Double]] = [[], [1.5]] + (0..<50).map { n in (0..<n).map(Double.init) }
        try await checkEveryAPI(pool, arrays) { $0.map { $0 * 2 } }
        let bytes: [[UInt8]] = [[], [0, 255]] + (0..<40).map { [UInt8](repeating: UInt8($0), count: $0 * 100) }
        try await checkEveryAPI(pool, bytes) { Data($0.reversed()) }
        try await checkEveryAPI(pool, (0..<20).map { Data(repeating: UInt8($0), count: $0) }) { [UInt8]($0) }
    }

    @Test func codableStructsThroughEveryAPI() async throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let orders = (0..<120).map {
            Order(id: $0, customer: "c\($0)", items: Array(repeating: "x", count: $0 % 5),
                  price: $0 % 3 == 0 ? nil : Double($0) / 4, tags: $0 % 2 == 0 ? [:] : ["k\($0)": $0])
        }
        try await checkEveryAPI(pool, orders) { o in
            var o = o
            o.items.append(o.customer)
            o.price = o.price.map { $0 * 2 }
            return o
        }
        try await checkEveryAPI(pool, orders) { [$0.customer: $0.items.count] }
        try await checkEveryAPI(pool, [[String?]]([[], ["a", nil, "b"], [nil]])) { $0.reversed() }
    }

    @Test func resultsOfTenMegabytesComeBackWhole() throws {
        let pool = ProcessPool(.init(workerCount: 2, sharedMemoryBytes: 1 << 20))
        let big = try pool.map([10_000_000, 0, 3]) { String(repeating: "y", count: $0) }
        #expect(big.map(\.utf8.count) == [10_000_000, 0, 3])
        #expect(big[0].utf8.allSatisfy { $0 == UInt8(ascii: "y") })
        let doubles = try pool.submit(1_250_000) { (n: Int) in (0..<n).map(Double.init) }.get()
        #expect(doubles.count == 1_250_000 && doubles[1_249_999] == 1_249_999)
        let arrays = try pool.map(Array(repeating: 1000, count: 2000)) { (n: Int) in [Double](repeating: 0.5, count: n) }
        #expect(arrays.count == 2000 && arrays.allSatisfy { $0.count == 1000 })
    }

    @Test func aCodableErrorComesBackAsItselfAndAnyOtherWithItsFullMessage() async throws {
        let pool = ProcessPool(.init(workerCount: 2))
        do {
            _ = try await pool.map([1, 2, 3]) { (id: Int) -> String in
                if id == 2 { throw OrderRejected(id: id, reason: "out of stock") }
                return "ok"
            }
            Issue.record("no error")
        } catch let e as OrderRejected {
            #expect(e == OrderRejected(id: 2, reason: "out of stock"))
        }
        struct Plain: Error, CustomStringConvertible {
            var description: String { String(repeating: "long message ", count: 10_000) + "end" }
        }
        #expect {
            _ = try pool.apply(1) { (_: Int) -> Int in throw Plain() }
        } throws: { e in
            guard case let .userError(type, message) = e.code else { return false }
            return type.hasSuffix("Plain") && message.hasSuffix("end") && message.utf8.count == 130_003
        }
        await #expect(throws: OrderRejected(id: 7, reason: "async")) {
            _ = try await pool.run { () -> Int in throw OrderRejected(id: 7, reason: "async") }
        }
    }

    @Test func everyThrowingTaskKeepsItsError() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let results = try pool.mapResults(Array(0..<400)) { (x: Int) -> Int in
            if x % 2 == 0 { throw OrderRejected(id: x, reason: "even \(x)") }
            return x
        }
        for (i, r) in results.enumerated() {
            if i % 2 == 0 {
                #expect(throws: OrderRejected(id: i, reason: "even \(i)")) { try r.get() }
            } else {
                #expect(try r.get() == i)
            }
        }
    }

    @Test func badValuesFailTheirOwnTaskWithAClearError() throws {
        let pool = ProcessPool(.init(workerCount: 2, sharedMemoryBytes: 1 << 20))
        // An input that cannot be encoded, a result that cannot be decoded (by the parent).
        let results = try pool.mapResults([Picky(1), Picky(-1), Picky(12), Picky(4)]) { Picky($0.n == 12 ? 13 : $0.n) }
        #expect(try results[0].get() == Picky(1))
        #expect(try results[3].get() == Picky(4))
        guard case let .encodingFailed(reason) = code(results[1]) else { Issue.record("\(results[1])"); return }
        #expect(reason.contains("input could not be encoded"))
        #expect(results[1].failureIndex == 1)
        guard case let .encodingFailed(decoding) = code(results[2]) else { Issue.record("\(results[2])"); return }
        #expect(decoding.contains("result could not be decoded"))
        #expect(results[2].failureIndex == 2)
        // An input larger than the pool's shared memory.
        let sizes = try pool.mapResults([[UInt8](repeating: 1, count: 10), [UInt8](repeating: 2, count: 2 << 20)]) { $0.count }
        #expect(try sizes[0].get() == 10)
        guard case let .encodingFailed(why) = code(sizes[1]) else { Issue.record("\(sizes[1])"); return }
        #expect(why.contains("shared memory"))
    }

    @Test(.timeLimit(.minutes(1))) func submitsQueueAndNeverRunMoreWorkersThanConfigured() throws {
        let counters = SharedCounters() // [0]: worker processes alive now, [1]: the most seen
        let pool = ProcessPool(.init(
            workerCount: 2,
            workerInit: { _ in
                let alive = counters.add(0, 1)
                counters.raise(1, to: alive)
            },
            workerExit: { _ in _ = counters.add(0, -1) }))
        let handles = try (0..<64).map { i in
            try pool.submit(i) { (x: Int) -> String in
                usleep(20_000)
                return "task \(x)"
            }
        }
        for (i, h) in handles.enumerated() { #expect(try h.get() == "task \(i)") }
        #expect(counters[1] >= 1 && counters[1] <= 2)
    }
}

extension Result {
    /// The task index of a ProcessPoolError failure.
    var failureIndex: Int? {
        if case let .failure(e) = self { return (e as? ProcessPoolError)?.taskIndex }
        return nil
    }
}
