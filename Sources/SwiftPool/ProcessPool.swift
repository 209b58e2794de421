internal import CPoolCore

/// A pool of worker processes that runs Swift closures in parallel, isolated: a task that
/// crashes or hangs fails alone, with a ``ProcessPoolError``, and the pool goes on.
///
/// Values cross to the workers through shared memory, without serialization: arguments
/// and results are `BitwiseCopyable` (integers, floating point, structs and tuples of
/// them). The C core underneath is `cpool.h`.
///
/// ```swift
/// let pool = ProcessPool(.init(workerCount: 2))
/// let squares = try pool.map(Array(0..<1_000_000)) { $0 * $0 }
/// ```
public final class ProcessPool: @unchecked Sendable {
    /// The configuration the pool was made with (keep-alive may since have changed,
    /// see ``setKeepAlive(_:)``).
    public let configuration: ProcessPoolConfiguration
    @usableFromInline let journal: ErrorJournal
    let hooks: WorkerHooks
    private let monitor = Monitor()
    // Guarded by monitor:
    private var closed = false
    private var keepAlive: Bool
    private var terminated = false
    private var activeCalls = 0
    private var keptSession: CoreSession?          // the pool's own C pool
    private var registered: [_TaskFunction] = []   // functions for keep-alive workers
    private var liveSessions: [ObjectIdentifier: Weak] = [:]

    private struct Weak { weak var session: CoreSession? }

    /// Creates a pool. No worker is forked until the first call (or, with keep-alive,
    /// until the first call after a ``register(_:)``).
    public init(_ configuration: ProcessPoolConfiguration = .init()) {
        self.configuration = configuration
        keepAlive = configuration.keepAlive
        journal = ErrorJournal(workers: max(1, configuration.workerCount))
        hooks = WorkerHooks(configuration)
    }

    /// The id (0 ..< workerCount) of the worker process the calling code runs in; `nil`
    /// in the parent. Read it inside a task to learn which worker runs it (mpire's
    /// `pass_worker_id`).
    public static var currentWorkerID: Int? { SwiftPool.currentWorkerID }

    // MARK: - Functions for keep-alive workers

    /// Makes `body` a function that keep-alive workers forked after this call can run
    /// without a restart. Register before the first call; registering later makes the
    /// next call restart the workers once.
    @inlinable
    public func register<Argument: BitwiseCopyable, Result: BitwiseCopyable>(
        _ body: @escaping @Sendable (Argument) throws -> Result
    ) -> PoolFunction<Argument, Result> {
        let f = _makeTaskFunction(body)
        _register(f)
        return PoolFunction(function: f)
    }

    @usableFromInline
    func _register(_ f: _TaskFunction) {
        monitor.withLock { registered.append(f) }
    }

    /// A task function for `body`; its chunk loop is specialized here, in the caller's
    /// module, for the argument and result types.
    @inlinable
    public func _makeTaskFunction<Argument: BitwiseCopyable, Result: BitwiseCopyable>(
        _ body: @escaping @Sendable (Argument) throws -> Result
    ) -> _TaskFunction {
        let inStride = MemoryLayout<Argument>.stride, outStride = MemoryLayout<Result>.stride
        let journal = self.journal // not the function itself: that would be a reference cycle
        let run: _ChunkRunner = { input, inBytes, output, outBytes, count, progress in
            for i in 0..<count {
                progress.pointee = i
                let x = input.loadUnaligned(fromByteOffset: i &* inBytes, as: Argument.self)
                do {
                    let r = try body(x)
                    output.storeBytes(of: r, toByteOffset: i &* outBytes, as: Result.self)
                } catch {
                    _recordThrown(error, input: input + i &* inBytes, in: journal)
                    progress.pointee = i
                    return -1
                }
            }
            return 0
        }
        return _TaskFunction(run: run, inStride: inStride, outStride: outStride)
    }

    // MARK: - Sessions

