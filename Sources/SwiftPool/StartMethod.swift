internal import CPoolCore

/// How a ``ProcessPool`` starts its workers (``ProcessPoolConfiguration/startMethod``).
///
/// - ``fork``: processes forked from yours. Any closure runs in them, no registration;
///   fastest start. A task must not use Swift concurrency or Dispatch (their threads do
///   not survive a fork of a multi-threaded process), and a worker kept alive cannot run
///   a closure made after it was forked (the pool restarts its workers for it).
/// - ``spawn``: fresh processes of your program (or of ``spawn(executable:)``), whose
///   `main` calls ``ProcessPool/serveIfSpawned(_:)`` first. Tasks are functions defined by
///   name (`PoolFunction.named`) in every process; they may use anything: async
///   code, Dispatch, Foundation. Start-up costs an exec (milliseconds), not a fork.
/// - ``threads``: threads of your process, for work that waits rather than computes
///   (multiprocessing's `ThreadPool`): the same calls, values and errors, no isolation. A
///   crash ends your process, a running task cannot be stopped (no task timeout; cancel
///   drops only tasks not started), and ``ProcessPool/terminate()`` waits for running
///   tasks to return.
public struct StartMethod: Sendable, Equatable, CustomStringConvertible {
    enum Kind: Equatable { case fork, spawn, threads }
    let kind: Kind
    let executable: String?

    /// Workers forked from this process (the default).
    public static let fork = StartMethod(kind: .fork, executable: nil)
    /// Workers started from this program, which serves when spawned
    /// (``ProcessPool/serveIfSpawned(_:)``).
    public static let spawn = StartMethod(kind: .spawn, executable: nil)
    /// Workers started from another program that defines the same functions and calls
    /// ``ProcessPool/serveIfSpawned(_:)`` first (multiprocessing's `set_executable`).
    public static func spawn(executable: String) -> StartMethod {
        StartMethod(kind: .spawn, executable: executable)
    }
    /// Worker threads of this process.
    public static let threads = StartMethod(kind: .threads, executable: nil)

    public var description: String {
        switch kind {
        case .fork: return "fork"
        case .spawn: return executable.map { "spawn(\($0))" } ?? "spawn"
        case .threads: return "threads"
        }
    }

    var cValue: UInt32 {
        switch kind {
        case .fork: return UInt32(CPOOL_START_FORK.rawValue)
        case .spawn: return UInt32(CPOOL_START_SPAWN.rawValue)
        case .threads: return UInt32(CPOOL_START_THREADS.rawValue)
        }
    }

    /// Whether the workers can run a function that is not defined by name.
    var runsClosures: Bool { kind != .spawn }
    /// Whether workers already running can run a function registered after they started
    /// (by name in a spawned worker; threads share this process).
    var seesLaterFunctions: Bool { kind != .fork }
}

extension ProcessPool {
    /// Call first thing in `main`, after the named functions and hooks it needs exist:
    /// in a process that a pool spawned as its worker, serves that pool and exits (never
    /// returns); anywhere else returns at once.
    ///
    /// Name the functions and hooks defined in static properties here, so that they
    /// exist in the worker too (a static property is made on first use):
    ///
    /// ```swift
    /// enum Jobs {
    ///     static let square = try! PoolFunction.named("square") { (x: Int) in x * x }
    /// }
    /// @main struct App {
    ///     static func main() throws {
    ///         ProcessPool.serveIfSpawned(Jobs.square)
    ///         let pool = ProcessPool(.init(startMethod: .spawn))
    ///         print(try pool.map(Jobs.square, [1, 2, 3]))
    ///     }
    /// }
    /// ```
    public static func serveIfSpawned(_ definitions: any PoolDefinition...) {
        _ = definitions
        cpool_serve_if_spawned()
    }
}

/// A function or hook defined by name (`PoolFunction.named`,
/// `WorkerHook.named`): listing it in ``ProcessPool/serveIfSpawned(_:)`` makes it
/// exist in a spawned worker before it serves.
public protocol PoolDefinition: Sendable {
    /// The name every process of the program knows it by.
    var definedName: String? { get }
}

extension Optional where Wrapped == String {
    /// Calls `body` with the string as a C string, or with NULL.
    func withOptionalCString<R>(_ body: (UnsafePointer<CChar>?) throws -> R) rethrows -> R {
        guard let s = self else { return try body(nil) }
        return try s.withCString { try body($0) }
    }
}
