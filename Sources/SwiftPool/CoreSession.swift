internal import CPoolCore

/// One C pool (`cpool_create`): its shared memory, its worker slots, and the task
/// functions registered with it. The shared memory stays (its pages warm) while the
/// workers are stopped and forked again, which is how a pool without keep-alive gives
/// every call fresh workers cheaply.
final class CoreSession: @unchecked Sendable {
    let handle: OpaquePointer
    private var ids: [ObjectIdentifier: cpool_fn_t] = [:]
    private var functions: [_TaskFunction] = [] // kept alive as long as workers may call them
    /// Functions the running workers can call: those that existed when they were forked.
    private var known: Set<ObjectIdentifier> = []
    private(set) var workersRunning = true
    /// Calls using this session now (guarded by the pool's monitor).
    var users = 0

    /// Forks the workers. Every function in `functions` exists now, so the workers can
    /// run them all.
    private let observers: PoolObservers // the C pool calls it until destroyed

    private let hooks: HookClosures
    private let startMethod: StartMethod

    init(_ c: ProcessPoolConfiguration, hooks: HookClosures, observers: PoolObservers,
         functions: [_TaskFunction]) throws {
        self.observers = observers
        self.hooks = hooks
        startMethod = c.startMethod
        var o = cpool_options_t()
        cpool_options_init(&o)
        o.workers = UInt32(max(1, c.workerCount))
        o.start_method = c.startMethod.cValue
        o.arena_bytes = UInt64(c.sharedMemoryBytes)
        o.max_tasks_per_worker = UInt64(c.tasksPerWorker ?? 0)
        o.task_timeout_ns = c.taskTimeout?.nanoseconds ?? 0
        o.crash_retries = UInt32(clamping: max(0, c.crashRetries))
        o.init_timeout_ns = c.hookTimeout?.nanoseconds ?? 0
        o.exit_timeout_ns = c.hookTimeout?.nanoseconds ?? 0
        o.max_memory_growth_bytes = UInt64(max(0, c.maxMemoryGrowthBytes ?? 0))
        o.kill_grace_ns = c.killGrace?.nanoseconds ?? 0
        if c.startMethod.runsClosures {
            o.worker_init = initTrampoline
            o.worker_exit = exitTrampoline
            o.hook_ctx = Unmanaged.passUnretained(hooks).toOpaque()
        } else if c.workerInit != nil || c.workerExit != nil {
            throw ProcessPoolError(.unsupported(reason: "spawned workers cannot run the closures workerInit and workerExit; give a call hooks defined by name (WorkerHooks)"))
        }
        o.flags = (c.insights ? UInt32(CPOOL_OPTION_INSIGHTS) : 0) |
            (observers.capturesOutput ? UInt32(CPOOL_OPTION_CAPTURE_OUTPUT) : 0)
        let context = Unmanaged.passUnretained(observers).toOpaque()
        o.on_event = eventTrampoline
        o.event_ctx = context
        o.on_output = outputTrampoline
        o.output_ctx = context
        var h: OpaquePointer?
        let rc = c.startMethod.executable.withOptionalCString { exe in
            o.executable = exe
            return cpool_create(&o, &h)
        }
        guard rc == 0, let h else { throw ProcessPoolError.fromCore(rc) }
        handle = h
        for f in functions { try add(f) }
        known = Set(ids.keys)
    }

    /// The last user is gone: no task runs. Stop the workers gracefully (their exit
    /// hooks run) and release everything.
    deinit {
        cpool_close(handle)
        cpool_join(handle, 0)
        cpool_destroy(handle)
    }

    /// Registers `f` with the C pool (forked workers running now may not see it yet):
    /// by name when it is defined by name, else as this process's closure. Throws when
    /// the C pool's function table is full, or for a closure on spawned workers.
    func add(_ f: _TaskFunction) throws {
        if ids[ObjectIdentifier(f)] != nil { return }
        let id: cpool_fn_t
        if let name = f.name {
            id = cpool_register_defined(handle, name, 0)
        } else if startMethod.runsClosures {
            let name = "swift.\(UInt(bitPattern: Unmanaged.passUnretained(f).toOpaque()))"
            id = cpool_register_batch(handle, name, chunkTrampoline, Unmanaged.passUnretained(f).toOpaque(),
                                      f.inStride, f.outStride)
        } else {
            throw ProcessPoolError(.unsupported(reason: "spawned workers run only functions defined by name (PoolFunction.named), not closures"))
        }
        guard id >= 0 else { throw ProcessPoolError.fromCore(id) }
        ids[ObjectIdentifier(f)] = id
        functions.append(f)
    }

