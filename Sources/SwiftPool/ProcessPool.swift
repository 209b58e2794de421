internal import CPoolCore

#if !os(Linux)
#error("SwiftPool runs on Linux only (5.3 or later, for pidfd_open); see the README's requirements.")
#endif

/// A pool of worker processes that runs Swift closures in parallel, isolated: a task that
/// crashes or hangs fails alone, with a ``ProcessPoolError``, and the pool goes on.
///
/// Arguments and results are `BitwiseCopyable` values (integers, floating point, structs
/// and tuples of them: copied as bytes, nothing encoded) or `Codable` ones: `String`,
/// arrays of `BitwiseCopyable` elements and `Data` cross as their raw bytes, any other
/// `Codable` type in a compact binary form. Results have any size. An error a task
/// throws comes back to the caller as itself when its type is `Codable`, else as a
/// ``ProcessPoolError`` with its type name and full message.
///
/// ```swift
/// let pool = ProcessPool(.init(workerCount: 2))
/// let squares = try pool.map(Array(0..<1_000_000)) { $0 * $0 }
/// let shouted = try pool.map(["a", "b"]) { $0.uppercased() }
/// ```
public final class ProcessPool: @unchecked Sendable {
    /// The configuration the pool was made with (see ``keepAlive`` for the one setting
    /// that may change).
    public let configuration: ProcessPoolConfiguration
    let workers: PoolWorkers
    let waiter = Waiter()

    /// Creates a pool. No worker is forked until the first call.
    public init(_ configuration: ProcessPoolConfiguration = .init()) {
        self.configuration = configuration
        workers = PoolWorkers(configuration)
    }

    /// Keep the workers alive between calls (mpire's `keep_alive`); starts as
    /// ``ProcessPoolConfiguration/keepAlive``. Turning it off stops idle workers now.
    public var keepAlive: Bool {
        get { workers.keepAlive }
        set { workers.keepAlive = newValue }
    }

    /// The id (0 ..< workerCount) of the worker process the calling code runs in; `nil`
    /// in the parent. Read it inside a task to learn which worker runs it (mpire's
    /// `pass_worker_id`).
    public static var currentWorkerID: Int? {
        let id = cpool_worker_id()
        return id >= 0 ? Int(id) : nil
    }

    // MARK: - Registered functions

    /// Makes `body` a function that workers forked after this call run without a restart
    /// (with keep-alive, the workers stay between calls). Register before the first call.
    @inlinable @_disfavoredOverload
    public func register<Input: BitwiseCopyable, Output: BitwiseCopyable>(
        _ body: @escaping @Sendable (Input) throws -> Output
    ) -> PoolFunction<Input, Output> {
        _register(PoolFunction(body, input: .bitwise(), output: .bitwise()))
    }

    /// `register(_:)` for `Codable` arguments or results.
    @inlinable
    public func register<Input: Codable, Output: Codable>(
        _ body: @escaping @Sendable (Input) throws -> Output
    ) -> PoolFunction<Input, Output> {
        _register(PoolFunction(body, input: .codable(), output: .codable()))
    }

    @usableFromInline
    func _register<Input, Output>(_ f: PoolFunction<Input, Output>) -> PoolFunction<Input, Output> {
        workers.register(f.function)
        return f
    }

    // MARK: - map

    /// Runs `body` on every input in the workers and returns the results in input order
    /// (multiprocessing's `map`). Throws the first failure in input order; the
    /// `mapResults(_:chunkSize:progress:_:)` variant returns every task's result or error.
    /// `chunkSize`: tasks sent to a worker at a time; `nil` chooses chunks that shrink
    /// as the input drains. Either way an idle worker takes over tasks that a busy one
    /// has not started, so no task waits behind a slow one while a worker is idle.
    @inlinable @_disfavoredOverload
    public func map<Input: BitwiseCopyable, Output: BitwiseCopyable>(
        _ inputs: [Input], chunkSize: Int? = nil, progress: ProgressReporting? = nil, hooks: WorkerHooks? = nil,
        _ body: @escaping @Sendable (Input) throws -> Output
    ) throws -> [Output] {
        try map(PoolFunction(body, input: .bitwise(), output: .bitwise()), inputs, chunkSize: chunkSize, progress: progress,
                hooks: hooks)
    }

