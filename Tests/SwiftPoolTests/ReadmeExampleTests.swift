import Logging
import Testing
import SwiftPool

struct Rejected: Error, Codable { var id: Int }

/// The README's example, kept compiling and true.
@Test func readmeExampleWorks() async throws {
    let pool = ProcessPool(.init(workerCount: 2, taskTimeout: .seconds(5)))
    let squares = try await pool.map(Array(0..<1_000_000)) { $0 * $0 }       // ordered, chunked for you
    let shouted = try await pool.map(["a", "é🙂"]) { $0.uppercased() }          // strings, arrays, Codable
    let results = try pool.mapResults([1, 2, 0]) { (x: Int) throws -> Int in    // one failure hides nothing
        if x == 0 { throw Rejected(id: x) }
        return 100 / x
    }                                                                          // [.success(100), .success(50), .failure(Rejected(id: 0))]
    let first = try pool.imap(sequence(first: 1) { $0 + 1 }, { (n: Int) in n * n }).prefix(4) // endless input, read as needed
        .map { try $0.get() }
    let handle = try pool.submit(21, { $0 * 2 }, onSuccess: { print($0) })     // apply_async with a callback
    let answer = try await pool.run { 6 * 7 }                                  // cancelling the Task kills the worker

    #expect(squares[999_999] == 999_999 * 999_999)
    #expect(shouted == ["A", "É🙂"])
    #expect(try results[0].get() == 100 && (try results[1].get()) == 50)
    #expect {
        try results[2].get()
    } throws: { error in
        // Codable: it comes back as itself
        (error as? Rejected)?.id == 0
    }
    #expect(first == [1, 4, 9, 16])
    #expect(try handle.get() == 42)
    #expect(answer == 42)
}

/// The README's "Watching a pool" example, with a real logger and real files.
@Test func readmeWatchingExampleWorks() throws {
    let logger = Logger(label: "readme")
    let files = (0..<20).map { "/proc/self/stat\($0 % 2 == 0 ? "" : "us")" }
    @Sendable func sha256(of path: String) throws -> Int { path.utf8.reduce(0) { $0 &* 31 &+ Int($1) } }
    let pool = ProcessPool(.init(insights: true,                  // time every task and hook
                                 workerOutput: .logger(logger),   // print() in a task → the Logger
                                 logger: logger))                 // crashes, timeouts, replacements
    let hashes = try pool.map(files, progress: .bar("hashing")) { try sha256(of: $0) }
    print(pool.insights)                                          // per worker: start-up, working, waiting, slowest tasks
    #expect(hashes == (try files.map(sha256)))
    #expect(pool.insights.workers.reduce(0) { $0 + $1.tasksDone } == 20)
}
