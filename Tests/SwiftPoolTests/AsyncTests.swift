import Glibc
import Testing
import SwiftPool

@Suite("Submit, callbacks and async")
struct AsyncTests {
    @Test func submitReturnsAHandleThatWaitsWithATimeout() throws {
        let pool = ProcessPool(.init(workerCount: 1))
        let h = try pool.submit(UInt32(1)) { (s: UInt32) -> UInt32 in usleep(300_000); return s + 1 }
        #expect(h.wait(timeout: .milliseconds(10)) == false)
        #expect(h.isDone == false)
        #expect(try h.get() == 2)
        #expect(h.isDone)
    }

    @Test func callbacksRunInTheParentWhenTheTaskEnds() async throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let (stream, cont) = AsyncStream<String>.makeStream()
        _ = try pool.submit(20, { $0 + 1 }, onSuccess: { v in cont.yield("ok \(v) in \(getpid())") })
        _ = try pool.submit(0, { (_: Int) -> Int in raise(SIGSEGV); return 0 },
                            onFailure: { e in cont.yield("failed \(e.code)") })
        var seen: [String] = []
        for await s in stream {
            seen.append(s)
            if seen.count == 2 { break }
        }
        #expect(seen.contains("ok 21 in \(getpid())"))
        #expect(seen.contains("failed crashed(signal: Optional(11), exitStatus: nil)"))
    }

    @Test func cancellingAHandleKillsTheRunningTask() throws {
        let pool = ProcessPool(.init(workerCount: 1))
        let h = try pool.submit(UInt32(60)) { sleep($0) }
        usleep(100_000)
        h.cancel()
        #expect(throws: ProcessPoolError(.cancelled, taskIndex: 0)) { _ = try h.get() }
    }

    @Test func runReturnsTheValueToAsyncCode() async throws {
        let pool = ProcessPool(.init(workerCount: 1))
        let v = try await pool.run { 6 * 7 }
        #expect(v == 42)
        let pid = try await pool.run { getpid() }
        #expect(pid != getpid())
    }

    @Test func cancellingTheSwiftTaskKillsTheWorker() async throws {
        let pool = ProcessPool(.init(workerCount: 1))
        let task = Task { try await pool.run { sleep(60) } }
        try await Task.sleep(for: .milliseconds(150))
        let started = ContinuousClock.now
        task.cancel()
        await #expect(throws: ProcessPoolError(.cancelled, taskIndex: 0)) { _ = try await task.value }
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}

@Suite("Async streams")
struct AsyncStreamTests {
    @Test func mapStreamYieldsEveryResultInOrder() async throws {
        let pool = ProcessPool(.init(workerCount: 2))
        var expected = 0
        for await r in try pool.mapStream(0..<20_000, chunkSize: 500, { $0 &* 3 }) {
            #expect(try r.get() == expected * 3)
            expected += 1
        }
        #expect(expected == 20_000)
    }

    @Test func cancellingTheConsumerStopsTheStreamAndItsWorkers() async throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let started = ContinuousClock.now
        let consumer = Task {
            var n = 0
            for await _ in try pool.mapStream(0..<1000, chunkSize: 1, { (_: Int) -> Int in sleep(30); return 0 }) {
                n += 1
            }
            return n
        }
        try await Task.sleep(for: .milliseconds(200))
        consumer.cancel()
        let n = try await consumer.value
        #expect(n < 1000)
        #expect(ContinuousClock.now - started < .seconds(10))
        // the pool serves the next call
        #expect(try pool.map([1, 2, 3]) { $0 * 2 } == [2, 4, 6])
    }
}