    /// `map(_:chunkSize:progress:_:)` for `Codable` arguments or results (`String`, arrays,
    /// `Data`, your own types).
    @inlinable
    public func map<Input: Codable, Output: Codable>(
        _ inputs: [Input], chunkSize: Int? = nil, progress: ProgressReporting? = nil, hooks: WorkerHooks? = nil,
        _ body: @escaping @Sendable (Input) throws -> Output
    ) throws -> [Output] {
        try map(PoolFunction(body, input: .codable(), output: .codable()), inputs, chunkSize: chunkSize, progress: progress,
                hooks: hooks)
    }

    /// `map(_:chunkSize:progress:_:)` with a registered or named function. `hooks`: run in
    /// each worker that serves this call, on workers started for it alone (see
    /// ``WorkerHooks``; the values of exit hooks: ``takeExitResults()``).
    @inlinable
    public func map<Input, Output>(
        _ function: PoolFunction<Input, Output>, _ inputs: [Input], chunkSize: Int? = nil,
        progress: ProgressReporting? = nil, hooks: WorkerHooks? = nil
    ) throws -> [Output] {
        var out: [Output] = []
        out.reserveCapacity(inputs.count)
        try _runCall(function, inputs, chunkSize: chunkSize, progress: progress, hooks: hooks) { round in
            if let f = round.failures.first { throw f.error }
            try round.appendAll(to: &out, function.output)
        }
        return out
    }

    /// Like `map(_:chunkSize:progress:_:)`, but one task's failure never hides the others:
    /// each element is that task's result or its error.
    @inlinable @_disfavoredOverload
    public func mapResults<Input: BitwiseCopyable, Output: BitwiseCopyable>(
        _ inputs: [Input], chunkSize: Int? = nil, progress: ProgressReporting? = nil,
        _ body: @escaping @Sendable (Input) throws -> Output
    ) throws -> [Result<Output, any Error>] {
        try mapResults(PoolFunction(body, input: .bitwise(), output: .bitwise()), inputs, chunkSize: chunkSize, progress: progress)
    }

    /// `mapResults(_:chunkSize:progress:_:)` for `Codable` arguments or results.
    @inlinable
    public func mapResults<Input: Codable, Output: Codable>(
        _ inputs: [Input], chunkSize: Int? = nil, progress: ProgressReporting? = nil,
        _ body: @escaping @Sendable (Input) throws -> Output
    ) throws -> [Result<Output, any Error>] {
        try mapResults(PoolFunction(body, input: .codable(), output: .codable()), inputs, chunkSize: chunkSize, progress: progress)
    }

    /// `mapResults(_:chunkSize:progress:_:)` with a registered function.
    @inlinable
    public func mapResults<Input, Output>(
        _ function: PoolFunction<Input, Output>, _ inputs: [Input], chunkSize: Int? = nil,
        progress: ProgressReporting? = nil, hooks: WorkerHooks? = nil
    ) throws -> [Result<Output, any Error>] {
        var out: [Result<Output, any Error>] = []
        out.reserveCapacity(inputs.count)
        try _runCall(function, inputs, chunkSize: chunkSize, progress: progress, hooks: hooks) { round in round.appendResults(to: &out, function.output) }
        return out
    }

    /// The rounds of a blocking call: stage, run, hand each ended round to `collect`.
    @inlinable
    func _runCall<Input, Output>(_ function: PoolFunction<Input, Output>, _ inputs: [Input], chunkSize: Int?,
                                 progress: ProgressReporting?, hooks: WorkerHooks? = nil,
                                 _ collect: (_Round) throws -> Void) throws {
        if inputs.isEmpty {
            ProgressReporting._reportNothing(progress)
            return
        }
        let call = try _Call(pool: self, function: function.function, hooks: hooks)
        call.reportProgress(progress, total: inputs.count)
        defer { call.end() }
        try inputs.withUnsafeBufferPointer { buffer in
            var done = 0
            while done < buffer.count {
                let round = try call.stage(buffer, from: done, codec: function.input,
                                           outStride: function.function.outStride)
                try round.start(chunkSize: chunkSize)
                round.waitHere()
                done += round.count
                if done == buffer.count { call.workersDone() }
                try collect(round)
            }
        }
    }

