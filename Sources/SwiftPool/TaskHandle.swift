/// One submitted task: queued until the workers can run its closure, then a one-task
/// round whose end the pool's waiter thread reports.
@usableFromInline
final class _PendingTask: @unchecked Sendable {
    private let monitor = Monitor()
    // Guarded by monitor:
    private var round: _Round?
    private var outcome: Result<_Round, any Error>?
    private var cancelled = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    /// Runs once on the thread that ends the task (callbacks).
    @usableFromInline var onEnd: (() -> Void)?

    @usableFromInline init() {}

    /// Starts the task with its lease: stages its input, starts its job and hands the job
    /// to the waiter. A task cancelled while it queued gives the lease back at once.
    func start(_ lease: Result<Lease, any Error>, pool: ProcessPool, stage: (_Call) throws -> _Round) {
        let call: _Call
        switch lease {
        case let .failure(e): return finish(.failure(e))
        case let .success(l): call = _Call(pool: pool, lease: l)
        }
        if monitor.withLock({ cancelled }) {
            call.end()
            return
        }
        do {
            let r = try stage(call)
            try r.start(chunkSize: 1)
            monitor.withLock { round = r }
            pool.waiter.watch(r.job!, of: call.lease.session) {
                r.ended()
                call.end()
                self.finish(.success(r))
            }
        } catch {
            call.end()
            finish(.failure(error))
        }
    }

    private func finish(_ r: Result<_Round, any Error>) {
        let (resume, hook): ([CheckedContinuation<Void, Never>], (() -> Void)?) = monitor.withLock {
            guard outcome == nil else { return ([], nil) }
            outcome = r
            round = nil
            monitor.broadcastLocked()
            // The callbacks hold the handle, which holds this task: let go of them.
            defer {
                waiters = []
                onEnd = nil
            }
            return (waiters, onEnd)
        }
        for c in resume { c.resume() }
        hook?()
    }

    var isDone: Bool { monitor.withLock { outcome != nil } }

    /// Waits up to `timeoutNs` (nil: no limit) for the end; returns the outcome if ended.
    func wait(timeoutNs: UInt64?) -> Result<_Round, any Error>? {
        monitor.withLock {
            if let timeoutNs {
                _ = monitor.waitLocked(until: { outcome != nil }, timeoutNs: timeoutNs)
            } else {
                monitor.waitLocked { outcome != nil }
            }
            return outcome
        }
    }

    /// Waits for the end without blocking a Swift concurrency thread.
    func ended() async -> Result<_Round, any Error> {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done = monitor.withLock {
                if outcome != nil { return true }
                waiters.append(c)
                return false
            }
            if done { c.resume() }
        }
        return monitor.withLock { outcome! }
    }

    func cancel() {
        let queued: Bool = monitor.withLock {
            guard outcome == nil else { return false }
            cancelled = true
            if let round {
                round.cancel()
                return false
            }
            return true
        }
        if queued { finish(.failure(ProcessPoolError(.cancelled, taskIndex: 0))) }
    }
}

/// A task started with `submit`: wait for it, cancel it, or await its value
/// (multiprocessing's `AsyncResult`, `concurrent.futures.Future`).
public final class TaskHandle<Output>: @unchecked Sendable {
    @usableFromInline let pending: _PendingTask
    @usableFromInline let codec: _Codec<Output>

    @usableFromInline
    init(_ pending: _PendingTask, codec: _Codec<Output>) {
        self.pending = pending
        self.codec = codec
    }

    /// True once the task has ended (successfully or not).
    public var isDone: Bool { pending.isDone }

    /// Waits until the task ends or `timeout` passes; returns whether it ended.
    @discardableResult
    public func wait(timeout: Duration? = nil) -> Bool {
        pending.wait(timeoutNs: timeout.map { max(1, $0.nanoseconds) }) != nil
    }

    /// Blocks until the task ends and returns its result, or throws its error: the
    /// error its closure threw (a `Codable` error as itself), or a ``ProcessPoolError``.
    public func get() throws -> Output { try outcome(pending.wait(timeoutNs: nil)!) }

    /// The result, awaited without blocking a Swift concurrency thread.
    public var value: Output {
        get async throws { try outcome(await pending.ended()) }
    }

    /// Drops the task if it has not started; stops it by killing its worker (which is
    /// replaced) if it runs. The task then fails with ``ProcessPoolError/Code/cancelled``.
    public func cancel() { pending.cancel() }

    func outcome(_ r: Result<_Round, any Error>) throws -> Output {
        let round = try r.get()
        if let f = round.failures.first { throw f.error }
        return try round.value(0, codec)
    }

    /// The task's result or error, once it has ended (for callbacks).
    @usableFromInline func result() -> Result<Output, any Error> { Result { try get() } }
}
