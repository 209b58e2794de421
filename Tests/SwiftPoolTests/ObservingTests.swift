import Glibc
import InMemoryLogging
import Logging
import MetricsTestKit
import Synchronization
import Testing
@testable import SwiftPool

/// Progress reports as a handler collects them.
final class ProgressLog: @unchecked Sendable {
    private let lock = Mutex<[MapProgress]>([])
    func add(_ p: MapProgress) { lock.withLock { $0.append(p) } }
    var all: [MapProgress] { lock.withLock { $0 } }
}

/// Lines as a `.lines` handler collects them.
final class LineLog: @unchecked Sendable {
    private let lock = Mutex<[WorkerOutputLine]>([])
    func add(_ l: WorkerOutputLine) { lock.withLock { $0.append(l) } }
    var all: [WorkerOutputLine] { lock.withLock { $0 } }
}

/// Waits until `condition` holds (events come from the pool's supervisor thread).
func eventually(within limit: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(5000)
    }
    return condition()
}

@Suite struct ProgressTests {
    @Test func mapReportsProgressWhileItRunsAndTheFinalCountAtTheEnd() throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let log = ProgressLog()
        let out = try pool.map(Array(0..<120), chunkSize: 1, progress: .every(.milliseconds(5)) { log.add($0) }) {
            (x: Int) -> Int in
            usleep(2000)
            return x
        }
        #expect(out == Array(0..<120))
        let seen = log.all
        #expect(seen.count >= 3, "updates while the map ran, not only at its end")
        #expect(seen.last == MapProgress(done: 120, failed: 0, total: 120, elapsed: seen.last!.elapsed))
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.done <= $1.done && $0.elapsed <= $1.elapsed })
        #expect(seen.dropLast().allSatisfy { $0.done < 120 } || seen.count >= 2)
    }

    @Test func failuresAreCountedAndEveryCallReportsItsEnd() async throws {
        let pool = ProcessPool(.init(workerCount: 2))
        let log = ProgressLog()
        let results = try pool.mapResults(Array(0..<50), progress: .every { log.add($0) }) { (x: Int) -> Int in
            if x % 10 == 3 { raise(SIGSEGV) }
            return x
        }
        #expect(results.filter { (try? $0.get()) == nil }.count == 5)
        #expect(log.all.last.map { ($0.done, $0.failed, $0.total) } ?? (0, 0, 0) == (50, 5, 50))

        let asyncLog = ProgressLog()
        let squares = try await pool.map(Array(0..<64), chunkSize: 1,
                                         progress: .every(.milliseconds(5)) { asyncLog.add($0) }) { (x: Int) -> Int in
            usleep(3000)
            return x * x
        }
        #expect(squares.count == 64)
        // In between, a child task polls (how often depends on the machine's load).
        #expect(asyncLog.all.last?.done == 64)
        #expect(zip(asyncLog.all, asyncLog.all.dropFirst()).allSatisfy { $0.done <= $1.done })

        let lazyLog = ProgressLog()
        let lazy = try pool.imap(Array(0..<300), chunkSize: 30, progress: .every { lazyLog.add($0) }) { (x: Int) in x + 1 }
        #expect(lazy.compactMap { try? $0.get() } == Array(1...300))
        #expect(lazyLog.all.last?.done == 300)
        #expect(lazyLog.all.last?.total == 300)

        let emptyLog = ProgressLog()
        _ = try await pool.map([Int](), progress: .every { emptyLog.add($0) }) { $0 }
        #expect(emptyLog.all.map(\.done) == [0])
    }

    @Test func theBarShowsCountPercentRateAndTimeLeft() {
        let p = MapProgress(done: 90_000, failed: 3, total: 200_000, elapsed: .seconds(2))
        #expect(ProgressBar.render(p, label: "hashing", barWidth: 10) ==
            "hashing  45% |████░░░░░░| 90,000/200,000 [0:02<0:02, 45.0k/s, 3 failed]")
        #expect(ProgressBar.render(p, label: "", barWidth: 0) == " 45% 90,000/200,000 [0:02<0:02, 45.0k/s, 3 failed]")
        let open = MapProgress(done: 1234, failed: 0, total: nil, elapsed: .seconds(3723))
        #expect(ProgressBar.render(open, label: "x", barWidth: 10) == "x 1,234 [1:02:03, 0.3/s]")
    }

    @Test func theBarWritesPlainLinesWhenNotATerminal() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let bar = ProgressBar(label: "files", fd: fds[1])
        #expect(!bar.isTerminal)
        bar.draw(MapProgress(done: 1, failed: 0, total: 2, elapsed: .seconds(1)))
        bar.draw(MapProgress(done: 2, failed: 0, total: 2, elapsed: .seconds(2)))
        close(fds[1])
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = read(fds[0], &buf, buf.count)
        close(fds[0])
        let text = String(decoding: buf.prefix(max(0, n)), as: UTF8.self)
        #expect(text == "files  50% 1/2 [0:01<0:01, 1.0/s]\nfiles 100% 2/2 [0:02, 1.0/s]\n")
    }
}