    // MARK: - async map

    /// `map(_:chunkSize:progress:_:)` from async code: waits without blocking a Swift
    /// concurrency thread, and cancelling the Swift task cancels the map (tasks not
    /// started are dropped, running ones have their workers killed and replaced).
    @inlinable @_disfavoredOverload
    public func map<Input: BitwiseCopyable, Output: BitwiseCopyable>(
        _ inputs: [Input], chunkSize: Int? = nil, progress: ProgressReporting? = nil, hooks: WorkerHooks? = nil,
        _ body: @escaping @Sendable (Input) throws -> Output
    ) async throws -> [Output] {
        try await map(PoolFunction(body, input: .bitwise(), output: .bitwise()), inputs, chunkSize: chunkSize,
                      progress: progress, hooks: hooks)
    }

    /// The async `map(_:chunkSize:progress:_:)` for `Codable` arguments or results.
    @inlinable
    public func map<Input: Codable, Output: Codable>(
        _ inputs: [Input], chunkSize: Int? = nil, progress: ProgressReporting? = nil, hooks: WorkerHooks? = nil,
        _ body: @escaping @Sendable (Input) throws -> Output
    ) async throws -> [Output] {
        try await map(PoolFunction(body, input: .codable(), output: .codable()), inputs, chunkSize: chunkSize,
                      progress: progress, hooks: hooks)
    }

    /// The async `map(_:chunkSize:progress:_:)` with a registered or named function.
    @inlinable
    public func map<Input, Output>(
        _ function: PoolFunction<Input, Output>, _ inputs: [Input], chunkSize: Int? = nil,
        progress: ProgressReporting? = nil, hooks: WorkerHooks? = nil
    ) async throws -> [Output] {
        if inputs.isEmpty {
            ProgressReporting._reportNothing(progress)
            return []
        }
        let call = try await _leaseAsync(function.function, hooks: hooks)
        call.reportProgress(progress, total: inputs.count)
        defer { call.end() }
        var out: [Output] = []
        out.reserveCapacity(inputs.count)
        var done = 0
        while done < inputs.count {
            try Task.checkCancellation()
            let round = try inputs.withUnsafeBufferPointer {
                try call.stage($0, from: done, codec: function.input, outStride: function.function.outStride)
            }
            try round.start(chunkSize: chunkSize)
            await round.waitAsync()
            if let f = round.failures.first { throw f.error }
            try round.appendAll(to: &out, function.output)
            done += round.count
        }
        return out
    }

    /// A lease for `f` without blocking a Swift concurrency thread while the call waits
    /// for the workers.
    @usableFromInline
    func _leaseAsync(_ f: _TaskFunction, hooks: WorkerHooks? = nil) async throws -> _Call {
        let lease: Lease = try await withCheckedThrowingContinuation { c in
            workers.leaseLater(f, hooks: hooks) { c.resume(with: $0) }
        }
        return _Call(pool: self, lease: lease)
    }

    // MARK: - apply, submit, run

    /// Runs `body(input)` in a worker and returns its result (multiprocessing's `apply`).
    @inlinable @_disfavoredOverload
    public func apply<Input: BitwiseCopyable, Output: BitwiseCopyable>(
        _ input: Input, _ body: @escaping @Sendable (Input) throws -> Output
    ) throws -> Output {
        try apply(PoolFunction(body, input: .bitwise(), output: .bitwise()), input)
    }

