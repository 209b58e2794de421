import Glibc
import Testing
import SwiftPool

/// Counters in a shared page: the hooks run in worker processes.
final class SharedCounters: @unchecked Sendable {
    let base: UnsafeMutablePointer<Int>
    init() {
        base = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)!
            .bindMemory(to: Int.self, capacity: 512)
        base.initialize(repeating: 0, count: 512)
    }
    deinit { munmap(base, 4096) }
    // Each worker writes only its own slots: no atomics needed.
    func bump(_ slot: Int) { base[slot] += 1 }
    subscript(_ slot: Int) -> Int { base[slot] }
}

@Suite("Lifecycle")
struct LifecycleTests {
    @Test func keepAliveWorkersServeRegisteredFunctionsAcrossCalls() throws {
        let pool = ProcessPool(.init(workerCount: 2, keepAlive: true))
        let pidOf = pool.register { (_: Int) in getpid() }
        let first = Set(try pool.map(pidOf, Array(0..<100), chunkSize: 1))
        let second = Set(try pool.map(pidOf, Array(0..<100), chunkSize: 1))
        #expect(first == second)
        #expect(Set(pool.workerPIDs).isSuperset(of: first))
        pool.close()
        pool.join()
    }

    @Test func withoutKeepAliveEachCallForksFreshWorkers() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let first = Set(try pool.map(Array(0..<50), chunkSize: 1) { (_: Int) in getpid() })
        let second = Set(try pool.map(Array(0..<50), chunkSize: 1) { (_: Int) in getpid() })
        #expect(first.isDisjoint(with: second))
    }

    @Test func workersAreReplacedAfterTheirLifespan() throws {
        let pool = ProcessPool(.init(workerCount: 2, keepAlive: true, tasksPerWorker: 5))
        let pidOf = pool.register { (_: Int) in getpid() }
        let pids = try pool.map(pidOf, Array(0..<60), chunkSize: 1)
        #expect(Set(pids).count >= 12)
        let stats = pool.workerStatistics
        #expect(stats.map(\.restarts).reduce(0, +) >= 10)
        #expect(stats.map(\.tasksDone).reduce(0, +) == 60)
        #expect(stats.allSatisfy { $0.crashes == 0 })
    }

    @Test func initAndExitHooksRunOncePerWorkerProcess() throws {
        let counters = SharedCounters()
        let config = ProcessPoolConfiguration(
            workerCount: 2,
            workerInit: { id in counters.bump(id) },
            workerExit: { id in counters.bump(10 + id) })
        try withProcessPool(config) { pool in
            _ = try pool.map(Array(0..<100)) { $0 }
        }
        #expect(counters[0] == 1 && counters[1] == 1)
        #expect(counters[10] == 1 && counters[11] == 1)
    }

    @Test func withoutKeepAliveHooksRunOncePerCallAndWorker() throws {
        let counters = SharedCounters()
        let pool = ProcessPool(.init(
            workerCount: 2,
            workerInit: { id in counters.bump(id) },
            workerExit: { id in counters.bump(10 + id) }))
        for _ in 0..<3 { _ = try pool.map(Array(0..<100)) { $0 } }
        // each call forked both workers and stopped them when it ended
        #expect(counters[0] == 3 && counters[1] == 3)
        #expect(counters[10] == 3 && counters[11] == 3)
    }

    @Test func terminateStopsRunningTasks() throws {
        let pool = ProcessPool(.init(workerCount: 2, keepAlive: true))
        let sleeper = pool.register { (s: UInt32) -> UInt32 in sleep(s) }
        let handle = try pool.submit(UInt32(30)) { sleep($0) }
        _ = sleeper
        usleep(100_000)
        pool.terminate()
        #expect(throws: ProcessPoolError(.cancelled, taskIndex: 0)) { _ = try handle.get() }
        pool.join()
    }
}

final class DeinitTracker: @unchecked Sendable {
    let flag: UnsafeMutablePointer<Bool>
    init(_ flag: UnsafeMutablePointer<Bool>) { self.flag = flag }
    deinit { flag.pointee = true }
}

@Suite("Memory")
struct MemoryTests {
    @Test func closuresAndWhatTheyCaptureAreReleasedWithThePool() throws {
        let freed = UnsafeMutablePointer<Bool>.allocate(capacity: 1)
        defer { freed.deallocate() }
        freed.pointee = false
        do {
            let tracker = DeinitTracker(freed)
            let pool = ProcessPool(.init(workerCount: 1))
            _ = try pool.map([1, 2, 3]) { (x: Int) -> Int in
                withExtendedLifetime(tracker) { x + 1 }
            }
            _ = try pool.mapResults([1]) { (x: Int) throws -> Int in
                withExtendedLifetime(tracker) { x }
            }
        }
        #expect(freed.pointee)
    }
}
