// The Swift API's benchmark: the tiny, latency, cpu, keepalive and startup workloads of
// WORKLOADS.md on 2 workers. Prints "name<TAB>median<TAB>min<TAB>max<TAB>unit" lines that
// Benchmarks/report.py sets beside the Python pools' figures.
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
    var n = 0
    while now() < end { n &+= 1 }
    return n
}

func report(_ name: String, _ values: [Double], _ unit: String) {
    let v = values.sorted()
    print("\(name)\t\(v[v.count / 2])\t\(v.first!)\t\(v.last!)\t\(unit)")
    fflush(nil)
}

@main
struct SwiftPoolBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftpool-bench", abstract: "SwiftPool's Swift API on the standard workloads.")

    @Option(help: "Runs per figure; the median is reported.") var runs = 5
    @Flag(help: "Fewer calls, for a quick look.") var quick = false

    func run() throws {
        let workers = 2
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
                precondition(out[n - 1] == (n - 1) * (n - 1))
            }
            report("tiny_swift", rates, "tasks/s")
        }
        do {
            let pool = ProcessPool(.init(workerCount: workers, keepAlive: true))
            let square = pool.register { (x: Int) in x &* x }
            _ = try pool.map(square, input)
            var rates: [Double] = []
            for _ in 0..<runs {
                let t0 = now()
                _ = try pool.map(square, input)
                rates.append(Double(n) / (now() - t0))
            }
            report("tiny_swift_keepalive", rates, "tasks/s")

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
                for _ in 0..<max(1, runs / 2) {
                    let t0 = now()
                    _ = try pool.map(work, args)
                    let wall = now() - t0
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
            let t0 = now()
            for _ in 0..<10 { _ = try pool.map(f, small) }
            let ms = (now() - t0) * 1000
            report(keepAlive ? "keepalive_on_swift" : "keepalive_off_swift", [ms], "ms")
            pool.close()
            pool.join()
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
    }
}