@Suite struct InsightsTests {
    @Test func insightsTellWhereTheTimeWentAndWhichTasksWereSlowest() throws {
        let pool = ProcessPool(.init(workerCount: 2, workerInit: { _ in usleep(10_000) }, insights: true))
        let delays = (0..<40).map { $0 == 17 ? 60 : $0 == 31 ? 40 : 1 }
        _ = try pool.map(delays) { (ms: Int) -> Int in
            usleep(UInt32(ms * 1000))
            return ms
        }
        let insights = pool.insights
        #expect(insights.workers.count == 2)
        #expect(insights.workers.reduce(0) { $0 + $1.tasksDone } == 40)
        #expect(insights.workers.allSatisfy { $0.processes == 1 && $0.initHook >= Duration.milliseconds(10) })
        let working = insights.workers.reduce(Duration.zero) { $0 + $1.working }
        #expect(working >= Duration.milliseconds(138))
        let slowest = insights.slowestTasks
        #expect(slowest.first?.task.taskIndex == 17)
        #expect(slowest.dropFirst().first?.task.taskIndex == 31)
        #expect((slowest.first?.task.duration ?? Duration.zero) >= Duration.milliseconds(60))
        let table = insights.description
        #expect(table.contains("worker") && table.contains("working") && table.contains("#17"))
    }

    @Test func withoutInsightsOnlyCountsAreKept() throws {
        let pool = ProcessPool(.init(workerCount: 1))
        _ = try pool.map(Array(0..<10)) { $0 }
        let w = try #require(pool.insights.workers.first)
        #expect(w.tasksDone == 10)
        #expect(w.working == .zero && w.slowestTasks.isEmpty)
    }
}

@Suite struct WorkerOutputTests {
    @Test func everyLineAWorkerPrintsReachesTheHandlerOnce() throws {
        let lines = LineLog()
        let pool = ProcessPool(.init(workerCount: 2, workerOutput: .lines { lines.add($0) }))
        _ = try pool.map(Array(0..<100)) { (x: Int) -> Int in
            print("line \(x)")
            print("then \(x)")
            let problem = "problem \(x)\n"
            _ = problem.withCString { write(2, $0, strlen($0)) }
            return x
        }
        pool.close()
        pool.join()
        #expect(eventually { lines.all.count >= 300 })
        let out = lines.all.filter { $0.stream == .stdout }.map(\.text)
        let err = lines.all.filter { $0.stream == .stderr }.map(\.text)
        #expect(out.sorted() == ((0..<100).map { "line \($0)" } + (0..<100).map { "then \($0)" }).sorted())
        #expect(err.sorted() == (0..<100).map { "problem \($0)" }.sorted())
        // In order per worker: a worker runs one task at a time, so each of its "line"
        // is followed by the "then" of the same task.
        for w in 0..<2 {
            let mine = lines.all.filter { $0.worker == w && $0.stream == .stdout }.map(\.text)
            #expect(mine.count % 2 == 0)
            for k in stride(from: 0, to: mine.count - 1, by: 2) {
                #expect(mine[k].dropFirst(5) == mine[k + 1].dropFirst(5) && mine[k].hasPrefix("line"))
            }
        }
    }

