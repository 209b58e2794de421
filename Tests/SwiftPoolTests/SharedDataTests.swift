import Glibc
import Testing
import SwiftPool

@Suite("Shared data and several arguments")
struct SharedDataTests {
    @Test func workersWriteASharedArrayInPlace() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let data = try pool.makeSharedArray(repeating: 0.0, count: 1_000_000)
        for i in 0..<data.count { data[i] = Double(i) }
        // Each task doubles its own slice in place and returns its sum; nothing is copied back.
        let slices = (0..<10).map { $0 * 100_000 }
        let sums = try pool.map(slices, chunkSize: 1) { (start: Int) -> Double in
            var s = 0.0
            for i in start..<(start + 100_000) {
                data[i] *= 2
                s += data[i]
            }
            return s
        }
        #expect(sums.reduce(0, +) == Double(999_999 * 1_000_000)) // 2 × Σi
        #expect(data[123_456] == 246_912)
        #expect(data.enumerated().allSatisfy { $0.element == Double(2 * $0.offset) }) // doubled in place
    }

    @Test func aSharedArrayLargerThanTheSharedMemoryIsAClearError() throws {
        let pool = ProcessPool(.init(workerCount: 1, sharedMemoryBytes: 1 << 20))
        #expect(throws: ProcessPoolError(.encodingFailed(
            reason: "\(2 << 20) elements do not fit in the pool's shared memory; raise sharedMemoryBytes"))) {
            _ = try pool.makeSharedArray(repeating: UInt8(0), count: 2 << 20)
        }
    }

    @Test func starmapPassesSeveralArguments() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let pairs = (0..<1000).map { ($0, Double($0) / 2) }
        let out = try pool.starmap(pairs) { (a: Int, b: Double) in Double(a) + b }
        #expect(out == pairs.map { Double($0.0) + $0.1 })
        let triples = (0..<100).map { (Int32($0), Int8(1), UInt16(2)) }
        let sums = try pool.starmap(triples) { (a: Int32, b: Int8, c: UInt16) in Int(a) + Int(b) + Int(c) }
        #expect(sums == (0..<100).map { $0 + 3 })
    }

    @Test func keepAliveCanBeTurnedOnLater() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let pid = pool.register { (_: Int) in getpid() }
        let first = Set(try pool.map(pid, Array(0..<50), chunkSize: 1))
        pool.keepAlive = true
        let second = Set(try pool.map(pid, Array(0..<50), chunkSize: 1))
        let third = Set(try pool.map(pid, Array(0..<50), chunkSize: 1))
        #expect(first.isDisjoint(with: second))
        #expect(second == third)
        pool.keepAlive = false
        #expect(pool.workerPIDs.allSatisfy { $0 == 0 })
    }
}
