import Glibc
import Testing
import SwiftPool

/// Counts reads of a lazy input (the parent iterates it on one thread at a time).
final class ReadCounter: @unchecked Sendable {
    var count = 0
}

@Suite("Lazy maps")
struct LazyMapTests {
    @Test func imapYieldsResultsInOrder() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let results = try pool.imap(0..<10_000, chunkSize: 100) { $0 * 2 }
        var expected = 0
        for r in results {
            #expect(try r.get() == expected * 2)
            expected += 1
        }
        #expect(expected == 10_000)
    }

    @Test func imapReadsAnEndlessInputLazily() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        // An endless input: only what the iteration asks for plus a bounded window
        // (4 chunks a worker in flight) is read.
        let reads = ReadCounter()
        var taken: [Int] = []
        for r in try pool.imap((0...).lazy.map { reads.count += 1; return $0 }, chunkSize: 10, { $0 + 1 }) {
            taken.append(try r.get())
            #expect(reads.count <= taken.count + 8 * 10 + 10, "read \(reads.count) for \(taken.count) results")
            if taken.count == 1000 { break }
        }
        #expect(taken == Array(1...1000))
        #expect(reads.count >= 1000 && reads.count <= 1000 + 8 * 10 + 10)
    }

    @Test func imapUnorderedYieldsEveryResultOnce() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let results = try pool.imapUnordered(Array(0..<5000), chunkSize: 50) { (x: Int) -> Int in
            if x % 1000 == 7 { usleep(2000) } // some chunks finish late
            return x * x
        }
        let values = try results.map { try $0.get() }
        #expect(values.count == 5000)
        #expect(Set(values) == Set((0..<5000).map { $0 * $0 }))
    }

    @Test func imapReportsFailuresAtTheirPosition() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let results = Array(try pool.imap(0..<300, chunkSize: 32) { (x: Int) -> Int in
            if x == 100 { raise(SIGSEGV) }
            if x == 200 { throw BadInput(value: x) }
            return x
        })
        #expect(results.count == 300)
        for (i, r) in results.enumerated() {
            switch (i, r) {
            case (100, .failure(let e)): #expect(e.code == .crashed(signal: SIGSEGV, exitStatus: nil) && e.taskIndex == 100)
            case (200, .failure(let e)): #expect(e.code == .userError(typeName: "SwiftPoolTests.BadInput", message: "bad input 200"))
            case (_, .success(let v)) where i != 100 && i != 200: #expect(v == i)
            default: Issue.record("task \(i): \(r)")
            }
        }
    }
}