    /// Workers that can run `f`. The pool keeps one C pool; when its workers were forked
    /// before `f` existed and nobody uses them, they are replaced by fresh ones (the
    /// shared memory stays). When they are busy with other calls, `f` gets a C pool of
    /// its own for this call, so that calls never wait for each other.
    func acquireSession(for f: _TaskFunction) throws -> CoreSession {
        try monitor.withLock {
            guard !closed else { throw ProcessPoolError(.closed) }
            let s: CoreSession
            if let kept = keptSession, kept.id(of: f) != nil {
                s = kept
            } else if let kept = keptSession, kept.users == 0 {
                do {
                    try kept.add(f)
                    try kept.startWorkers()
                    s = kept
                } catch {
                    // The function table is full (or the workers would not start):
                    // begin again with a new C pool.
                    s = try CoreSession(configuration, hooks: hooks, functions: registered + [f])
                    keptSession = s
                }
            } else if keptSession == nil {
                s = try CoreSession(configuration, hooks: hooks, functions: registered + [f])
                keptSession = s
            } else {
                s = try CoreSession(configuration, hooks: hooks, functions: [f])
            }
            s.users += 1
            activeCalls += 1
            liveSessions[ObjectIdentifier(s)] = Weak(session: s)
            return s
        }
    }

    /// The pool's own C pool, made now if there is none yet (its workers start with it).
    func currentSession() throws -> CoreSession {
        try monitor.withLock {
            guard !closed else { throw ProcessPoolError(.closed) }
            if let s = keptSession { return s }
            let s = try CoreSession(configuration, hooks: hooks, functions: registered)
            if !keepAlive { s.stopWorkers() }
            keptSession = s
            return s
        }
    }

    /// Turns keep-alive on or off for the calls that follow (see
    /// ``ProcessPoolConfiguration/keepAlive``). Turning it off stops idle workers now.
    public func setKeepAlive(_ on: Bool) {
        monitor.withLock {
            keepAlive = on
            if !on, let s = keptSession, s.users == 0 { s.stopWorkers() }
        }
    }

    /// The calling map will not use the workers again. Without keep-alive they are
    /// stopped now, before the results are copied into the caller's memory: while forked
    /// workers live, each page the parent writes is copied first (copy-on-write), which
    /// took a quarter of the default map's time.
    func workersDone(_ s: CoreSession) {
        monitor.withLock {
            if s === keptSession && s.users == 1 && !keepAlive { s.stopWorkers() }
        }
    }

    func releaseSession(_ s: CoreSession) {
        monitor.withLock {
            s.users -= 1
            activeCalls -= 1
            // Without keep-alive, workers live for the duration of the calls that use them.
            if s === keptSession && s.users == 0 && !keepAlive { s.stopWorkers() }
            liveSessions = liveSessions.filter { $0.value.session != nil }
        }
        monitor.broadcast()
    }

    /// A session for a lazy map, which holds it until its iteration ends.
    func sessionForStream(_ f: _TaskFunction) throws -> (CoreSession, cpool_fn_t) {
        let s = try acquireSession(for: f)
        guard let id = s.id(of: f) else {
            releaseSession(s)
            throw ProcessPoolError(.closed)
        }
        return (s, id)
    }

    // MARK: - imap

    /// Maps lazily and in order (multiprocessing's `imap`): reads `inputs` as the
    /// iteration goes and keeps a bounded number of chunks in flight, so an endless or
    /// huge input works. Each element is that task's result or error.
    @inlinable
    public func imap<Inputs: Sequence, Result: BitwiseCopyable>(
        _ inputs: Inputs, chunkSize: Int? = nil, _ body: @escaping @Sendable (Inputs.Element) throws -> Result
    ) throws -> LazyPoolMap<Inputs, Result> where Inputs.Element: BitwiseCopyable {
        try _lazyMap(inputs, chunkSize: chunkSize, ordered: true, body)
    }

    /// Like ``imap(_:chunkSize:_:)``, but yields results as their chunks finish
    /// (multiprocessing's `imap_unordered`); ``ProcessPoolError/taskIndex`` and the
    /// order of finishing tell which input a failure belongs to.
    @inlinable
    public func imapUnordered<Inputs: Sequence, Result: BitwiseCopyable>(
        _ inputs: Inputs, chunkSize: Int? = nil, _ body: @escaping @Sendable (Inputs.Element) throws -> Result
    ) throws -> LazyPoolMap<Inputs, Result> where Inputs.Element: BitwiseCopyable {
        try _lazyMap(inputs, chunkSize: chunkSize, ordered: false, body)
    }

