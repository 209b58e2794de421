// The Swift API's benchmark: the tiny, latency, cpu, keepalive and startup workloads of
// the benchmark on 2 workers. Prints "name<TAB>unit<TAB>run,run,..." lines; Benchmarks/report.py
// takes their medians the same way for every pool and sets them beside the Python pools'.
import ArgumentParser
import Glibc
import Histogram
import SwiftPool

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Busy for `us` microseconds of wall time: CPU-bound work of a known length.
@inline(never)
func spin(_ us: Int) -> Int {
    let end = now() + Double(us) / 1e6
    var n = 1 // at least one: a run preempted past its end still ran (results are checked > 0)
    while now() < end { n &+= 1 }
    return n
}

/// Task durations (us) of each schedule workload: the same generator and seed as
/// Benchmarks/C and Benchmarks/Python.
func scheduleDurations(_ kind: String) -> [Int] {
    var seed: UInt64 = 42
    func next() -> UInt64 {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        return seed
    }
    switch kind {
    case "pareto": // 5,000 tasks, Pareto alpha 1.5 from 20 us, capped at 20 ms
        return (0..<5000).map { _ in
            let u = (Double(next() >> 11) + 0.5) / 9007199254740992.0
            return min(Int(20.0 * pow(u, -1.0 / 1.5)), 20000)
        }
    case "one_slow": // 1,000 tasks: the first 300 ms, the others 200 us
        return [300_000] + Array(repeating: 200, count: 999)
    default: // skew: 2,000 tasks, 2% of 10 ms, the others 10 us
        return (0..<2000).map { _ in (next() >> 33) % 50 == 0 ? 10_000 : 10 }
    }
}

func report(_ name: String, _ values: [Double], _ unit: String) {
    print("\(name)\t\(unit)\t" + values.map { "\($0)" }.joined(separator: ","))
    fflush(nil)
}


/// The value workloads: strings, `Codable` structs, arrays out, byte buffers, on the
/// default pool (keep-alive off).
func values(workers: Int, runs: Int) throws {
    struct Point: Codable { var x: Double, y: Double, name: String }
    let pool = ProcessPool(.init(workerCount: workers))
    let words = (0..<200_000).map { "word-\($0)-é" }
    let points = (0..<200_000).map { Point(x: Double($0) * 0.5, y: Double($0) * 0.25, name: "p\($0)") }
    var strings: [Double] = [], structs: [Double] = [], arrays: [Double] = [], bytes: [Double] = []
    let buffers = (0..<64).map { [UInt8](repeating: UInt8($0), count: 1 << 20) }
    for _ in 0..<runs {
        var t0 = now()
        let upper = try pool.map(words) { $0.uppercased() }
        strings.append(Double(words.count) / (now() - t0))
        precondition(upper.count == words.count && upper[199_999] == words[199_999].uppercased())

        t0 = now()
        let moved = try pool.map(points) { Point(x: $0.x * 2, y: $0.y + 1, name: $0.name.uppercased()) }
        structs.append(Double(points.count) / (now() - t0))
        precondition(moved.count == points.count && moved[199_999].name == "P199999" && moved[7].x == 7)

        t0 = now()
        let out = try pool.map(Array(repeating: 1000, count: 2000)) { (n: Int) in (0..<n).map { 0.5 * Double($0) } }
        arrays.append(2000 / (now() - t0))
        precondition(out.count == 2000 && out.allSatisfy { $0.count == 1000 && $0[999] == 499.5 })

        t0 = now()
        let flipped = try pool.map(buffers, chunkSize: 1) { (b: [UInt8]) -> [UInt8] in
            var b = b
            b[0] ^= 1
            return b
        }
        bytes.append(2 * 64 * Double(1 << 20) / (now() - t0) / 1e9)
        precondition(zip(flipped, buffers).allSatisfy { $0[0] == $1[0] ^ 1 && $0.count == $1.count })
    }
    report("strings_swift", strings, "tasks/s")
    report("structs_swift", structs, "tasks/s")
    report("arrays_out_swift", arrays, "tasks/s")
    report("bytes_swift", bytes, "GB/s")
}

