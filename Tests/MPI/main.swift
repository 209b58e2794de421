// The program the MPI tests run under `mpirun` (Tests/MPI/run.sh, Tests/MPI/hosts.sh):
// every rank runs it; rank 0 checks one scenario, named by the first argument, prints
// "PASS <scenario>" or "FAIL <scenario>: why" and exits 0 or 1.
import Foundation
import SwiftPool
import SwiftPoolMPI

struct Reading: Codable, Equatable {
    var sensor: String
    var values: [Double]
}

/// The MPI rank this process (or the rank whose worker it is) runs as: mpirun tells
/// each rank, and forked workers inherit the environment.
func myRank() -> Int { Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"] ?? "") ?? -1 }

/// The rank a scenario makes misbehave (a task there kills or stops its rank).
let badRank = 2

enum Jobs {
    static let square = try! PoolFunction.named("square") { (x: Int) in x &* x }
    static let upper = try! PoolFunction.named("upper") { (s: String) in s.uppercased() }
    static let scale = try! PoolFunction.named("scale") { (r: Reading) in Reading(sensor: r.sensor, values: r.values.map { $0 * 2 }) }
    static let crashAt777 = try! PoolFunction.named("crashAt777") { (x: Int) -> Int in
        if x == 777 { raise(SIGSEGV) }
        return x + 1
    }
    static let throwAt13 = try! PoolFunction.named("throwAt13") { (x: Int) -> Int in
        if x == 13 { throw ProcessPoolError(.userError(typeName: "Unlucky", message: "13")) }
        return x
    }
    /// Kills its whole rank (the worker's parent) when it runs on the bad rank.
    static let killBadRank = try! PoolFunction.named("killBadRank") { (x: Int) -> Int in
        if myRank() == badRank { kill(getppid(), SIGKILL); sleep(5) }
        usleep(2_000)
        return x * 3
    }
    /// Stops its whole rank (SIGSTOP: alive but silent) when it runs on the bad rank.
    static let stopBadRank = try! PoolFunction.named("stopBadRank") { (x: Int) -> Int in
        if myRank() == badRank { kill(getppid(), SIGSTOP); sleep(5) }
        usleep(2_000)
        return x * 3
    }
    static let slow = try! PoolFunction.named("slow") { (x: Int) -> Int in
        usleep(20_000)
        return x
    }
    /// Defined with another type on the bad rank in the "mismatch" scenario.
    static let differs: any PoolDefinition = ProcessInfo.processInfo.environment["MISMATCH"] != nil && myRank() == badRank
        ? try! PoolFunction.named("differs") { (s: String) in s }
        : try! PoolFunction.named("differs") { (x: Int) in x }
}

nonisolated(unsafe) var failures: [String] = []
func check(_ ok: Bool, _ what: @autoclosure () -> String) { if !ok { failures.append(what()) } }

let scenario = CommandLine.arguments.dropFirst().first ?? "basic"
let rankTimeout = Duration.seconds(Double(ProcessInfo.processInfo.environment["RANK_TIMEOUT"] ?? "") ?? 3)
var configuration = MPIPoolConfiguration(local: .init(workerCount: 2, keepAlive: true), rankTimeout: rankTimeout,
                                         heartbeatInterval: .milliseconds(100))
if scenario.hasSuffix("rerun") { configuration.onLostRank = .rerun }

let pool: MPIPool
do {
    pool = try MPIPool.start(Jobs.square, Jobs.upper, Jobs.scale, Jobs.crashAt777, Jobs.throwAt13, Jobs.killBadRank,
                             Jobs.stopBadRank, Jobs.slow, Jobs.differs, configuration: configuration)
} catch let e as MPIPoolError {
    // Only rank 0 gets here (the others leave inside start).
    if scenario == "mismatch" && e.code == .definitionsDiffer && e.message.contains("\"differs\"")
        && e.message.contains("rank \(badRank)") {
        print("PASS mismatch: \(e.message)")
        exit(0)
    }
    print("FAIL \(scenario): the pool did not start: \(e)")
    exit(1)
}
if scenario == "mismatch" {
    print("FAIL mismatch: the pool started although rank \(badRank) defines \"differs\" with another type")
    exit(1)
}

func elapsed(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    return (ContinuousClock.now - start).seconds
}

extension Duration { var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 } }

