import Glibc
import Testing
import SwiftPool

struct Point: Equatable, BitwiseCopyable {
    var x: Double
    var y: Double
}

struct BadInput: Error, CustomStringConvertible {
    let value: Int
    var description: String { "bad input \(value)" }
}

@Suite("Mapping")
struct MapTests {
    @Test func mapsAMillionIntsInOrder() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let input = Array(0..<1_000_000)
        let out = try pool.map(input) { $0 * $0 }
        #expect(out.count == input.count)
        #expect(out.enumerated().allSatisfy { $0.element == $0.offset * $0.offset })
    }

    /// Item 0 holds its worker until every other item has run (each sets its flag in a
    /// shared page) or 20 s pass. It is released only if nothing waited behind it: not
    /// the rest of its chunk, nor chunks queued on its worker. No timing is asserted.
    @Test(.timeLimit(.minutes(1)), arguments: [nil, 1, 100] as [Int?])
    func noItemWaitsBehindASlowOneWhileAWorkerIsIdle(chunk: Int?) throws {
        let n = 400
        let flags = SharedCounters() // [i]: item i ran
        let pool = ProcessPool(.init(workerCount: 2))
        let out = try pool.map(Array(0..<n), chunkSize: chunk) { (i: Int) -> Int in
            guard i == 0 else {
                usleep(20)
                flags.base[i] = 1
                return i + 1000
            }
            let deadline = ContinuousClock.now + .seconds(20)
            while (1..<n).contains(where: { flags.base[$0] == 0 }) {
                if ContinuousClock.now > deadline { return -1 }
            }
            return 1
        }
        #expect(out[0] == 1)
        #expect(Array(out[1...]) == Array(1001..<(1000 + n)))
    }

    @Test(arguments: [1, 7, 1000, 100_000])
    func mapsWithAnyChunkSize(chunk: Int) throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let out = try pool.map(Array(0..<10_001), chunkSize: chunk) { $0 &+ 1 }
        #expect(out == Array(1...10_001))
    }

    @Test func mapsStructsAndEmptyInputs() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let pts = (0..<1000).map { Point(x: Double($0), y: 1) }
        let out = try pool.map(pts) { Point(x: $0.y, y: $0.x * 2) }
        #expect(out == pts.map { Point(x: $0.y, y: $0.x * 2) })
        let none: [Int] = try pool.map([Int]()) { $0 }
        #expect(none.isEmpty)
    }

    @Test func mapsInputsLargerThanTheSharedMemoryInRounds() throws {
        let pool = ProcessPool(.init(workerCount: 2, sharedMemoryBytes: 1 << 20))
        let input = Array(0..<500_000) // 8 MB in and out through 1 MiB
        let out = try pool.map(input) { $0 * 3 }
        #expect(out == input.map { $0 * 3 })
    }

    @Test func carriesThrownErrorsBackWithTypeAndMessage() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let results = try pool.mapResults(Array(0..<1000)) { (x: Int) throws -> Int in
            if x == 123 || x == 777 { throw BadInput(value: x) }
            return x * 2
        }
        for (i, r) in results.enumerated() {
            switch r {
            case let .success(v): #expect(v == i * 2 && i != 123 && i != 777)
            case let .failure(e):
                #expect(i == 123 || i == 777)
                #expect(e.taskIndex == i)
                #expect(e.code == .userError(typeName: "SwiftPoolTests.BadInput", message: "bad input \(i)"))
            }
        }
        // map throws the first failure in input order
        #expect(throws: ProcessPoolError(.userError(typeName: "SwiftPoolTests.BadInput", message: "bad input 123"),
                                         taskIndex: 123)) {
            _ = try pool.map(Array(0..<1000)) { (x: Int) throws -> Int in
                if x == 123 || x == 777 { throw BadInput(value: x) }
                return x
            }
        }
    }

    @Test func reportsTheWholeMessageOfAnErrorHoweverLong() throws {
        struct Loud: Error, CustomStringConvertible {
            var description: String { String(repeating: "é", count: 5000) + "\u{FFFF}" }
        }
        let pool = ProcessPool(.init(workerCount: 1))
        let r = try pool.mapResults([1]) { (_: Int) throws -> Int in throw Loud() }
        guard case let .failure(e) = r[0], case let .userError(type, message) = e.code else {
            Issue.record("no error: \(r)")
            return
        }
        #expect(type.hasSuffix("Loud"))
        #expect(message == String(repeating: "é", count: 5000) + "\u{FFFF}") // all of it
    }

    @Test func appliesOneTask() throws {
        let pool = ProcessPool(.init(workerCount: 1))
        #expect(try pool.apply(21) { $0 * 2 } == 42)
        let pid = try pool.apply(0) { (_: Int) in getpid() }
        #expect(pid != getpid())
    }

    @Test func passesTheWorkerIDToTasks() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let ids = try pool.map(Array(0..<200), chunkSize: 1) { (_: Int) in ProcessPool.currentWorkerID ?? -1 }
        #expect(Set(ids).isSubset(of: [0, 1]))
        #expect(ProcessPool.currentWorkerID == nil)
    }

    @Test func seesWhatTheParentHeldAtFork() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let table = (0..<100).map { $0 * 10 } // captured: copied to the workers by fork
        let out = try pool.map(Array(0..<100)) { table[$0] + 1 }
        #expect(out == table.map { $0 + 1 })
    }
}
