import Glibc
import Testing
import SwiftPool

struct Order: Codable, Equatable, Sendable {
    var id: Int
    var customer: String
    var items: [String]
}

@Suite("Codable values")
struct CodableTests {
    @Test func mapsStrings() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let words = (0..<2000).map { "word-\($0)-é🙂" }
        let out = try pool.map(words) { $0.uppercased() + "!" }
        #expect(out == words.map { $0.uppercased() + "!" })
    }

    @Test func mapsCodableStructsBothWays() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let orders = (0..<500).map { Order(id: $0, customer: "c\($0)", items: Array(repeating: "x", count: $0 % 5)) }
        let counts = try pool.map(orders) { (o: Order) -> [String: Int] in [o.customer: o.items.count] }
        #expect(counts == orders.map { [$0.customer: $0.items.count] })
        let echoed = try pool.map(orders) { $0 }
        #expect(echoed == orders)
    }

    @Test func reportsResultsLargerThanTheirSlotAndThrownErrors() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let results = try pool.mapResults(["a", "big", "boom", "d"], maxResultBytes: 100) { (s: String) throws -> String in
            if s == "boom" { throw BadInput(value: 4) }
            return s == "big" ? String(repeating: "y", count: 10_000) : s + s
        }
        #expect(try results[0].get() == "aa")
        #expect(try results[3].get() == "dd")
        if case let .failure(e) = results[1], case let .userError(type, message) = e.code {
            #expect(type.hasSuffix("_ResultTooLarge"))
            #expect(message.contains("more than maxResultBytes (100)"))
        } else { Issue.record("oversized result: \(results[1])") }
        #expect(code(results[2]) == .userError(typeName: "SwiftPoolTests.BadInput", message: "bad input 4"))
    }

    @Test func aCrashWhileDecodingOrRunningFailsOnlyThatTask() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let results = try pool.mapResults(["ok", "crash", "fine"]) { (s: String) -> String in
            if s == "crash" { raise(SIGSEGV) }
            return s
        }
        #expect(try results[0].get() == "ok")
        #expect(try results[2].get() == "fine")
        #expect(code(results[1]) == .crashed(signal: SIGSEGV, exitStatus: nil))
    }
}
