import Foundation
import SwiftPool
import SwiftPoolSpawnFunctions
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The test bundle's main is SwiftPM's, so spawned workers run `swiftpool-spawn-worker`,
/// built next to it, which defines the same functions (SpawnJobs) and serves.
private let spawnWorker: String = {
    let bundle = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return bundle.deletingLastPathComponent().appendingPathComponent("swiftpool-spawn-worker").path
}()

private func spawnPool(_ workers: Int = 2, _ adjust: (inout ProcessPoolConfiguration) -> Void = { _ in }) -> ProcessPool {
    var c = ProcessPoolConfiguration(workerCount: workers, startMethod: .spawn(executable: spawnWorker))
    adjust(&c)
    return ProcessPool(c)
}

final class StartMethodTests: XCTestCase {
    // MARK: - spawn

    func testSpawnedWorkersRunNamedFunctionsThroughEveryCall() throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: spawnWorker), spawnWorker)
        let pool = spawnPool { $0.keepAlive = true }
        defer { pool.terminate(); pool.join() }
        XCTAssertEqual(try pool.map(SpawnJobs.square, Array(0..<10_000)), (0..<10_000).map { $0 * $0 })
        XCTAssertEqual(try pool.map(SpawnJobs.shout, ["a", "bc"]), ["A!", "BC!"])
        XCTAssertEqual(try pool.apply(SpawnJobs.square, 12), 144)
        XCTAssertEqual(try pool.submit(SpawnJobs.shout, "x").get(), "X!")
        // Each task ran in one of the pool's spawned processes, which knows its worker id.
        let ran = try pool.map(SpawnJobs.worker, Array(0..<200), chunkSize: 1)
        let pids = Set(pool.workerPIDs)
        for r in ran {
            XCTAssertTrue((0..<2).contains(Int(r[0])))
            XCTAssertTrue(pids.contains(r[1]), "\(r[1]) not in \(pids)")
        }
        XCTAssertNil(ProcessPool.currentWorkerID)
    }

    func testSpawnedWorkersIsolateCrashesTimeoutsAndCancellation() throws {
        let pool = spawnPool(2) { $0.taskTimeout = .milliseconds(300) }
        defer { pool.terminate(); pool.join() }
        let results = try pool.mapResults(SpawnJobs.crashAt13, Array(0..<100))
        for (i, r) in results.enumerated() {
            if i == 13 {
                XCTAssertThrowsError(try r.get()) {
                    XCTAssertEqual(($0 as? ProcessPoolError)?.code, .crashed(signal: SIGSEGV, exitStatus: nil))
                }
            } else {
                XCTAssertEqual(try r.get(), i + 1)
            }
        }
        XCTAssertThrowsError(try pool.apply(SpawnJobs.sleepMs, 5_000)) {
            XCTAssertEqual(($0 as? ProcessPoolError)?.code, .timedOut)
        }
        let handle = try pool.submit(SpawnJobs.sleepMs, 250)
        handle.cancel()
        XCTAssertThrowsError(try handle.get()) { XCTAssertEqual(($0 as? ProcessPoolError)?.code, .cancelled) }
        XCTAssertEqual(try pool.apply(SpawnJobs.square, 7), 49) // the pool goes on
    }

    func testSpawnedWorkersKeepTheirLifespan() throws {
        let pool = spawnPool(2) { $0.tasksPerWorker = 5; $0.keepAlive = true }
        defer { pool.terminate(); pool.join() }
        XCTAssertEqual(try pool.map(SpawnJobs.square, Array(0..<60), chunkSize: 1), (0..<60).map { $0 * $0 })
        XCTAssertGreaterThanOrEqual(pool.workerStatistics.map(\.restarts).reduce(0, +), 60 / 5 - 2)
        XCTAssertEqual(pool.workerStatistics.map(\.crashes).reduce(0, +), 0)
    }

    func testWhatASpawnedWorkerCannotRunIsAClearError() throws {
        let pool = spawnPool(1)
        defer { pool.terminate(); pool.join() }
        // A closure: refused before anything runs.
        XCTAssertThrowsError(try pool.map([1, 2]) { $0 + 1 }) {
            guard case .unsupported? = ($0 as? ProcessPoolError)?.code else { return XCTFail("\($0)") }
        }
        // A name the worker's program does not define, and one it defines with another type.
        let onlyHere = try PoolFunction.named("tests.onlyHere") { (x: Int) in x }
        XCTAssertThrowsError(try pool.apply(onlyHere, 1)) {
            XCTAssertTrue("\($0)".contains("not defined by name in the spawned worker"), "\($0)")
        }
        let mismatched = try PoolFunction.named("spawn.mismatched") { (x: Int) in x }
        XCTAssertThrowsError(try pool.apply(mismatched, 1)) {
            XCTAssertTrue("\($0)".contains("signature"), "\($0)")
        }
        // The same name twice in one process.
        XCTAssertThrowsError(try PoolFunction.named("tests.onlyHere") { (x: Int) in x })
        XCTAssertEqual(try pool.apply(SpawnJobs.square, 3), 9)
    }

    func testAProgramThatDoesNotServeFailsThePoolClearly() throws {
        let pool = ProcessPool(.init(workerCount: 1, startMethod: .spawn(executable: "/bin/true")))
        defer { pool.terminate(); pool.join() }
        XCTAssertThrowsError(try pool.apply(SpawnJobs.square, 3)) {
            XCTAssertEqual(($0 as? ProcessPoolError)?.code, .spawnFailed)
        }
    }

    /// Tasks in spawned workers may use Swift concurrency and Dispatch, also while the
    /// parent keeps 8 threads busy (forked children of such a parent hang on them).
    func testSpawnedTasksUseSwiftConcurrencyAndDispatchWhileTheParentIsBusy() throws {
        let stop = Flag()
        let busy = (0..<8).map { _ in
            Thread { while !stop.isSet { _ = (0..<1000).reduce(0, &+) } }
        }
        busy.forEach { $0.start() }
        defer { stop.set() }
        // A task that hung would run into the timeout: a failure, never a stalled suite.
        let pool = spawnPool(2) { $0.taskTimeout = .seconds(20) }
        defer { pool.terminate(); pool.join() }
        for round in 0..<20 {
            let inputs = Array(round..<(round + 8))
            XCTAssertEqual(try pool.map(SpawnJobs.concurrent, inputs, chunkSize: 1),
                           inputs.map(SpawnJobs.concurrentExpected))
        }
    }

    func testNamedHooksRunInSpawnedWorkersAndHandBackExitValues() throws {
        let pool = spawnPool(2)
        defer { pool.terminate(); pool.join() }
        _ = pool.takeExitResults()
        let hooks = WorkerHooks(onStart: SpawnJobs.onStart, onExit: SpawnJobs.onExit)
        XCTAssertEqual(try pool.map(SpawnJobs.square, Array(0..<100), hooks: hooks), (0..<100).map { $0 * $0 })
        let exits = try pool.takeExitResults().map { try $0.value(as: [Int32].self) }
        XCTAssertEqual(exits.count, 2)
        XCTAssertEqual(Set(exits.map { $0[0] }), [0, 1])
        XCTAssertTrue(exits.allSatisfy { $0[1] != getpid() && $0[2] == 1 }, "\(exits)") // start hook ran once
        // A closure hook cannot run in a spawned worker.
        XCTAssertThrowsError(try pool.map(SpawnJobs.square, [1], hooks: WorkerHooks(onStart: WorkerHook { _ in })))
    }

    // MARK: - per-call hooks: exactly when they run

    /// With keep-alive, a call with hooks runs on workers started for it and stopped after
    /// it; calls without hooks never see those hooks.
    func testPerCallHooksUnderKeepAlive() throws {
        let pool = ProcessPool(.init(workerCount: 2, keepAlive: true))
        defer { pool.terminate(); pool.join() }
        let marker = WorkerHook { _ in ProcessMarker.starts += 1 }
        let report = WorkerHook(returning: { id in [Int32(id), getpid(), Int32(ProcessMarker.starts)] })
        _ = try pool.map(Array(0..<10)) { $0 + 1 }
        let before = Set(pool.workerPIDs)
        _ = try pool.map(Array(0..<100), hooks: WorkerHooks(onStart: marker, onExit: report)) { $0 + 1 }
        let exits = try pool.takeExitResults().map { try $0.value(as: [Int32].self) }
        XCTAssertEqual(exits.count, 2)
        XCTAssertTrue(exits.allSatisfy { $0[2] == 1 }, "each process ran the start hook once: \(exits)")
        XCTAssertTrue(Set(exits.map { $0[1] }).isDisjoint(with: before), "the kept-alive workers did not serve it")
        _ = try pool.map(Array(0..<10)) { $0 + 1 }
        XCTAssertTrue(pool.takeExitResults().isEmpty, "a call without hooks runs none")
        XCTAssertTrue(Set(pool.workerPIDs).isDisjoint(with: exits.map { $0[1] }), "the call's workers left with it")
    }

    /// With a lifespan, every process that serves the call runs the start hook once and the
    /// exit hook once, the replacements included.
    func testPerCallHooksUnderLifespan() throws {
        let pool = ProcessPool(.init(workerCount: 2, tasksPerWorker: 3))
        defer { pool.terminate(); pool.join() }
        let marker = WorkerHook { _ in ProcessMarker.starts += 1 }
        let report = WorkerHook(returning: { _ in [getpid(), Int32(ProcessMarker.starts)] })
        _ = try pool.map(Array(0..<12), chunkSize: 1, hooks: WorkerHooks(onStart: marker, onExit: report)) { $0 }
        let exits = try pool.takeExitResults().map { try $0.value(as: [Int32].self) }
        XCTAssertGreaterThanOrEqual(exits.count, 4)
        XCTAssertEqual(Set(exits.map { $0[0] }).count, exits.count, "one exit per process")
        XCTAssertTrue(exits.allSatisfy { $0[1] == 1 }, "\(exits)")
    }

    func testAStartHookThatThrowsBreaksTheCallClearly() throws {
        let pool = ProcessPool(.init(workerCount: 1))
        defer { pool.terminate(); pool.join() }
        struct Refused: Error {}
        let failing = WorkerHook { _ in throw Refused() }
        XCTAssertThrowsError(try pool.map([1], hooks: WorkerHooks(onStart: failing)) { $0 }) {
            XCTAssertEqual(($0 as? ProcessPoolError)?.code, .workerInitFailed)
        }
    }

    // MARK: - threads

    func testSpawnedWorkersServeAsyncCallers() async throws {
        let pool = spawnPool()
        defer { pool.terminate(); pool.join() }
        let squares = try await pool.map(SpawnJobs.square, [3, 4])
        XCTAssertEqual(squares, [9, 16])
    }

    func testThreadsServeAsyncCallers() async throws {
        let pool = ProcessPool(.init(workerCount: 2, startMethod: .threads))
        defer { pool.close(); pool.join() }
        let value = try await pool.run { 41 + 1 }
        XCTAssertEqual(value, 42)
    }

    func testThreadsRunTheSameCallsConcurrently() throws {
        let pool = ProcessPool(.init(workerCount: 4, startMethod: .threads))
        defer { pool.close(); pool.join() }
        XCTAssertEqual(try pool.map(Array(0..<1000)) { $0 * 2 }, (0..<1000).map { $0 * 2 })
        XCTAssertEqual(try pool.map(["x", "y"]) { $0 + "!" }, ["x!", "y!"])
        let ids = try pool.map(Array(0..<8), chunkSize: 1) { (_: Int) -> [Int32] in
            usleep(50_000) // waits, as IO does: the four threads wait together
            return [Int32(ProcessPool.currentWorkerID ?? -1), getpid()]
        }
        XCTAssertTrue(ids.allSatisfy { $0[1] == getpid() && (0..<4).contains(Int($0[0])) })
        XCTAssertGreaterThan(Set(ids.map { $0[0] }).count, 1)
        XCTAssertThrowsError(try pool.apply(3) { (n: Int) -> Int in throw Oops(n: n) }) {
            XCTAssertEqual($0 as? Oops, Oops(n: 3))
        }
        XCTAssertTrue(pool.workerStatistics.allSatisfy { $0.pid == 0 || $0.pid == getpid() })
    }

    func testThreadsRefuseWhatTheyCannotDo() throws {
        let pool = ProcessPool(.init(workerCount: 2, startMethod: .threads, taskTimeout: .seconds(1)))
        defer { pool.terminate(); pool.join() }
        XCTAssertThrowsError(try pool.map([1]) { $0 }) {
            guard case .unsupported? = ($0 as? ProcessPoolError)?.code else { return XCTFail("\($0)") }
        }
    }

    func testThreadsRunPerCallHooks() throws {
        let pool = ProcessPool(.init(workerCount: 3, startMethod: .threads))
        defer { pool.close(); pool.join() }
        let report = WorkerHook(returning: { id in id })
        _ = try pool.map(Array(0..<30), hooks: WorkerHooks(onExit: report)) { $0 }
        XCTAssertEqual(Set(try pool.takeExitResults().map { try $0.value(as: Int.self) }), [0, 1, 2])
    }
}

/// An error that crosses back as itself (Codable, declared outside a function).
struct Oops: Error, Codable, Equatable { let n: Int }

/// Marks a worker process (each forked worker has its own copy).
enum ProcessMarker { nonisolated(unsafe) static var starts = 0 }

/// A flag threads share.
final class Flag: @unchecked Sendable {
    private var flag = false
    private let lock = NSLock()
    var isSet: Bool { lock.withLock { flag } }
    func set() { lock.withLock { flag = true } }
}