    @inlinable
    func _lazyMap<Inputs: Sequence, Result: BitwiseCopyable>(
        _ inputs: Inputs, chunkSize: Int?, ordered: Bool, _ body: @escaping @Sendable (Inputs.Element) throws -> Result
    ) throws -> LazyPoolMap<Inputs, Result> where Inputs.Element: BitwiseCopyable {
        let engine = try LazyMapEngine(pool: self, function: _makeTaskFunction(body), chunkSize: chunkSize)
        return LazyPoolMap(inputs: inputs, engine: engine, ordered: ordered)
    }

    // MARK: - map

    /// Runs `body` on every input in the workers and returns the results in input order
    /// (multiprocessing's `map`). Throws the first failure in input order; the
    /// ``mapResults(_:chunkSize:_:)`` variant returns every task's result or error.
    /// `chunkSize`: tasks sent to a worker at a time; `nil` chooses chunks that shrink
    /// as the input drains. Either way an idle worker takes over tasks that a busy one
    /// has not started, so no task waits behind a slow one while a worker is idle.
    @inlinable
    public func map<Argument: BitwiseCopyable, Result: BitwiseCopyable>(
        _ inputs: [Argument], chunkSize: Int? = nil, _ body: @escaping @Sendable (Argument) throws -> Result
    ) throws -> [Result] {
        try _map(_makeTaskFunction(body), inputs, chunkSize: chunkSize)
    }

    /// ``map(_:chunkSize:_:)`` with a registered function (no worker restart under keep-alive).
    @inlinable
    public func map<Argument: BitwiseCopyable, Result: BitwiseCopyable>(
        _ function: PoolFunction<Argument, Result>, _ inputs: [Argument], chunkSize: Int? = nil
    ) throws -> [Result] {
        try _map(function.function, inputs, chunkSize: chunkSize)
    }

    /// Like ``map(_:chunkSize:_:)``, but one task's failure never hides the others:
    /// each element is that task's result or its error.
    @inlinable
    public func mapResults<Argument: BitwiseCopyable, Result: BitwiseCopyable>(
        _ inputs: [Argument], chunkSize: Int? = nil, _ body: @escaping @Sendable (Argument) throws -> Result
    ) throws -> [Swift.Result<Result, ProcessPoolError>] {
        try _mapResults(_makeTaskFunction(body), inputs, chunkSize: chunkSize)
    }

    @inlinable
    func _map<Argument: BitwiseCopyable, Result: BitwiseCopyable>(
        _ f: _TaskFunction, _ inputs: [Argument], chunkSize: Int?
    ) throws -> [Result] {
        var failures: [(Int, ProcessPoolError)] = []
        let out = try [Result](unsafeUninitializedCapacity: inputs.count) { buffer, initialized in
            try inputs.withUnsafeBytes { raw in
                failures = try _run(f, input: raw, count: inputs.count, chunkSize: chunkSize,
                                    output: UnsafeMutableRawPointer(buffer.baseAddress))
            }
            initialized = inputs.count
        }
        if let first = failures.min(by: { $0.0 < $1.0 }) { throw first.1 }
        return out
    }

    @inlinable
    func _mapResults<Argument: BitwiseCopyable, Result: BitwiseCopyable>(
        _ f: _TaskFunction, _ inputs: [Argument], chunkSize: Int?
    ) throws -> [Swift.Result<Result, ProcessPoolError>] {
        var failures: [(Int, ProcessPoolError)] = []
        let out = try [Result](unsafeUninitializedCapacity: inputs.count) { buffer, initialized in
            if let base = buffer.baseAddress {
                UnsafeMutableRawPointer(base).initializeMemory(as: UInt8.self, repeating: 0,
                                                               count: inputs.count * MemoryLayout<Result>.stride)
            }
            try inputs.withUnsafeBytes { raw in
                failures = try _run(f, input: raw, count: inputs.count, chunkSize: chunkSize,
                                    output: UnsafeMutableRawPointer(buffer.baseAddress))
            }
            initialized = inputs.count
        }
        var results = out.map { Swift.Result<Result, ProcessPoolError>.success($0) }
        for (i, e) in failures { results[i] = .failure(e) }
        return results
    }

