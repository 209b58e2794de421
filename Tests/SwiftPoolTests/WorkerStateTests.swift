import Testing
import SwiftPool

@Suite("Worker state")
struct WorkerStateTests {
    @Test func eachWorkerGetsItsOwnStateForEveryTask() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        // (worker id, how many tasks this worker's state has seen so far)
        let seen = try pool.map(Array(0..<400), chunkSize: 1, workerState: { id in (id, 0) }) {
            (state: inout (Int, Int), _: Int) -> SIMD2<Int> in
            state.1 += 1
            return SIMD2(state.0, state.1)
        }
        for w in Set(seen.map { $0[0] }) {
            let counts = seen.filter { $0[0] == w }.map { $0[1] }.sorted()
            #expect(counts == Array(1...counts.count)) // one state per worker, never shared
        }
        #expect(Set(seen.map { $0[0] }).isSubset(of: [0, 1]))
        #expect(seen.count == 400)
    }

    @Test func keepAliveWorkersKeepTheirStateBetweenCalls() throws {
        let pool = ProcessPool(.init(workerCount: 1, keepAlive: true))
        let counter = pool.register(workerState: { _ in 0 }) { (n: inout Int, _: Int) -> Int in
            n += 1
            return n
        }
        let first = try pool.map(counter, Array(0..<10))
        let second = try pool.map(counter, Array(0..<10))
        #expect(first == Array(1...10))
        #expect(second == Array(11...20))
    }
}