/// The tiny workload's function, defined by name so that spawned workers (this program,
/// started again) run it too.
let namedSquare = try! PoolFunction.named("bench.square") { (x: Int) in x &* x }
/// The waiting workload: a task that sleeps 1 ms, as IO would.
let sleepOneMs = try! PoolFunction.named("bench.sleep1ms") { (x: Int) -> Int in
    usleep(1000)
    return x
}

@main
struct SwiftPoolBench: ParsableCommand {
    /// Serves when started as a spawned worker (the start-method rows), else runs.
    static func main() {
        ProcessPool.serveIfSpawned(namedSquare, sleepOneMs)
        main(nil)
    }

    static let configuration = CommandConfiguration(
    commandName: "swiftpool-bench", abstract: "SwiftPool's Swift API on the standard workloads.")

    @Option(help: "Runs per figure (at least 3); the report takes their median.") var runs = 5
    @Flag(help: "Fewer calls, for a quick look.") var quick = false
    @Option(help: "Run only this workload (values).") var only: String?

    func run() throws {
        let runs = max(3, self.runs)
        let message = "[Swift API] tiny, latency, cpu, keepalive, values, pareto, one-slow, skew, crash, shared, startup...\n"
        _ = message.withCString { write(2, $0, strlen($0)) }
        let workers = 2
        if only == "values" { return try values(workers: workers, runs: runs) }
        let n = 1_000_000
        let input = Array(0..<n)

        // tiny: keep-alive off (each map forks its workers) and on (a registered function)
        do {
            let pool = ProcessPool(.init(workerCount: workers))
            var rates: [Double] = []
            for _ in 0..<runs {
                let t0 = now()
                let out = try pool.map(input) { $0 &* $0 }
                rates.append(Double(n) / (now() - t0))
                precondition(out.indices.allSatisfy { out[$0] == $0 &* $0 })
            }
            report("tiny_swift", rates, "tasks/s")
        }
        // tiny with insights: every task timed and claimed alone
        do {
            let pool = ProcessPool(.init(workerCount: workers, keepAlive: true, insights: true))
            let square = pool.register { (x: Int) in x &* x }
            _ = try pool.map(square, input)
            var rates: [Double] = []
            for _ in 0..<runs {
                let t0 = now()
                let out = try pool.map(square, input)
                rates.append(Double(n) / (now() - t0))
                precondition(out.count == n)
            }
            precondition(pool.insights.workers.reduce(0) { $0 + $1.tasksDone } == n * (runs + 1))
            report("tiny_insights_swift", rates, "tasks/s")
        }
        do {
            let pool = ProcessPool(.init(workerCount: workers, keepAlive: true))
            let square = pool.register { (x: Int) in x &* x }
            _ = try pool.map(square, input)
            // Plain and observed (a progress handler, called every 100 ms, never per task)
            // alternate, so that both see the same machine.
            var rates: [Double] = [], observed: [Double] = []
            for run in 0..<(8 * runs) { // cheap (a few ms each): more samples against the noise
                let withProgress = (run % 4 == 1 || run % 4 == 2)
                let t0 = now()
                let out = withProgress
                    ? try pool.map(square, input, progress: .every(.milliseconds(100)) { _ in })
                    : try pool.map(square, input)
                let rate = Double(n) / (now() - t0)
                if withProgress { observed.append(rate) } else { rates.append(rate) }
                precondition(out.indices.allSatisfy { out[$0] == $0 &* $0 })
            }
            report("tiny_swift_keepalive", rates, "tasks/s")
            report("tiny_progress_swift", observed, "tasks/s")

            // latency: apply round trips on the warm pool
            let identity = pool.register { (x: Int) in x }
            var p50: [Double] = [], p99: [Double] = []
            for _ in 0..<runs {
                var h = Histogram<UInt64>(highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: .three)
                for i in 0..<(quick ? 2000 : 10_000) {
                    let t0 = now()
                    let r = try pool.apply(identity, i)
                    _ = h.record(UInt64((now() - t0) * 1e9))
                    precondition(r == i)
                }
                p50.append(Double(h.valueAtPercentile(50)) / 1000)
                p99.append(Double(h.valueAtPercentile(99)) / 1000)
            }
            report("latency_swift_p50", p50, "us")
            report("latency_swift_p99", p99, "us")

            // cpu: parallel efficiency against the same work run serially here
            for (label, count, us) in [("cpu_5ms", 64, 5000), ("cpu_50us", quick ? 4000 : 20_000, 50)] {
                let work = pool.register { (u: Int) in spin(u) }
                let args = [Int](repeating: us, count: count)
                _ = try pool.map(work, Array(args.prefix(8)))
                var eff: [Double] = []
                for _ in 0..<runs {
                    let t0 = now()
                    let out = try pool.map(work, args)
                    let wall = now() - t0
                    precondition(out.count == count && out.allSatisfy { $0 > 0 })
                    eff.append(Double(count * us) / 1e6 / (wall * Double(workers)))
                }
                report("\(label)_swift", eff, "efficiency")
            }
            pool.close()
            pool.join()
        }

        // keepalive: 10 maps of 1,000 tiny tasks, workers with a 200 ms init
        for keepAlive in [false, true] {
            let pool = ProcessPool(.init(workerCount: workers, keepAlive: keepAlive,
                                         workerInit: { _ in usleep(200_000) }))
            let f = pool.register { (x: Int) in x &+ 1 }
            let small = Array(0..<1000)
            var ms: [Double] = []
            for _ in 0..<3 { // each run takes seconds: three runs, as the Python pool's
                let t0 = now()
                for _ in 0..<10 {
                    let out = try pool.map(f, small)
                    precondition(out == small.map { $0 + 1 })
                }
                ms.append((now() - t0) * 1000)
            }
            report(keepAlive ? "keepalive_on_swift" : "keepalive_off_swift", ms, "ms")
            pool.close()
            pool.join()
        }

        // schedules: makespan against the ideal (the larger of total work / workers and
        // the longest task) for pareto, one-slow and skew (the same durations as
        // Benchmarks/C and Benchmarks/Python), with the default chunks and chunks of 1.
        do {
            let pool = ProcessPool(.init(workerCount: workers, keepAlive: true))
            let work = pool.register { (u: Int) in spin(u) }
            _ = try pool.map(work, [10, 10])
            for kind in ["pareto", "one_slow", "skew"] {
                let durations = scheduleDurations(kind)
                let ideal = max(Double(durations.reduce(0, +)) / Double(workers), Double(durations.max()!)) / 1e6
                for chunkSize in [nil, 1] as [Int?] {
                    var ratio: [Double] = []
                    for _ in 0..<runs {
                        let t0 = now()
                        let out = try pool.map(work, durations, chunkSize: chunkSize)
                        ratio.append((now() - t0) / ideal)
                        precondition(out.count == durations.count && out.allSatisfy { $0 > 0 })
                    }
                    report("\(kind)_swift\(chunkSize == nil ? "" : "_chunk1")", ratio, "×ideal")
                }
            }

            // crash: task 500 of 1,000 kills its worker
            let t0 = now()
            let results = try pool.mapResults(Array(0..<1000), chunkSize: 1) { (x: Int) -> Int in
                if x == 500 { raise(SIGSEGV) }
                return x * x
            }
            let ms = (now() - t0) * 1000
            let survived = results.filter { (try? $0.get()) != nil }.count
            let next = (try? pool.map(work, [10, 10])) != nil
            var what = "the map returns in \(Int(ms.rounded())) ms; task 500: "
            if case let .failure(e) = results[500] { what += "\((e as? ProcessPoolError)?.code ?? .closed)" }
            what += "; \(survived) of 999 other results kept; next map \(next ? "works" : "fails")"
            print("#behaviour\tcrash\tSwiftPool\t\(what)")
            pool.close()
            pool.join()
        }

        try values(workers: workers, runs: runs)

        // shared: a 1 GiB array in shared memory, summed by the workers a slice each
        do {
            let count = quick ? 1 << 24 : 1 << 27 // 128 MiB or 1 GiB of doubles
            // Keep-alive, as the Python pool is: a fresh worker would first fault the
            // shared pages into its page tables (~1 us a page), which is not the sum.
            let pool = ProcessPool(.init(workerCount: workers, keepAlive: true,
                                         sharedMemoryBytes: count * 8 + (64 << 20)))
            let data = try pool.makeSharedArray(repeating: 1.0, count: count)
            let slices = 16, per = count / slices
            let sumSlice = pool.register { (s: Int) -> Double in
                data.withUnsafeMutableBufferPointer { b in
                    // eight lanes, as numpy's sum does: a plain loop cannot be vectorized
                    let raw = UnsafeRawPointer(b.baseAddress! + s * per)
                    var acc = SIMD8<Double>()
                    for k in stride(from: 0, to: per * 8, by: 64) {
                        acc += raw.loadUnaligned(fromByteOffset: k, as: SIMD8<Double>.self)
                    }
                    return acc.sum()
                }
            }
            _ = try pool.map(sumSlice, Array(0..<slices), chunkSize: 1) // warm, as Python's is
            var ms: [Double] = []
            for _ in 0..<runs {
                let t0 = now()
                let sums = try pool.map(sumSlice, Array(0..<slices), chunkSize: 1)
                ms.append((now() - t0) * 1000)
                precondition(sums.reduce(0, +) == Double(per * slices))
            }
            report(quick ? "shared_128MiB_swift" : "shared_swift", ms, "ms")
        }

        // startup: a 2-worker pool ready, one task done, shut down
        var ms: [Double] = []
        for _ in 0..<runs {
            let t0 = now()
            let pool = ProcessPool(.init(workerCount: workers))
            _ = try pool.apply(1) { $0 + 1 }
            pool.close()
            pool.join()
            ms.append((now() - t0) * 1000)
        }
        report("startup_swift", ms, "ms")
        try startMethods(workers: workers, runs: runs, input: input)
    }

