internal import CPoolCore
public import CoreMetrics
public import Logging

/// How a ``ProcessPool`` runs its workers.
///
/// A plain `Sendable` value: build one, change what you need, hand it to
/// ``ProcessPool/init(_:)`` or `withProcessPool(_:_:)`.
public struct ProcessPoolConfiguration: Sendable {
    /// Worker processes. Default: the CPUs this process may run on (its affinity mask),
    /// as `cpool_cpu_count()` reports them.
    public var workerCount: Int

    /// How workers start: forked (the default), spawned from a program that serves, or as
    /// threads of this process (see ``StartMethod`` for what each allows).
    public var startMethod: StartMethod

    /// Keep the workers alive between calls (mpire's `keep_alive`). Off: each call forks
    /// fresh workers, which see every closure that exists at that moment, and stops them
    /// afterwards. On: workers survive between calls; functions made with
    /// `register(_:)` before the workers start run on them without a
    /// restart, while any other closure makes the pool restart its workers first
    /// (a forked worker cannot see a closure created after it was forked). Worker init
    /// and exit hooks run once per worker process, not once per call, when it is on.
    public var keepAlive: Bool

    /// Tasks a worker process runs before it is replaced by a fresh one
    /// (`maxtasksperchild`, mpire's `worker_lifespan`). `nil`: never replaced.
    public var tasksPerWorker: Int?

    /// A task running longer is stopped by killing its worker, which is replaced; the
    /// task fails with ``ProcessPoolError/Code/timedOut``. `nil`: no limit.
    public var taskTimeout: Duration?

    /// Bytes of shared memory for arguments and results in flight. Inputs larger than
    /// about a quarter of it are sent in several rounds.
    public var sharedMemoryBytes: Int

    /// A task whose worker died runs again, on a fresh worker, up to this many times
    /// before it fails with ``ProcessPoolError/Code/crashed(signal:exitStatus:)``.
    public var crashRetries: Int

    /// An init or exit hook running longer gets its worker killed (an init failure, or
    /// simply the end of that worker). `nil`: no limit.
    public var hookTimeout: Duration?

    /// A worker whose resident memory grew by more than this since it started is
    /// replaced between tasks (loky's leak protection). `nil`: never.
    public var maxMemoryGrowthBytes: Int?

    /// How a task is stopped (timeout, cancellation): `nil` sends SIGKILL at once; a
    /// duration sends SIGTERM, then SIGKILL when it has passed (for workers whose init
    /// hook installs a SIGTERM handler to clean up).
    public var killGrace: Duration?

    /// Runs in each worker process when it starts, with the worker's id
    /// (0 ..< workerCount). Throwing makes that worker exit; a pool whose workers keep
    /// failing to start is broken (``ProcessPoolError/Code/workerInitFailed``).
    /// Runs in a forked child: synchronous code only (no Dispatch, no async). A closure:
    /// fork and threads only (spawned workers run hooks defined by name, given per call:
    /// ``WorkerHooks``).
    public var workerInit: (@Sendable (_ workerID: Int) throws -> Void)?

    /// Runs in each worker process when it leaves gracefully (lifespan reached, pool
    /// closed, or the end of a call when ``keepAlive`` is off).
    public var workerExit: (@Sendable (_ workerID: Int) -> Void)?

    /// Names the pool in log metadata and metric dimensions (`pool`). Default `"swiftpool"`.
    public var label: String

    /// Measure where each worker's time goes (``ProcessPool/insights``): start-up, hooks,
    /// working and waiting, and the slowest tasks. Every task is then timed and claimed
    /// alone, which costs tiny tasks much of their speed; off by default (counts only).
    public var insights: Bool

    /// Where the workers' `print` output and standard error go. Default ``WorkerOutput/inherit``.
    public var workerOutput: WorkerOutput

    /// Receives the pool's events: worker started or replaced (`.debug`), exited
    /// (`.debug`), crashed (`.warning`), task timed out (`.warning`), worker killed to
    /// cancel a task (`.info`), recycled for its memory (`.notice`), init failed
    /// (`.error`), pool broken (`.critical`). `nil`: the pool logs nothing.
    public var logger: Logger?

    /// Where the pool's metrics go: counters `swiftpool_tasks_total`,
    /// `swiftpool_task_failures_total` (dimension `kind`: crashed, timed_out, cancelled,
    /// thrown, encoding, other), `swiftpool_worker_events_total` (dimension `event`), and
    /// meters `swiftpool_workers_alive`, `swiftpool_calls_waiting`, each with the
    /// dimension `pool` (``label``). `nil`: the factory bootstrapped in `MetricsSystem`
    /// (none records anything until the application bootstraps one).
    public var metricsFactory: (any MetricsFactory)?

    /// A configuration; every argument left out takes the default documented on its property.
    public init(
        workerCount: Int? = nil,
        startMethod: StartMethod = .fork,
        keepAlive: Bool = false,
        tasksPerWorker: Int? = nil,
        taskTimeout: Duration? = nil,
        sharedMemoryBytes: Int = 64 << 20,
        crashRetries: Int = 0,
        hookTimeout: Duration? = nil,
        maxMemoryGrowthBytes: Int? = nil,
        killGrace: Duration? = nil,
        workerInit: (@Sendable (_ workerID: Int) throws -> Void)? = nil,
        workerExit: (@Sendable (_ workerID: Int) -> Void)? = nil,
        label: String = "swiftpool",
        insights: Bool = false,
        workerOutput: WorkerOutput = .inherit,
        logger: Logger? = nil,
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.workerCount = workerCount ?? Self.availableCPUs
        self.startMethod = startMethod
        self.keepAlive = keepAlive
        self.tasksPerWorker = tasksPerWorker
        self.taskTimeout = taskTimeout
        self.sharedMemoryBytes = sharedMemoryBytes
        self.crashRetries = crashRetries
        self.hookTimeout = hookTimeout
        self.maxMemoryGrowthBytes = maxMemoryGrowthBytes
        self.killGrace = killGrace
        self.workerInit = workerInit
        self.workerExit = workerExit
        self.label = label
        self.insights = insights
        self.workerOutput = workerOutput
        self.logger = logger
        self.metricsFactory = metricsFactory
    }

    /// The CPUs this process may run on, honouring its affinity mask.
    public static var availableCPUs: Int { Int(cpool_cpu_count()) }
}

extension Duration {
    var nanoseconds: UInt64 {
        let (s, atto) = components
        if s < 0 { return 0 }
        return UInt64(s) &* 1_000_000_000 &+ UInt64(atto / 1_000_000_000)
    }
}
