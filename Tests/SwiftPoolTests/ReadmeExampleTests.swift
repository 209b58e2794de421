import Testing
import SwiftPool

/// The README's example, kept compiling and true.
@Test func readmeExampleWorks() async throws {
    enum MyError: Error { case zero }
    let pool = ProcessPool(.init(workerCount: 2, taskTimeout: .seconds(5)))
    let squares = try pool.map(Array(0..<1_000_000)) { $0 * $0 }             // ordered, chunked for you
    let results = try pool.mapResults([1, 2, 0]) { (x: Int) throws -> Int in    // one failure hides nothing
        if x == 0 { throw MyError.zero }
        return 100 / x
    }                                                                          // [.success(100), .success(50), .failure(…)]
    let lazy = try pool.imap(sequence(first: 1) { $0 + 1 }, { (n: Int) in n * n }) // endless input, read as needed
    let handle = try pool.submit(21, { $0 * 2 }, onSuccess: { print($0) })     // apply_async with a callback
    let answer = try await pool.run { 6 * 7 }                                  // cancelling the Task kills the worker

    #expect(squares[999_999] == 999_999 * 999_999)
    #expect(try results[0].get() == 100 && (try results[1].get()) == 50)
    #expect {
        try results[2].get()
    } throws: { error in
        // a local type: its name is qualified by the function that declares it
        guard let e = error as? ProcessPoolError, case let .userError(type, message) = e.code else { return false }
        return type.hasSuffix(".MyError") && message == "zero" && e.taskIndex == 2
    }
    #expect(lazy.prefix(4).map { try? $0.get() } == [1, 4, 9, 16])
    #expect(try handle.get() == 42)
    #expect(answer == 42)
}
