internal import CPoolCore
#if canImport(Glibc)
import Glibc
#endif

/// One task running in a worker, as the C core sees it (`cpool_map_start` of one item
/// whose argument and result live in the pool's shared memory).
@usableFromInline
final class PendingTask: @unchecked Sendable {
    private let session: CoreSession
    private let pool: ProcessPool
    private let job: OpaquePointer
    private let inBuf: UnsafeMutableRawPointer
    private let outBuf: UnsafeMutableRawPointer
    private let outBytes: Int
    private let since: [UInt64]
    // Two locks: waiting holds `waiting` for as long as the task runs, so cancel() must
    // not need it; `state` guards only the job's release, and is held briefly.
    private let waiting = Monitor()
    private let state = Monitor()
    private var outcome: Result<[UInt8], ProcessPoolError>? // written under both locks

    init(session: CoreSession, id: Int32, argument: [UInt8], outBytes: Int, since: [UInt64],
         pool: ProcessPool) throws {
        let h = session.handle
        guard let i = cpool_alloc(h, max(1, argument.count)) else {
            throw ProcessPoolError(.encodingFailed(reason: "no room in the pool's shared memory"))
        }
        guard let o = cpool_alloc(h, max(1, outBytes)) else {
            cpool_free(h, i)
            throw ProcessPoolError(.encodingFailed(reason: "no room in the pool's shared memory"))
        }
        argument.withUnsafeBytes { if let b = $0.baseAddress { i.copyMemory(from: b, byteCount: $0.count) } }
        var j: OpaquePointer?
        let rc = cpool_map_start(h, id, i, argument.count, o, outBytes, 1, 1, nil, &j)
        guard rc == 0, let j else {
            cpool_free(h, i)
            cpool_free(h, o)
            throw ProcessPoolError.fromCore(rc)
        }
        self.session = session
        self.pool = pool
        job = j
        inBuf = i
        outBuf = o
        self.outBytes = outBytes
        self.since = since
    }

    deinit {
        if outcome == nil {
            cpool_job_cancel(job)
            _ = finish(timeoutNs: 0)
        }
    }

    var isDone: Bool {
        state.withLock { outcome != nil || cpool_job_done(job) == 1 }
    }

    /// Waits up to timeoutNs (0: forever) and returns the outcome once the task ended.
    func finish(timeoutNs: UInt64) -> Result<[UInt8], ProcessPoolError>? {
        waiting.withLock {
            if let outcome = state.withLock({ outcome }) { return outcome }
            let rc = cpool_job_wait(job, timeoutNs)
            if rc == -ETIMEDOUT { return nil }
            let r: Result<[UInt8], ProcessPoolError>
            if rc == 0 {
                r = .success(Array(UnsafeRawBufferPointer(start: outBuf, count: outBytes)))
            } else if rc == Int32(CPOOL_E_TASK_FAILED) {
                let e = pool.collectFailures(job, base: 0, input: UnsafeRawPointer(inBuf), inStride: 0, since: since)
                r = .failure(e.first?.1 ?? ProcessPoolError.fromCore(rc, taskIndex: 0))
            } else {
                r = .failure(ProcessPoolError.fromCore(rc, taskIndex: 0))
            }
            state.withLock {
                cpool_job_free(job)
                cpool_free(session.handle, inBuf)
                cpool_free(session.handle, outBuf)
                outcome = r
            }
            pool.taskEnded(session)
            return r
        }
    }

    func cancel() {
        state.withLock { if outcome == nil { cpool_job_cancel(job) } }
    }
}


/// A task started with ``ProcessPool/submit(_:_:onSuccess:onFailure:)``: wait for it,
/// cancel it, or await its value.
public final class TaskHandle<Result: BitwiseCopyable>: Sendable {
    @usableFromInline let pending: PendingTask

    @usableFromInline
    init(_ pending: PendingTask) { self.pending = pending }

    /// True once the task has ended (successfully or not).
    public var isDone: Bool { pending.isDone }

    /// Waits until the task ends or `timeout` passes; returns whether it ended.
    @discardableResult
    public func wait(timeout: Duration? = nil) -> Bool {
        let ns = timeout.map { max(1, $0.nanoseconds) } ?? 0
        return pending.finish(timeoutNs: ns) != nil
    }

    /// Waits for the task and returns its result or its error.
    public func result() -> Swift.Result<Result, ProcessPoolError> {
        switch pending.finish(timeoutNs: 0)! {
        case let .success(bytes):
            return .success(bytes.withUnsafeBytes { $0.loadUnaligned(as: Result.self) })
        case let .failure(e):
            return .failure(e)
        }
    }

    /// Waits for the task and returns its result, or throws its error.
    public func get() throws -> Result { try result().get() }

    /// Drops the task if it has not started; stops it by killing its worker (which is
    /// replaced) if it runs. The task then fails with ``ProcessPoolError/Code/cancelled``.
    public func cancel() { pending.cancel() }

    /// The result, awaited without blocking a Swift concurrency thread.
    public var value: Result {
        get async throws {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Result, any Error>) in
                spawnThread { c.resume(with: self.result().mapError { $0 as any Error }) }
            }
        }
    }
}