    /// `apply(_:_:)` for `Codable` arguments or results.
    @inlinable
    public func apply<Input: Codable, Output: Codable>(
        _ input: Input, _ body: @escaping @Sendable (Input) throws -> Output
    ) throws -> Output {
        try apply(PoolFunction(body, input: .codable(), output: .codable()), input)
    }

    /// `apply(_:_:)` with a registered function.
    @inlinable
    public func apply<Input, Output>(_ function: PoolFunction<Input, Output>, _ input: Input) throws -> Output {
        try map(function, [input], chunkSize: 1)[0]
    }

    /// Starts `body(input)` in a worker and returns at once (`apply_async`, `submit`);
    /// throws ``ProcessPoolError/Code/closed`` after ``close()``.
    /// While the workers are busy the task waits in the pool's queue: the pool never
    /// runs more than `workerCount` worker processes. The handle waits, cancels, and
    /// calls `onSuccess`/`onFailure` when the task ends (on the pool's waiter thread:
    /// keep them short).
    @inlinable @_disfavoredOverload
    public func submit<Input: BitwiseCopyable, Output: BitwiseCopyable>(
        _ input: Input, _ body: @escaping @Sendable (Input) throws -> Output,
        onSuccess: (@Sendable (Output) -> Void)? = nil, onFailure: (@Sendable (any Error) -> Void)? = nil
    ) throws -> TaskHandle<Output> {
        try submit(PoolFunction(body, input: .bitwise(), output: .bitwise()), input, onSuccess: onSuccess,
               onFailure: onFailure)
    }

    /// `submit(_:_:onSuccess:onFailure:)` for `Codable` arguments or results.
    @inlinable
    public func submit<Input: Codable, Output: Codable>(
        _ input: Input, _ body: @escaping @Sendable (Input) throws -> Output,
        onSuccess: (@Sendable (Output) -> Void)? = nil, onFailure: (@Sendable (any Error) -> Void)? = nil
    ) throws -> TaskHandle<Output> {
        try submit(PoolFunction(body, input: .codable(), output: .codable()), input, onSuccess: onSuccess,
               onFailure: onFailure)
    }

    /// `submit(_:_:onSuccess:onFailure:)` with a registered function.
    @inlinable
    public func submit<Input, Output>(
        _ function: PoolFunction<Input, Output>, _ input: Input,
        onSuccess: (@Sendable (Output) -> Void)? = nil, onFailure: (@Sendable (any Error) -> Void)? = nil
    ) throws -> TaskHandle<Output> {
        try _checkOpen()
        let pending = _PendingTask()
        let handle = TaskHandle(pending, codec: function.output)
        if onSuccess != nil || onFailure != nil {
            pending.onEnd = {
                switch handle.result() {
                case let .success(v): onSuccess?(v)
                case let .failure(e): onFailure?(e)
                }
            }
        }
        let inputCodec = function.input, outStride = function.function.outStride
        _start(pending, function.function) { call in
            try [input].withUnsafeBufferPointer { try call.stage($0, from: 0, codec: inputCodec, outStride: outStride) }
        }
        return handle
    }

    @usableFromInline
    func _checkOpen() throws { try workers.checkOpen() }

    @usableFromInline
    func _start(_ pending: _PendingTask, _ f: _TaskFunction, stage: @escaping (_Call) throws -> _Round) {
        workers.leaseLater(f) { [self] lease in pending.start(lease, pool: self, stage: stage) }
    }

    /// Runs `body` in a worker from async code (trio_parallel's `run_sync`). Cancelling
    /// the Swift task kills the worker running it (it is replaced) and throws
    /// ``ProcessPoolError/Code/cancelled``.
    @inlinable @_disfavoredOverload
    public func run<Output: BitwiseCopyable>(_ body: @escaping @Sendable () throws -> Output) async throws -> Output {
        try await run(PoolFunction({ (_: UInt8) in try body() }, input: .bitwise(), output: .bitwise()))
    }

    /// `run(_:)` for a `Codable` result.
    @inlinable
    public func run<Output: Codable>(_ body: @escaping @Sendable () throws -> Output) async throws -> Output {
        try await run(PoolFunction({ (_: UInt8) in try body() }, input: .bitwise(), output: .codable()))
    }

