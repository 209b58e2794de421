// SwiftPoolMPI's rows of the benchmark, run by scripts/bench under
// `mpirun -np 3`: rank 0 drives, ranks 1 and 2 run a pool of one worker each (the 2
// workers of mpi4py.futures beside it):
// tiny (x*x over 1M Int), cpu (96 tasks of 5 ms busy work) and what a crashing task
// does. Prints the rows as bench_pools.py does: name, unit, one value per run.
import Foundation
import SwiftPool
import SwiftPoolMPI

enum Jobs {
    static let square = try! PoolFunction.named("square") { (x: Int) in x &* x }
    static let spin = try! PoolFunction.named("spin") { (us: Int) -> Int in
        let end = ContinuousClock.now + .microseconds(us)
        var n = 0
        while ContinuousClock.now < end { n &+= 1 }
        return n
    }
    static let crashAt500 = try! PoolFunction.named("crashAt500") { (x: Int) -> Int in
        if x == 500 { raise(SIGSEGV) }
        return x &* x
    }
}

let runs = CommandLine.arguments.firstIndex(of: "--runs").map { Int(CommandLine.arguments[$0 + 1]) ?? 5 } ?? 5
let quick = CommandLine.arguments.contains("--quick")
let pool = try MPIPool.start(Jobs.square, Jobs.spin, Jobs.crashAt500,
                             configuration: .init(local: .init(workerCount: 1, keepAlive: true), driverRunsTasks: false))

func row(_ name: String, _ unit: String, _ values: [Double]) {
    print("\(name)\t\(unit)\t" + values.map { String(format: "%.6g", $0) }.joined(separator: ","))
    fflush(nil)
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

let n = 1_000_000
let xs = Array(0..<n)
_ = try pool.map(Jobs.square, xs) // untimed: every rank has started its workers and touched its buffers
row("tiny_mpi_swift", "tasks/s", try (0..<runs).map { _ in
    var ys: [Int] = []
    let s = try seconds { ys = try pool.map(Jobs.square, xs) }
    precondition(ys.count == n && ys[n - 1] == (n - 1) * (n - 1))
    return Double(n) / s
})
let cpuTasks = quick ? 48 : 96
row("cpu_mpi_swift", "tasks/s", try (0..<runs).map { _ in
    var ys: [Int] = []
    let s = try seconds { ys = try pool.map(Jobs.spin, Array(repeating: 5_000, count: cpuTasks)) }
    precondition(ys.count == cpuTasks)
    return Double(cpuTasks) / s
})
var results: [Result<Int, any Error>] = []
let crashSeconds = try seconds { results = try pool.mapResults(Jobs.crashAt500, Array(0..<1000)) }
let kept = results.enumerated().filter { (try? $0.element.get()) == $0.offset * $0.offset }.count
let next = (try? pool.map(Jobs.square, Array(0..<1000))) == (0..<1000).map { $0 * $0 }
let error = results.count > 500 ? { if case let .failure(e) = results[500] { return "\(e)" } else { return "no error" } }() : "?"
print("#behaviour\tcrash_mpi\tSwiftPoolMPI\ttask 500 fails alone with \"\(error)\"; \(kept) of the other 999 results kept; " +
      "\(Int(crashSeconds * 1000)) ms; the next map \(next ? "runs" : "FAILS") and the job goes on")
fflush(nil)
pool.shutdown()