    /// The id of `f` when the running workers can call it.
    func id(of f: _TaskFunction) -> cpool_fn_t? {
        guard workersRunning && (startMethod.seesLaterFunctions || known.contains(ObjectIdentifier(f))) else { return nil }
        return ids[ObjectIdentifier(f)]
    }

    /// Workers started from now on run `call`'s hooks (none for nil). The workers are
    /// stopped. Throws for a closure on spawned workers or a name the C pool refuses.
    func setCallHooks(_ call: WorkerHooks?) throws {
        let hooksNeedClosures = call?.onStart?.name == nil && call?.onStart != nil ||
            call?.onExit?.name == nil && call?.onExit != nil
        if hooksNeedClosures && !startMethod.runsClosures {
            throw ProcessPoolError(.unsupported(reason: "spawned workers run only hooks defined by name (WorkerHook.named)"))
        }
        hooks.callInit = call?.onStart?.name == nil ? call?.onStart?.body : nil
        hooks.callExit = call?.onExit?.name == nil ? call?.onExit?.body : nil
        let rc = cpool_set_worker_hooks(handle, call?.onStart?.name, call?.onExit?.name)
        guard rc == 0 else { throw ProcessPoolError.fromCore(rc) }
    }

    /// The values exit hooks handed over since the last take.
    func takeExitResults() -> [WorkerExitResult] {
        final class Collected { var results: [WorkerExitResult] = [] }
        let collected = Collected()
        _ = cpool_take_exit_outputs(handle, { worker, bytes, count, ctx in
            let c = Unmanaged<Collected>.fromOpaque(ctx!).takeUnretainedValue()
            let b = Array(UnsafeRawBufferPointer(start: bytes, count: count))
            c.results.append(WorkerExitResult(workerID: Int(worker), bytes: b))
        }, Unmanaged.passUnretained(collected).toOpaque())
        return collected.results
    }

    /// The id of `f`, registered with this C pool (the workers just started know it).
    func registeredID(of f: _TaskFunction) throws -> cpool_fn_t {
        guard let id = ids[ObjectIdentifier(f)] else { throw ProcessPoolError(.closed) }
        return id
    }

    /// Stops the workers (after their queued tasks; their exit hooks run).
    func stopWorkers() {
        if workersRunning { cpool_stop_workers(handle, 0) }
        workersRunning = false
    }

    /// Starts fresh workers, which can run every function registered so far.
    func startWorkers() throws {
        stopWorkers()
        let rc = cpool_start_workers(handle)
        guard rc == 0 else { throw ProcessPoolError.fromCore(rc) }
        workersRunning = true
        known = Set(ids.keys)
    }

    func terminate() {
        cpool_terminate(handle)
        cpool_join(handle, 0)
    }

    /// Worker process ids now (0 for a slot being replaced), for tests and statistics.
    func workerPIDs() -> [Int32] { workerStatistics().map(\.pid) }

    func workerStatistics() -> [WorkerStatistics] {
        (0..<max(0, Int(cpool_worker_count(handle)))).map { w in
            var s = cpool_worker_stats_t()
            _ = cpool_worker_stats(handle, UInt32(w), &s)
            return WorkerStatistics(pid: s.pid, tasksDone: Int(s.tasks_done), restarts: Int(s.restarts),
                                    crashes: Int(s.crashes), timeouts: Int(s.timeouts), recycles: Int(s.recycles))
        }
    }
}

/// What one worker slot has done so far (`cpool_worker_stats`).
public struct WorkerStatistics: Sendable, Equatable {
    /// The process now serving the slot, 0 while it is being replaced.
    public var pid: Int32
    /// Tasks completed by the slot, over all its processes.
    public var tasksDone: Int
    /// Replacement processes forked for the slot (crash, timeout, lifespan).
    public var restarts: Int
    /// Processes of the slot that died abnormally (signal or non-zero exit).
    public var crashes: Int
    /// Processes of the slot killed because a task ran past its timeout.
    public var timeouts: Int
    /// Processes of the slot replaced because their memory grew past the limit.
    public var recycles: Int
}