    @inlinable
    func run<Output>(_ function: PoolFunction<UInt8, Output>) async throws -> Output {
        let handle = try submit(function, 0)
        return try await withTaskCancellationHandler {
            try await handle.value
        } onCancel: {
            handle.cancel()
        }
    }

    // MARK: - lifecycle

    /// No new calls are accepted (they throw ``ProcessPoolError/Code/closed``); calls in
    /// progress and queued tasks finish.
    public func close() { workers.close() }

    /// Stops now: tasks in progress and queued end with ``ProcessPoolError/Code/cancelled``
    /// and every worker is killed. Implies ``close()``.
    public func terminate() { workers.terminate() }

    /// After ``close()`` or ``terminate()``: waits for the calls in progress to end and
    /// for every worker to exit (running its exit hook unless terminated).
    public func join() { workers.join() }

    /// The pool's worker processes now (0 for a slot without one: between calls when
    /// keep-alive is off, or while a worker is replaced).
    public var workerPIDs: [Int32] { workers.workerPIDs }

    /// Per worker slot statistics of the pool's workers.
    public var workerStatistics: [WorkerStatistics] { workers.workerStatistics }

    /// The values that exit hooks returned (``WorkerHook/init(returning:)``) since the
    /// last take, in the order each worker's processes left (mpire's `get_exit_results`).
    public func takeExitResults() -> [WorkerExitResult] { workers.takeExitResults() }

    /// Where each worker's time went so far (see ``ProcessPoolConfiguration/insights``);
    /// `print(pool.insights)` shows a short table. Empty before the first call.
    public var insights: PoolInsights { workers.insights }
}

/// A function the workers run, with how its arguments and results cross: made by
/// `register(_:)` (then workers forked after it run it without a restart)
/// and by every call that takes a closure.
public struct PoolFunction<Input, Output>: @unchecked Sendable {
    @usableFromInline let function: _TaskFunction
    @usableFromInline let input: _Codec<Input>
    @usableFromInline let output: _Codec<Output>

    /// The task function for `body`; its chunk loop is specialized here, in the caller's
    /// module, for the argument and result types.
    @inlinable
    init(_ body: @escaping @Sendable (Input) throws -> Output, input: _Codec<Input>, output: _Codec<Output>) {
        self.input = input
        self.output = output
        let run: _ChunkRunner
        if input.fixedStride != nil && output.fixedStride != nil {
            // Plain bytes both ways: a load, a call and a store per item, nothing to decide.
            run = { records, inStride, results, outStride, count, progress in
                for i in 0..<count {
                    progress.pointee = i
                    do {
                        let r = try body(records.loadUnaligned(fromByteOffset: i &* inStride, as: Input.self))
                        results.storeBytes(of: r, toByteOffset: i &* outStride, as: Output.self)
                    } catch {
                        _reportThrown(error)
                        progress.pointee = i
                        return -1
                    }
                }
                return 0
            }
        } else {
            let scratch = _ByteSink() // each worker has its own copy of it, made by fork
            run = { records, inStride, results, outStride, count, progress in
                for i in 0..<count {
                    progress.pointee = i
                    do {
                        let x = try input.load(records + i &* inStride)
                        try output.store(try body(x), results + i &* outStride, scratch: scratch)
                    } catch {
                        _reportThrown(error)
                        progress.pointee = i
                        return -1
                    }
                }
                return 0
            }
        }
        function = _TaskFunction(run: run, inStride: input.recordStride, outStride: output.fixedStride ?? 0)
    }
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

/// `withProcessPool(_:_:)` for async code.
public func withProcessPool<T>(
    _ configuration: ProcessPoolConfiguration = .init(), _ body: (ProcessPool) async throws -> T
) async rethrows -> T {
    let pool = ProcessPool(configuration)
    do {
        let r = try await body(pool)
        pool.close()
        pool.join()
        return r
    } catch {
        pool.terminate()
        pool.join()
        throw error
    }
}