do {
    check(pool.ranks.count == Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] ?? "") ?? -1,
          "ranks: \(pool.ranks)")
    switch scenario {
    case "basic":
        let n = 200_000
        let ys = try pool.map(Jobs.square, Array(0..<n))
        check(ys == (0..<n).map { $0 * $0 }, "square over \(n) Ints")
        let words = (0..<5_000).map { "word-\($0)-abcdefghij" }
        check(try pool.map(Jobs.upper, words) == words.map { $0.uppercased() }, "upper over strings")
        let readings = (0..<300).map { Reading(sensor: "s\($0)", values: (0..<$0 % 50).map(Double.init)) }
        check(try pool.map(Jobs.scale, readings) == readings.map { Reading(sensor: $0.sensor, values: $0.values.map { $0 * 2 }) },
              "Codable structs")
        // A crash fails its own task only, tagged with the rank and host that ran it.
        let results = try pool.mapResults(Jobs.crashAt777, Array(0..<2_000))
        for (i, r) in results.enumerated() where i != 777 {
            if (try? r.get()) != i + 1 { failures.append("crash: task \(i) is \(r)"); break }
        }
        if case let .failure(e as ProcessPoolError) = results[777] {
            check(e.code == .crashed(signal: SIGSEGV, exitStatus: nil) && e.taskIndex == 777 && e.rank != nil
                  && e.host != nil, "crash error: \(e)")
            print("crash error as the caller sees it: \(e)")
        } else {
            failures.append("task 777: \(results[777])")
        }
        do {
            _ = try pool.map(Jobs.crashAt777, Array(700..<800))
            failures.append("map over a crashing task did not throw")
        } catch let e as ProcessPoolError {
            check(e.taskIndex == 77 && e.rank != nil, "map's error: \(e)")
        }
        // The error a task throws comes back as itself.
        let thrown = try pool.mapResults(Jobs.throwAt13, Array(0..<40))
        if case let .failure(e as ProcessPoolError) = thrown[13] {
            check(e.code == .userError(typeName: "Unlucky", message: "13") && e.taskIndex == 13, "thrown: \(e)")
        } else {
            failures.append("task 13 did not fail: \(thrown[13])")
        }
        check(thrown.enumerated().allSatisfy { $0.offset == 13 || (try? $0.element.get()) == $0.offset }, "throwAt13 others")
        // Lazy maps over a sequence read as they go, in order or as chunks end.
        let lazy = try pool.imap(Jobs.square, (0..<50_000).lazy.map { $0 }, chunkSize: 100).map { try $0.get() }
        check(lazy == (0..<50_000).map { $0 * $0 }, "imap in order")
        let unordered = try pool.imapUnordered(Jobs.square, 0..<50_000, chunkSize: 100).map { try $0.get() }
        check(unordered.sorted() == (0..<50_000).map { $0 * $0 }, "imapUnordered")
        // Submitted tasks, many at once, and their callbacks.
        let counter = Counter()
        let tasks = try (0..<64).map { i in try pool.submit(Jobs.square, i, onEnd: { r in if (try? r.get()) == i * i { counter.add() } }) }
        check(try tasks.enumerated().allSatisfy { try $0.element.get() == $0.offset * $0.offset }, "submit")
        check(counter.value == 64, "submit callbacks: \(counter.value) of 64")
        check(try pool.apply(Jobs.upper, "abc") == "ABC", "apply")
        // Every rank did some of the work.
        check(pool.lostRanks.isEmpty, "lost ranks: \(pool.lostRanks)")
        // A function the ranks did not agree on at start-up, or a closure: a clear error.
        do {
            _ = try pool.map(PoolFunction.named("notOnOtherRanks") { (x: Int) in x }, [1])
            failures.append("a function defined after start ran")
        } catch let e as ProcessPoolError {
            check("\(e)".contains("defined after MPIPool.start"), "function defined late: \(e)")
        }
        do {
            _ = try pool.map(ProcessPool().register { (x: Int) in x }, [1])
            failures.append("a closure ran")
        } catch let e as ProcessPoolError {
            check("\(e)".contains("closure"), "closure: \(e)")
        }
    case "lost-fail", "lost-rerun", "hang-fail":
        let function = scenario.hasPrefix("hang") ? Jobs.stopBadRank : Jobs.killBadRank
        let n = 3_000
        var results: [Result<Int, any Error>] = []
        let seconds = try elapsed { results = try pool.mapResults(function, Array(0..<n)) }
        let lost = results.enumerated().compactMap { i, r -> ProcessPoolError? in
            if case let .failure(e as ProcessPoolError) = r, case .rankLost = e.code { return e } else { return nil }
        }
        let right = results.enumerated().filter { (try? $0.element.get()) == $0.offset * 3 }.count
        print("\(scenario): \(right) of \(n) results, \(lost.count) tasks lost with rank \(badRank), in \(String(format: "%.1f", seconds)) s")
        if let e = lost.first { print("lost-rank error as the caller sees it: \(e)") }
        check(seconds < rankTimeout.seconds + 10, "took \(seconds) s")
        check(pool.lostRanks == [badRank], "lost ranks: \(pool.lostRanks)")
        if scenario.hasSuffix("rerun") {
            check(right == n, "rerun: \(right) of \(n) right")
        } else {
            check(!lost.isEmpty && lost.allSatisfy { $0.rank == badRank && $0.host != nil }, "lost: \(lost.prefix(3))")
            check(right + lost.count == n, "\(right) right + \(lost.count) lost != \(n)")
            // map throws the rank's error.
            // The pool goes on with the ranks left.
        }
        let after = try pool.map(Jobs.square, Array(0..<10_000))
        check(after == (0..<10_000).map { $0 * $0 }, "a map after the loss")
    case "cut":
        // The test cuts this job's link to one host once the marker file exists.
        let marker = ProcessInfo.processInfo.environment["CUT_MARKER"] ?? "/tmp/swiftpool-mpi-cut"
        _ = try pool.map(Jobs.square, Array(0..<1000)) // every rank has answered
        _ = FileManager.default.createFile(atPath: marker, contents: Data())
        var results: [Result<Int, any Error>] = []
        let seconds = try elapsed { results = try pool.mapResults(Jobs.slow, Array(0..<3_000)) }
        let lost = results.compactMap { r -> ProcessPoolError? in
            if case let .failure(e as ProcessPoolError) = r, case .rankLost = e.code { return e } else { return nil }
        }
        print("cut: \(lost.count) tasks lost in \(String(format: "%.1f", seconds)) s; lost ranks \(pool.lostRanks)")
        if let e = lost.first { print("lost-rank error as the caller sees it: \(e)") }
        check(!lost.isEmpty && pool.lostRanks == [badRank], "no rank reported lost")
        check(seconds < rankTimeout.seconds + 60, "took \(seconds) s")
    default:
        failures.append("no scenario \(scenario)")
    }
} catch {
    failures.append("threw \(error)")
}

if failures.isEmpty {
    print("PASS \(scenario) on \(pool.ranks.map { "\($0.rank)@\($0.host)" }.joined(separator: " "))")
} else {
    print("FAIL \(scenario): " + failures.joined(separator: "; "))
}
fflush(nil)
pool.shutdown()
// A job that lost a rank cannot finalize MPI; leaving ends it (mpirun stops the rest).
exit(failures.isEmpty ? 0 : 1)

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