    /// Runs `count` tasks of `f` over the packed inputs and writes their results to
    /// `output`. Returns the failed tasks. Inputs larger than a quarter of the shared
    /// memory go in rounds.
    @usableFromInline
    func _run(_ f: _TaskFunction, input: UnsafeRawBufferPointer, count: Int, chunkSize: Int?,
              output: UnsafeMutableRawPointer?) throws -> [(Int, ProcessPoolError)] {
        if count == 0 { return [] }
        let session = try acquireSession(for: f)
        defer { releaseSession(session) }
        guard let id = session.id(of: f) else { throw ProcessPoolError(.closed) }
        let since = journal.snapshot()
        let perItem = max(1, f.inStride + f.outStride)
        let round = max(1, min(count, (configuration.sharedMemoryBytes / 4) / perItem))
        var failures: [(Int, ProcessPoolError)] = []
        var done = 0
        while done < count {
            let n = min(round, count - done)
            let h = session.handle
            guard let inBuf = cpool_alloc(h, n * f.inStride), let outBuf = cpool_alloc(h, n * f.outStride) else {
                throw ProcessPoolError(.encodingFailed(reason: "no room in the pool's shared memory"))
            }
            defer {
                cpool_free(h, inBuf)
                cpool_free(h, outBuf)
            }
            if f.inStride > 0, let src = input.baseAddress {
                inBuf.copyMemory(from: src + done * f.inStride, byteCount: n * f.inStride)
            }
            var job: OpaquePointer?
            var rc = cpool_map_start(h, id, inBuf, f.inStride, outBuf, f.outStride, n, chunkSize ?? 0, nil, &job)
            guard rc == 0, let job else { throw ProcessPoolError.fromCore(rc) }
            defer { cpool_job_free(job) }
            rc = cpool_job_wait(job, 0)
            if rc == Int32(CPOOL_E_TASK_FAILED) {
                failures += collectFailures(job, base: done, input: UnsafeRawPointer(inBuf), inStride: f.inStride, since: since)
            } else if rc != 0 {
                throw ProcessPoolError.fromCore(rc)
            }
            if done + n == count { workersDone(session) }
            if let output, f.outStride > 0 {
                (output + done * f.outStride).copyMemory(from: outBuf, byteCount: n * f.outStride)
            }
            done += n
        }
        return failures
    }

    func collectFailures(_ job: OpaquePointer, base: Int, input: UnsafeRawPointer, inStride: Int,
                         since: [UInt64]) -> [(Int, ProcessPoolError)] {
        let n = Int(cpool_job_failures(job, nil, nil, 0))
        guard n > 0 else { return [] }
        var indices = [Int](repeating: 0, count: n)
        var statuses = [cpool_status_t](repeating: cpool_status_t(), count: n)
        let got = Int(cpool_job_failures(job, &indices, &statuses, n))
        return (0..<min(n, got)).map { k in
            let i = indices[k], s = statuses[k]
            if s.code == Int32(CPOOL_E_FUNCTION_ERROR) {
                let e = journal.find(input: input + i * inStride, since: since)
                return (base + i, ProcessPoolError(.userError(typeName: e?.typeName ?? "Error",
                                                              message: e?.message ?? "(details lost)"),
                                                   taskIndex: base + i))
            }
            return (base + i, ProcessPoolError.fromCore(s.code, detail: s.detail, taskIndex: base + i))
        }
    }

    // MARK: - apply, submit, run

    /// Runs `body(argument)` in a worker and returns its result (multiprocessing's `apply`).
    @inlinable
    public func apply<Argument: BitwiseCopyable, Result: BitwiseCopyable>(
        _ argument: Argument, _ body: @escaping @Sendable (Argument) throws -> Result
    ) throws -> Result {
        try _map(_makeTaskFunction(body), [argument], chunkSize: 1)[0]
    }

    /// ``apply(_:_:)`` with a registered function.
    @inlinable
    public func apply<Argument: BitwiseCopyable, Result: BitwiseCopyable>(
        _ function: PoolFunction<Argument, Result>, _ argument: Argument
    ) throws -> Result {
        try _map(function.function, [argument], chunkSize: 1)[0]
    }

