import Dispatch
import Glibc
import Synchronization
import Testing
import SwiftPool

/// Where a SIGTERM handler in a worker reports (set before the workers are forked).
nonisolated(unsafe) var sharedForSigterm: SharedCounters?

/// Counters in a shared page: the hooks run in worker processes.
final class SharedCounters: @unchecked Sendable {
    let base: UnsafeMutablePointer<Int>
    init() {
        base = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)!
            .bindMemory(to: Int.self, capacity: 512)
        base.initialize(repeating: 0, count: 512)
    }
    deinit { munmap(base, 4096) }

    /// Adds `delta` to counter `i` atomically (from any process); returns the new value.
    @discardableResult
    func add(_ i: Int, _ delta: Int) -> Int {
        UnsafeMutableRawPointer(base + i).withMemoryRebound(to: Atomic<Int>.self, capacity: 1) {
            $0.pointee.add(delta, ordering: .sequentiallyConsistent).newValue
        }
    }

    /// Raises counter `i` to at least `value`.
    func raise(_ i: Int, to value: Int) {
        UnsafeMutableRawPointer(base + i).withMemoryRebound(to: Atomic<Int>.self, capacity: 1) {
            _ = $0.pointee.max(value, ordering: .sequentiallyConsistent)
        }
    }
}

/// Whether `pid` is gone (or a zombie) within `limit`: a killed worker must not live on.
func processGone(_ pid: Int, within limit: Duration = .seconds(10)) -> Bool {
    let deadline = ContinuousClock.now + limit
    repeat {
        guard let f = fopen("/proc/\(pid)/stat", "r") else { return true }
        var buf = [CChar](repeating: 0, count: 512)
        let n = fread(&buf, 1, 511, f)
        fclose(f)
        let text = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if let paren = text.lastIndex(of: ")") {
            let state = text[text.index(paren, offsetBy: 2)]
            if state == "Z" || state == "X" { return true }
        }
        usleep(5_000)
    } while ContinuousClock.now < deadline
    return false
}

extension SharedCounters {
    // Each worker writes only its own slots: no atomics needed.
    func bump(_ slot: Int) { base[slot] += 1 }
    subscript(_ slot: Int) -> Int { base[slot] }
}

@Suite("Lifecycle")
struct LifecycleTests {
    @Test(.timeLimit(.minutes(1))) func crashRetriesRunACrashedTaskAgain() throws {
        // The task crashes the first two times it runs; two retries let it succeed.
        let counters = SharedCounters()
        let pool = ProcessPool(.init(workerCount: 1, crashRetries: 2))
        let out = try pool.mapResults([1, 2, 3], chunkSize: 1) { (x: Int) -> Int in
            if x == 2 {
                counters.bump(0)
                if counters[0] <= 2 { raise(SIGSEGV) }
            }
            return x * 10
        }
        #expect(out.map { try? $0.get() } == [10, 20, 30])
        #expect(counters[0] == 3)
        // Without retries the same crash fails the task.
        let strict = ProcessPool(.init(workerCount: 1))
        let once = try strict.mapResults([2], chunkSize: 1) { (_: Int) -> Int in raise(SIGSEGV); return 0 }
        #expect(code(once[0]) == .crashed(signal: SIGSEGV, exitStatus: nil))
    }

    @Test(.timeLimit(.minutes(1))) func killGraceLetsATimedOutTaskCleanUpBeforeSigkill() throws {
        // A task that handles SIGTERM gets the grace to write its last word.
        let counters = SharedCounters()
        let pool = ProcessPool(.init(workerCount: 1, taskTimeout: .milliseconds(200),
                                     killGrace: .seconds(2),
                                     workerInit: { _ in
                                         signal(SIGTERM) { _ in
                                             // async-signal-safe: a store into the shared page
                                             sharedForSigterm?.base[0] = 1
                                             _exit(0)
                                         }
                                     }))
        sharedForSigterm = counters
        let r = try pool.mapResults([1], chunkSize: 1) { (_: Int) -> Int in sleep(30); return 0 }
        #expect(code(r[0]) == .timedOut)
        #expect(counters[0] == 1)
        // With no grace, SIGKILL at once: the handler never runs.
        let counters2 = SharedCounters()
        sharedForSigterm = counters2
        let hard = ProcessPool(.init(workerCount: 1, taskTimeout: .milliseconds(200),
                                     workerInit: { _ in
                                         signal(SIGTERM) { _ in sharedForSigterm?.base[0] = 1; _exit(0) }
                                     }))
        let r2 = try hard.mapResults([1], chunkSize: 1) { (_: Int) -> Int in sleep(30); return 0 }
        #expect(code(r2[0]) == .timedOut)
        #expect(counters2[0] == 0)
    }

    @Test(.timeLimit(.minutes(1))) func aWorkerWhoseMemoryGrowsIsReplacedBetweenTasks() throws {
        let pool = ProcessPool(.init(workerCount: 1, keepAlive: true, maxMemoryGrowthBytes: 8 << 20))
        let leak = pool.register { (mib: Int) -> Int32 in
            let p = malloc(mib << 20)!
            memset(p, 1, mib << 20) // touched, so resident; never freed
            return getpid()
        }
        let pids = try pool.map(leak, [16, 16, 16], chunkSize: 1)
        #expect(Set(pids).count == 3) // each task's worker was replaced after it
        #expect(pool.workerStatistics.reduce(0) { $0 + $1.recycles } >= 2)
        let small = try pool.map(leak, [0, 0, 0], chunkSize: 1)
        #expect(Set(small).count == 1) // no growth, no replacement
    }

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

    @Test(.timeLimit(.minutes(1)), arguments: [false, true])
    func joinReturnsWhenACallOnAnotherThreadEnds(keepAlive: Bool) throws {
        // join() is called while a map runs on another thread: it returns once that map
        // has ended (it once slept for ever when the last lease went with nobody queued).
        let pool = ProcessPool(.init(workerCount: 2, keepAlive: keepAlive))
        let leased = Atomic<Bool>(false)
        let mapped = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { [pool] in
            defer { done.signal() }
            // A lazy map takes its lease when it is made.
            guard let lazy = try? pool.imap(0..<40, chunkSize: 1, { (x: Int) -> Int in usleep(5_000); return x }) else {
                return
            }
            leased.store(true, ordering: .sequentiallyConsistent)
            mapped.store(lazy.compactMap { try? $0.get() }.count, ordering: .sequentiallyConsistent)
        }
        while !leased.load(ordering: .sequentiallyConsistent) { usleep(1_000) }
        pool.close()
        pool.join()
        #expect(done.wait(timeout: .now() + 30) == .success)
        #expect(mapped.load(ordering: .sequentiallyConsistent) == 40)
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
        // Keep-alive and three calls: once per process, not once per call.
        let counters = SharedCounters()
        let config = ProcessPoolConfiguration(
            workerCount: 2,
            keepAlive: true,
            workerInit: { id in counters.bump(id) },
            workerExit: { id in counters.bump(10 + id) })
        var pids = Set<Int32>()
        try withProcessPool(config) { pool in
            let square = pool.register { (x: Int) in x * x }
            for _ in 0..<3 {
                let got = try pool.map(square, Array(0..<100), chunkSize: 1)
                #expect(got == (0..<100).map { $0 * $0 })
                pids.formUnion(pool.workerPIDs)
                #expect(counters[10] == 0 && counters[11] == 0) // nobody left between calls
            }
        }
        #expect(pids.count == 2)
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
