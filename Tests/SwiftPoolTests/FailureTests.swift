import Glibc
import Testing
import SwiftPool

@Suite("Failures")
struct FailureTests {
    @Test func aCrashFailsOnlyItsTaskAndThePoolServesTheNextMap() throws {
        let pool = ProcessPool(.init(workerCount: 2, keepAlive: true))
        let results = try pool.mapResults(Array(0..<1000)) { (x: Int) -> Int in
            if x == 500 { raise(SIGSEGV) }
            return x * x
        }
        let failures = results.enumerated().filter { if case .failure = $0.element { return true } else { return false } }
        #expect(failures.count == 1)
        #expect(failures.first?.offset == 500)
        if case let .failure(e) = results[500] {
            #expect(e.code == .crashed(signal: SIGSEGV, exitStatus: nil))
            #expect(e.taskIndex == 500)
        }
        #expect(results.enumerated().allSatisfy { i, r in i == 500 || (try? r.get()) == i * i })
        #expect(try pool.map(Array(0..<100)) { $0 + 1 } == Array(1...100))
    }

    @Test func anExitingTaskReportsItsStatus() throws {
        let pool = ProcessPool(.init(workerCount: 1))
        #expect(throws: ProcessPoolError(.crashed(signal: nil, exitStatus: 3), taskIndex: 0)) {
            _ = try pool.apply(0) { (_: Int) -> Int in _exit(3) }
        }
    }

    @Test func aTaskPastItsTimeoutIsKilledAndReported() throws {
        let pool = ProcessPool(.init(workerCount: 2, taskTimeout: .milliseconds(100)))
        let results = try pool.mapResults([0, 1, 2, 3], chunkSize: 1) { (x: Int) -> Int in
            if x == 2 { sleep(30) }
            return x
        }
        #expect(try results[0].get() == 0)
        #expect(try results[3].get() == 3)
        if case let .failure(e) = results[2] { #expect(e.code == .timedOut) } else { Issue.record("no timeout") }
    }

    @Test func callsAfterCloseThrowClosed() throws {
        let pool = ProcessPool(.init(workerCount: 1))
        pool.close()
        #expect(throws: ProcessPoolError(.closed)) { _ = try pool.map([1, 2]) { $0 } }
        #expect(throws: ProcessPoolError(.closed)) { _ = try pool.submit(1) { $0 } }
        pool.join()
    }

    @Test func workersThatCannotStartBreakTheCallWithAClearError() throws {
        struct InitFailed: Error {}
        let pool = ProcessPool(.init(workerCount: 2, workerInit: { _ in throw InitFailed() }))
        // Either the call finds the pool already broken, or its tasks fail with it.
        let error = #expect(throws: ProcessPoolError.self) { _ = try pool.map([1, 2, 3]) { $0 } }
        #expect(error?.code == .workerInitFailed)
    }
}
