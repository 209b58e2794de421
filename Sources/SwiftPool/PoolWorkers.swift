internal import CPoolCore

/// The right to run one task function on the pool's workers until released. A call
/// with hooks has the workers to itself (`hooked`): they were started for it.
struct Lease {
    let session: CoreSession
    let id: cpool_fn_t
    var hooked = false
}

/// Who may use the pool's workers, and when they are forked again. A `ProcessPool` has
/// one C pool (`CoreSession`) and never more worker processes than `workerCount`.
///
/// A forked worker can run only closures that existed when it was forked. A call whose
/// closure the running workers know starts at once (its tasks queue in the C pool
/// behind others). A call whose closure they do not know waits in a queue until the
/// workers are idle; then the workers are forked again, once for every call waiting,
/// and all of those calls start. Calls that would overtake a waiting one wait too, so
/// that none waits forever. (Spawned workers and threads know every function registered
/// while they run.)
///
/// A call with hooks (``WorkerHooks``) waits likewise until the workers are idle, then
/// has them started for it alone, with its hooks; when it ends they are stopped (their
/// exit hooks run), and the next call starts fresh ones.
final class PoolWorkers: @unchecked Sendable {
    private let configuration: ProcessPoolConfiguration
    private let hooks: HookClosures
    private let monitor = Monitor()
    // Guarded by monitor:
    private var session: CoreSession?
    private var users = 0               // leases held now
    // calls waiting for the workers to be forked again
    private var queue: [Ticket] = [] { didSet { if queue.count != oldValue.count { observers.callsWaiting(queue.count) } } }
    let observers: PoolObservers
    private var registered: [_TaskFunction] = []
    private var closed = false
    private var hookedCall = false      // a call with hooks has the workers
    private var _keepAlive: Bool

    /// A call waiting in the queue: a blocked caller (no `start`) or a started task
    /// (`start` runs once it has its lease, on the thread that released the workers).
    private final class Ticket {
        let function: _TaskFunction
        let hooks: WorkerHooks?
        let start: ((Result<Lease, any Error>) -> Void)?
        var outcome: Result<Lease, any Error>?
        init(_ f: _TaskFunction, hooks: WorkerHooks?, start: ((Result<Lease, any Error>) -> Void)?) {
            function = f
            self.hooks = hooks
            self.start = start
        }
    }

    init(_ configuration: ProcessPoolConfiguration) {
        self.configuration = configuration
        hooks = HookClosures(configuration)
        observers = PoolObservers(configuration)
        _keepAlive = configuration.keepAlive
    }

    var keepAlive: Bool {
        get { monitor.withLock { _keepAlive } }
        set {
            monitor.withLock {
                _keepAlive = newValue
                if !newValue, users == 0, queue.isEmpty { session?.stopWorkers() }
            }
        }
    }

    /// Functions that workers forked from now on know without a restart.
    func register(_ f: _TaskFunction) { monitor.withLock { registered.append(f) } }

    /// A lease for `f`, waiting while the workers are busy with closures forked
    /// before `f` existed. Throws ``ProcessPoolError/Code/closed`` after close.
    func lease(_ f: _TaskFunction, hooks: WorkerHooks? = nil) throws -> Lease {
        try monitor.withLock {
            guard !closed else { throw ProcessPoolError(.closed) }
            if let l = try grantNow(f, hooks: hooks) { return l }
            let t = Ticket(f, hooks: hooks, start: nil)
            queue.append(t)
            monitor.waitLocked { t.outcome != nil }
            return try t.outcome!.get()
        }
    }

    /// Calls `start` with a lease for `f` now, or later from the thread that releases
    /// the workers, without blocking the caller.
    func leaseLater(_ f: _TaskFunction, hooks: WorkerHooks? = nil, start: @escaping (Result<Lease, any Error>) -> Void) {
        let now: Result<Lease, any Error>? = monitor.withLock {
            guard !closed else { return .failure(ProcessPoolError(.closed)) }
            do {
                if let l = try grantNow(f, hooks: hooks) { return .success(l) }
            } catch {
                return .failure(error)
            }
            queue.append(Ticket(f, hooks: hooks, start: start))
            return nil
        }
        if let now { start(now) }
    }

    /// A lease at once when nobody waits and the workers know `f` (or can be forked
    /// again because nobody uses them); nil when the call must wait. Locks: monitor.
    private func grantNow(_ f: _TaskFunction, hooks call: WorkerHooks?) throws -> Lease? {
        guard queue.isEmpty, !hookedCall else { return nil }
        if call == nil, let s = session, let id = s.id(of: f) {
            users += 1
            return Lease(session: s, id: id)
        }
        guard users == 0 else { return nil }
        let s = try restart(with: [f], hooks: call)
        users += 1
        return Lease(session: s, id: try s.registeredID(of: f), hooked: call != nil)
    }