    /// Start-up and tiny under spawn (next to fork's rows above), and threads on a
    /// workload that waits.
    func startMethods(workers: Int, runs: Int, input: [Int]) throws {
        var ms: [Double] = []
        for _ in 0..<runs {
            let t0 = now()
            let pool = ProcessPool(.init(workerCount: workers, startMethod: .spawn))
            _ = try pool.apply(namedSquare, 3)
            pool.close()
            pool.join()
            ms.append((now() - t0) * 1000)
        }
        report("startup_spawn_swift", ms, "ms")
        do {
            let pool = ProcessPool(.init(workerCount: workers, startMethod: .spawn, keepAlive: true))
            defer { pool.close(); pool.join() }
            _ = try pool.map(namedSquare, Array(input.prefix(1000)))
            var rates: [Double] = []
            for _ in 0..<runs {
                let t0 = now()
                let out = try pool.map(namedSquare, input)
                rates.append(Double(input.count) / (now() - t0))
                precondition(out.indices.allSatisfy { out[$0] == $0 &* $0 })
            }
            report("tiny_spawn_swift", rates, "tasks/s")
            var lat: [Double] = []
            for _ in 0..<(quick ? 2000 : 10000) {
                let t0 = now()
                _ = try pool.apply(namedSquare, 5)
                lat.append((now() - t0) * 1e6)
            }
            lat.sort()
            report("latency_spawn_swift_p50", [lat[lat.count / 2]], "us")
        }
        do {
            let threads = 16, tasks = 800
            let pool = ProcessPool(.init(workerCount: threads, startMethod: .threads, keepAlive: true))
            defer { pool.close(); pool.join() }
            var rates: [Double] = []
            for _ in 0..<runs {
                let t0 = now()
                let out = try pool.map(sleepOneMs, Array(0..<tasks), chunkSize: 1)
                rates.append(Double(tasks) / (now() - t0))
                precondition(out == Array(0..<tasks))
            }
            report("sleep_threads_swift", rates, "tasks/s")
        }
    }
}
