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
                            onFailure: { e in cont.yield("failed: \(e)") })
        var seen: [String] = []
        for await s in stream {
            seen.append(s)
            if seen.count == 2 { break }
        }
        #expect(seen.contains("ok 21 in \(getpid())"))
        #expect(seen.contains("failed: worker crashed with signal 11 (task 0)"))
    }

    @Test(.timeLimit(.minutes(1))) func cancellingAHandleKillsTheRunningTask() throws {
        let counters = SharedCounters()
        let pool = ProcessPool(.init(workerCount: 1))
        let h = try pool.submit(UInt32(60)) { (s: UInt32) -> UInt32 in counters.base[0] = Int(getpid()); return sleep(s) }
        while counters[0] == 0 { usleep(1_000) }
        h.cancel()
        #expect(throws: ProcessPoolError(.cancelled, taskIndex: 0)) { _ = try h.get() }
        #expect(processGone(counters[0]))
    }

    @Test func runReturnsTheValueToAsyncCode() async throws {
        let pool = ProcessPool(.init(workerCount: 1))
        let v = try await pool.run { 6 * 7 }
        #expect(v == 42)
        let pid = try await pool.run { getpid() }
        #expect(pid != getpid())
    }

    @Test(.timeLimit(.minutes(1))) func cancellingTheSwiftTaskKillsTheWorker() async throws {
        let counters = SharedCounters()
        let pool = ProcessPool(.init(workerCount: 1))
        let task = Task { try await pool.run { counters.base[0] = Int(getpid()); sleep(60) } }
        while counters[0] == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let started = ContinuousClock.now
        task.cancel()
        await #expect(throws: ProcessPoolError(.cancelled, taskIndex: 0)) { _ = try await task.value }
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(processGone(counters[0]))
    }
}

@Suite("Async streams")
struct AsyncStreamTests {
    @Test func anUnorderedStreamYieldsResultsAsTheyEnd() async throws {
        let pool = ProcessPool(.init(workerCount: 2))
        var seen: [Int] = []
        for await r in try pool.mapStream(0..<40, chunkSize: 1, ordered: false, { (x: Int) -> Int in
            if x == 0 { usleep(500_000) } // the first input ends last
            return x
        }) {
            seen.append(try r.get())
        }
        #expect(Set(seen) == Set(0..<40))
        #expect(seen.count == 40)
        #expect(seen.first != 0 && seen != seen.sorted())
    }

    @Test func mapStreamYieldsEveryResultInOrder() async throws {
        let pool = ProcessPool(.init(workerCount: 2))
        var expected = 0
        for await r in try pool.mapStream(0..<20_000, chunkSize: 500, { $0 &* 3 }) {
            #expect(try r.get() == expected * 3)
            expected += 1
        }
        #expect(expected == 20_000)
    }

    @Test(.timeLimit(.minutes(1))) func cancellingTheConsumerStopsTheStreamAndItsWorkers() async throws {
        let counters = SharedCounters() // [worker id]: the pid running a task
        let pool = ProcessPool(.init(workerCount: 2))
        let consumer = Task {
            var n = 0
            for await _ in try pool.mapStream(0..<1000, chunkSize: 1, { (_: Int) -> Int in
                counters.base[ProcessPool.currentWorkerID ?? 9] = Int(getpid())
                sleep(30)
                return 0
            }) {
                n += 1
            }
            return n
        }
        while counters[0] == 0 || counters[1] == 0 { try await Task.sleep(for: .milliseconds(1)) }
        // Timed from the cancel: the tasks sleep 30 s, so ending well before proves they
        // were not waited for (the start-up before it depends on the parallel suite's load).
        let started = ContinuousClock.now
        consumer.cancel()
        let n = try await consumer.value
        #expect(n <= 1) // every task sleeps 30 s: at most the cancellation itself is yielded
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(processGone(counters[0]) && processGone(counters[1]))
        // the pool serves the next call
        #expect(try await pool.map([1, 2, 3]) { $0 * 2 } == [2, 4, 6])
    }
}