    @Test func linesGoToALoggerWithTheirWorker() throws {
        let handler = InMemoryLogHandler()
        let logger = Logger(label: "workers") { _ in handler }
        let pool = ProcessPool(.init(workerCount: 1, workerOutput: .logger(logger)))
        _ = try pool.map(["a", "b"]) { (s: String) -> String in
            print("hello \(s)")
            return s
        }
        pool.close()
        pool.join()
        #expect(eventually { handler.entries.count >= 2 })
        #expect(handler.entries.map(\.message.description).sorted() == ["hello a", "hello b"])
        #expect(handler.entries.allSatisfy { $0.level == .info && $0.metadata["worker"] == "0" })
    }
}

@Suite struct EventsTests {
    @Test func poolEventsAreLoggedAtTheirLevels() throws {
        var handler = InMemoryLogHandler()
        handler.logLevel = .debug
        let logger = Logger(label: "pool") { [handler] _ in handler }
        let pool = ProcessPool(.init(workerCount: 1, keepAlive: true, taskTimeout: .milliseconds(300), logger: logger))
        let r = try pool.mapResults([0, 1, 2]) { (x: Int) -> Int in
            if x == 1 { raise(SIGSEGV) }
            if x == 2 { sleep(30) }
            return x
        }
        #expect(code(r[1]) == .crashed(signal: SIGSEGV, exitStatus: nil))
        #expect(code(r[2]) == .timedOut)
        pool.close()
        pool.join()
        let entries = { handler.entries.map { ($0.level, $0.message.description) } }
        // Every process that started has ended, each with one event (the last one exits,
        // or is killed when the pool goes before its start is through).
        let starts: Set = ["worker started", "worker replaced"]
        let ends: Set = ["worker exited", "worker crashed", "task timed out; its worker was killed",
                         "worker killed: the pool was terminated"]
        let count = { (names: Set<String>) in entries().filter { names.contains($0.1) }.count }
        #expect(eventually { count(starts) == count(ends) }, "\(entries())")
        let crash = handler.entries.first { $0.message.description == "worker crashed" }
        #expect(crash?.level == .warning)
        #expect(crash?.metadata["signal"] == "\(SIGSEGV)")
        #expect(entries().contains { $0 == (.warning, "task timed out; its worker was killed") })
        #expect(entries().contains { $0 == (.debug, "worker started") })
        #expect(entries().filter { $0 == (.debug, "worker replaced") }.count == 2)
    }

    @Test func countsGoToTheMetricsFactory() throws {
        let metrics = TestMetrics()
        let pool = ProcessPool(.init(workerCount: 2, label: "hashing", metricsFactory: metrics))
        let r = try pool.mapResults(Array(0..<40)) { (x: Int) -> Int in
            if x == 5 { raise(SIGKILL) }
            if x == 6 { throw CancellationError() }
            return x
        }
        #expect(r.count == 40)
        let pool_ = [("pool", "hashing")]
        #expect(try metrics.expectCounter("swiftpool_tasks_total", pool_).totalValue == 40)
        #expect(try metrics.expectCounter("swiftpool_task_failures_total", pool_ + [("kind", "crashed")]).totalValue == 1)
        #expect(try metrics.expectCounter("swiftpool_task_failures_total", pool_ + [("kind", "thrown")]).totalValue == 1)
        #expect(eventually {
            (try? metrics.expectCounter("swiftpool_worker_events_total", pool_ + [("event", "crashed")]).totalValue) == 1
        })
        pool.close()
        pool.join()
        #expect(eventually {
            (try? metrics.expectMeter("swiftpool_workers_alive", pool_).lastValue) == 0
        })
        let started = try metrics.expectCounter("swiftpool_worker_events_total", pool_ + [("event", "started")])
        #expect(started.totalValue == 3) // two, and the crashed one's replacement
    }
}
