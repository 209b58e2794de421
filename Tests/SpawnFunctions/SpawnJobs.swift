import Dispatch
import SwiftPool
#if canImport(Glibc)
import Glibc
#endif

/// Functions and hooks the tests and the spawned test worker (`swiftpool-spawn-worker`)
/// both define by name, as an application defines them in its own program.
public enum SpawnJobs {
    public static let square = try! PoolFunction.named("spawn.square") { (x: Int) in x * x }
    public static let shout = try! PoolFunction.named("spawn.shout") { (s: String) in s.uppercased() + "!" }
    public static let worker = try! PoolFunction.named("spawn.worker") { (_: Int) -> [Int32] in
        [Int32(ProcessPool.currentWorkerID ?? -1), getpid()]
    }
    /// Kills its worker with SIGSEGV for input 13.
    public static let crashAt13 = try! PoolFunction.named("spawn.crashAt13") { (x: Int) -> Int in
        if x == 13 { raise(SIGSEGV) }
        return x + 1
    }
    public static let sleepMs = try! PoolFunction.named("spawn.sleepMs") { (ms: Int) -> Int in
        usleep(UInt32(ms) * 1000)
        return ms
    }
    /// Swift concurrency and Dispatch inside a task: a task group awaited from a detached
    /// task, then `concurrentPerform`.
    public static let concurrent = try! PoolFunction.named("spawn.concurrent") { (n: Int) -> Int in
        final class Box: @unchecked Sendable { var value = 0 }
        let box = Box(), done = DispatchSemaphore(value: 0)
        Task.detached {
            box.value = await withTaskGroup(of: Int.self) { g in
                for i in 0..<4 { g.addTask { i * n } }
                return await g.reduce(0, +)
            }
            done.signal()
        }
        done.wait()
        final class Parts: @unchecked Sendable { var values = [Int](repeating: 0, count: 4) }
        let parts = Parts()
        parts.values.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let b = buffer
            DispatchQueue.concurrentPerform(iterations: 4) { i in b[i] = i + n }
        }
        return box.value + parts.values.reduce(0, +)
    }
    /// 6n + 4n + 6 for every n: what `concurrent` returns.
    public static func concurrentExpected(_ n: Int) -> Int { 6 * n + 4 * n + 6 }

    /// Per-call hooks: the start hook marks the process, the exit hook reports it.
    nonisolated(unsafe) public static var startsInThisProcess = 0
    public static let onStart = try! WorkerHook.named("spawn.onStart") { _ in startsInThisProcess += 1 }
    public static let onExit = try! WorkerHook.named("spawn.onExit", returning: { id -> [Int32] in
        [Int32(id), getpid(), Int32(startsInThisProcess)]
    })

    /// Every definition, for `ProcessPool.serveIfSpawned`.
    public static var all: [any PoolDefinition] {
        [square, shout, worker, crashAt13, sleepMs, concurrent, onStart, onExit]
    }
}