    /// Starts the workers again so that they know `functions` (a new C pool when its
    /// function table is full), with a call's hooks or none. Locks: monitor; no lease is
    /// held.
    private func restart(with functions: [_TaskFunction], hooks call: WorkerHooks? = nil) throws -> CoreSession {
        if let s = session {
            do {
                for f in functions { try s.add(f) }
            } catch let e as ProcessPoolError {
                guard case let .core(code, _) = e.code, code == Int32(CPOOL_E_FULL) else { throw e }
                session = nil // its function table is full: begin again with a new C pool
            }
        }
        let fresh = session == nil // a new C pool has just forked its workers, without hooks
        let s = try session ?? CoreSession(configuration, hooks: hooks, observers: observers, functions: registered + functions)
        session = s
        if !fresh || call != nil {
            s.stopWorkers()
            try s.setCallHooks(call)
            do {
                try s.startWorkers()
            } catch {
                try? s.setCallHooks(nil)
                throw error
            }
        }
        hookedCall = call != nil
        return s
    }

    func release(_ lease: Lease) {
        var starts: [(Ticket, Result<Lease, any Error>)] = []
        monitor.withLock {
            users -= 1
            if lease.hooked {
                // The call's workers leave now, running its exit hooks; the next call
                // starts its own.
                lease.session.stopWorkers()
                try? lease.session.setCallHooks(nil)
                hookedCall = false
            }
            guard users == 0 else { return }
            if queue.isEmpty {
                // Without keep-alive, workers live for the duration of the calls using them.
                if !_keepAlive { session?.stopWorkers() }
                monitor.broadcastLocked() // join() waits for the last lease
                return
            }
            // Start the workers again once for every waiting call up to the first one
            // with hooks (which has them alone), and start those calls.
            var waiting: [Ticket] = []
            if let first = queue.first, first.hooks != nil {
                waiting = [queue.removeFirst()]
            } else {
                while let t = queue.first, t.hooks == nil { waiting.append(queue.removeFirst()) }
            }
            let granted: Result<CoreSession, any Error> = Result {
                try restart(with: waiting.map(\.function), hooks: waiting.first?.hooks)
            }
            for t in waiting {
                let r: Result<Lease, any Error> = granted.flatMap { s in
                    Result {
                        let id = try s.registeredID(of: t.function)
                        users += 1
                        return Lease(session: s, id: id, hooked: t.hooks != nil)
                    }
                }
                if t.start != nil { starts.append((t, r)) } else { t.outcome = r }
            }
            monitor.broadcastLocked()
        }
        for (t, r) in starts { t.start!(r) }
    }

    /// The calling map will not use the workers again. Without keep-alive they are
    /// stopped now, before the results are copied into the caller's memory: while forked
    /// workers live, each page the parent writes is copied first (copy-on-write), which
    /// took a quarter of the default map's time.
    func workersDone(_ lease: Lease) {
        monitor.withLock {
            if lease.session === session && users == 1 && queue.isEmpty && !_keepAlive && !lease.hooked {
                lease.session.stopWorkers()
            }
        }
    }

    /// The values exit hooks handed over since the last take.
    func takeExitResults() -> [WorkerExitResult] {
        monitor.withLock { session?.takeExitResults() ?? [] }
    }

    /// The pool's C pool, made now (workers stopped unless keep-alive) if there is none.
    func currentSession() throws -> CoreSession {
        try monitor.withLock {
            guard !closed else { throw ProcessPoolError(.closed) }
            if let s = session { return s }
            let s = try CoreSession(configuration, hooks: hooks, observers: observers, functions: registered)
            if !_keepAlive { s.stopWorkers() }
            session = s
            return s
        }
    }

    func close() { monitor.withLock { closed = true } }

    /// Throws ``ProcessPoolError/Code/closed`` once the pool is closed.
    func checkOpen() throws {
        try monitor.withLock { if closed { throw ProcessPoolError(.closed) } }
    }

    /// Closes, cancels the waiting calls and kills the workers.
    func terminate() {
        var starts: [Ticket] = []
        let s: CoreSession? = monitor.withLock {
            closed = true
            for t in queue {
                if t.start != nil { starts.append(t) } else { t.outcome = .failure(ProcessPoolError(.cancelled)) }
            }
            queue.removeAll()
            monitor.broadcastLocked()
            return session
        }
        for t in starts { t.start!(.failure(ProcessPoolError(.cancelled))) }
        s?.terminate()
    }

    /// Waits until no lease is held and nobody waits, then lets the C pool go: its
    /// workers run their exit hooks and leave.
    func join() {
        let s: CoreSession? = monitor.withLock {
            monitor.waitLocked { users == 0 && queue.isEmpty }
            defer { session = nil }
            return session
        }
        _ = s
    }

    var workerPIDs: [Int32] { monitor.withLock { session?.workerPIDs() ?? [] } }
    var workerStatistics: [WorkerStatistics] { monitor.withLock { session?.workerStatistics() ?? [] } }
    var insights: PoolInsights { monitor.withLock { session?.insights() ?? PoolInsights(workers: []) } }
}