    /// Starts `body(argument)` in a worker and returns at once (`apply_async`, `submit`).
    /// The handle waits, cancels, and calls `onSuccess`/`onFailure` in this process when
    /// the task ends.
    @inlinable
    public func submit<Argument: BitwiseCopyable, Result: BitwiseCopyable>(
        _ argument: Argument, _ body: @escaping @Sendable (Argument) throws -> Result,
        onSuccess: (@Sendable (Result) -> Void)? = nil,
        onFailure: (@Sendable (ProcessPoolError) -> Void)? = nil
    ) throws -> TaskHandle<Result> {
        let f = _makeTaskFunction(body)
        let handle = TaskHandle<Result>(try _start(f, argument: withUnsafeBytes(of: argument) { Array($0) }))
        if onSuccess != nil || onFailure != nil {
            spawnThread {
                switch handle.result() {
                case let .success(r): onSuccess?(r)
                case let .failure(e): onFailure?(e)
                }
            }
        }
        return handle
    }

    @usableFromInline
    func _start(_ f: _TaskFunction, argument: [UInt8]) throws -> PendingTask {
        let session = try acquireSession(for: f)
        do {
            guard let id = session.id(of: f) else { throw ProcessPoolError(.closed) }
            return try PendingTask(session: session, id: id, argument: argument, outBytes: f.outStride,
                                   since: journal.snapshot(), pool: self)
        } catch {
            releaseSession(session)
            throw error
        }
    }

    func taskEnded(_ session: CoreSession) { releaseSession(session) }

    /// Runs `body` in a worker from async code (trio_parallel's `run_sync`). Cancelling
    /// the Swift task kills the worker running it (it is replaced) and throws
    /// ``ProcessPoolError/Code/cancelled``.
    @inlinable
    public func run<Result: BitwiseCopyable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        let handle = try submit(UInt8(0)) { (_: UInt8) in try body() }
        return try await withTaskCancellationHandler {
            try await handle.value
        } onCancel: {
            handle.cancel()
        }
    }

    // MARK: - lifecycle

    /// No new calls are accepted (they throw ``ProcessPoolError/Code/closed``); calls in
    /// progress finish.
    public func close() { monitor.withLock { closed = true } }

    /// Stops now: tasks in progress end with ``ProcessPoolError/Code/cancelled`` and
    /// every worker is killed. Implies ``close()``.
    public func terminate() {
        let sessions: [CoreSession] = monitor.withLock {
            closed = true
            terminated = true
            return liveSessions.values.compactMap(\.session)
        }
        for s in sessions { s.terminate() }
    }

    /// After ``close()`` or ``terminate()``: waits for the calls in progress to end and
    /// for every worker to exit (running its exit hook unless terminated).
    public func join() {
        monitor.wait(until: { activeCalls == 0 })
        let kept: CoreSession? = monitor.withLock {
            let s = keptSession
            keptSession = nil
            return s
        }
        _ = kept // released here: its workers run their exit hooks and leave
    }

    /// The pool's worker processes now (0 for a slot without one: between calls when
    /// keep-alive is off, or while a worker is replaced).
    public var workerPIDs: [Int32] { monitor.withLock { keptSession?.workerPIDs() ?? [] } }

    /// Per worker slot statistics of the pool's workers.
    public var workerStatistics: [WorkerStatistics] { monitor.withLock { keptSession?.workerStatistics() ?? [] } }
}

/// A function registered with ``ProcessPool/register(_:)``: keep-alive workers forked
/// after its registration run it without a restart.
public struct PoolFunction<Argument: BitwiseCopyable, Result: BitwiseCopyable>: Sendable {
    @usableFromInline let function: _TaskFunction
    @usableFromInline init(function: _TaskFunction) { self.function = function }
}

/// Runs `body` with a fresh pool and always shuts it down: closed and joined when
/// `body` returns, terminated when it throws.
public func withProcessPool<T>(
    _ configuration: ProcessPoolConfiguration = .init(), _ body: (ProcessPool) throws -> T
) rethrows -> T {
    let pool = ProcessPool(configuration)
    do {
        let r = try body(pool)
        pool.close()
        pool.join()
        return r
    } catch {
        pool.terminate()
        pool.join()
        throw error
    }
}
