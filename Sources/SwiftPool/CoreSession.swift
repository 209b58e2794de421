internal import CPoolCore

/// One generation of workers: a C pool (`cpool_create`) and the task functions that
/// existed when its workers were forked, registered with it by address.
final class CoreSession: @unchecked Sendable {
    let handle: OpaquePointer
    private var ids: [ObjectIdentifier: cpool_fn_t] = [:]
    private let functions: [_TaskFunction] // kept alive as long as the workers may call them

    /// Forks the workers. Every function in `functions` must exist now: the workers see
    /// only what the parent held when they were forked.
    init(_ c: ProcessPoolConfiguration, hooks: WorkerHooks, functions: [_TaskFunction]) throws {
        var o = cpool_options_t()
        cpool_options_init(&o)
        o.workers = UInt32(max(1, c.workerCount))
        o.arena_bytes = UInt64(c.sharedMemoryBytes)
        o.max_tasks_per_worker = UInt64(c.tasksPerWorker ?? 0)
        o.task_timeout_ns = c.taskTimeout?.nanoseconds ?? 0
        o.worker_init = initTrampoline
        o.worker_exit = exitTrampoline
        o.hook_ctx = Unmanaged.passUnretained(hooks).toOpaque()
        var h: OpaquePointer?
        let rc = cpool_create(&o, &h)
        guard rc == 0, let h else { throw ProcessPoolError.fromCore(rc) }
        handle = h
        self.functions = functions
        for f in functions {
            let name = "swift.\(UInt(bitPattern: Unmanaged.passUnretained(f).toOpaque()))"
            let id = cpool_register_batch(h, name, chunkTrampoline, Unmanaged.passUnretained(f).toOpaque(),
                                          f.inStride, f.outStride)
            guard id >= 0 else {
                cpool_destroy(h)
                throw ProcessPoolError.fromCore(id)
            }
            ids[ObjectIdentifier(f)] = id
        }
    }

    /// The last user is gone: no task runs. Stop the workers gracefully (their exit
    /// hooks run) and release everything.
    deinit {
        cpool_close(handle)
        cpool_join(handle, 0)
        cpool_destroy(handle)
    }

    /// The id of `f` in this session, or `nil` when the workers were forked before `f`
    /// existed (they cannot run it).
    func id(of f: _TaskFunction) -> cpool_fn_t? { ids[ObjectIdentifier(f)] }

    func terminate() {
        cpool_terminate(handle)
        cpool_join(handle, 0)
    }

    /// Worker process ids now (0 for a slot being replaced), for tests and statistics.
    func workerPIDs() -> [Int32] {
        (0..<max(0, Int(cpool_worker_count(handle)))).map { w in
            var s = cpool_worker_stats_t()
            return cpool_worker_stats(handle, UInt32(w), &s) == 0 ? s.pid : 0
        }
    }

    func workerStatistics() -> [WorkerStatistics] {
        (0..<max(0, Int(cpool_worker_count(handle)))).map { w in
            var s = cpool_worker_stats_t()
            _ = cpool_worker_stats(handle, UInt32(w), &s)
            return WorkerStatistics(pid: s.pid, tasksDone: Int(s.tasks_done), restarts: Int(s.restarts),
                                    crashes: Int(s.crashes), timeouts: Int(s.timeouts))
        }
    }
}

/// What one worker slot has done so far (`cpool_worker_stats`).
public struct WorkerStatistics: Sendable, Equatable {
    /// The process now serving the slot, 0 while it is being replaced.
    public var pid: Int32
    public var tasksDone: Int
    /// Replacement processes forked for the slot (crash, timeout, lifespan).
    public var restarts: Int
    public var crashes: Int
    public var timeouts: Int
}
