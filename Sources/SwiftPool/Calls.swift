internal import CPoolCore
#if canImport(Glibc)
import Glibc
#endif

/// One call on the pool's workers (a map, a lazy map, an apply, a submitted task): its
/// lease on the workers, released once when the call ends. A call runs in rounds; each
/// round stages its inputs in shared memory and is one job of the C core.
@usableFromInline
final class _Call: @unchecked Sendable {
    let pool: ProcessPool
    let lease: Lease
    private var ended = false
    /// Where the call's progress goes, when the caller asked for it.
    @usableFromInline var progress: _ProgressTracker?

    /// Waits for a lease for `function` (see `PoolWorkers`).
    @usableFromInline
    init(pool: ProcessPool, function: _TaskFunction, hooks: WorkerHooks? = nil) throws {
        self.pool = pool
        lease = try pool.workers.lease(function, hooks: hooks)
    }

    init(pool: ProcessPool, lease: Lease) {
        self.pool = pool
        self.lease = lease
    }

    deinit { end() }

    /// Gives the workers back (once).
    @usableFromInline
    func end() {
        if ended { return }
        ended = true
        pool.workers.release(lease)
        progress?.finish()
    }

    /// Reports the call's progress through `reporting` (nil: none); `total` tasks when
    /// known.
    @usableFromInline
    func reportProgress(_ reporting: ProgressReporting?, total: Int?) {
        if let reporting { progress = _ProgressTracker(reporting, total: total) }
    }

    /// Bytes of inputs (and fixed-size results) one round stages at most: a quarter of
    /// the shared memory, so that other calls find room too.
    @usableFromInline var roundBudget: Int { max(1, pool.configuration.sharedMemoryBytes / 4) }

    /// The whole shared memory: an input larger than this can never be staged.
    @usableFromInline var sharedBytes: Int { pool.configuration.sharedMemoryBytes }

    /// Shared memory for a round, or nil when there is no room now.
    @usableFromInline
    func alloc(_ bytes: Int) -> UnsafeMutableRawPointer? { cpool_alloc(lease.session.handle, max(1, bytes)) }

    func free(_ p: UnsafeMutableRawPointer?) { if let p { cpool_free(lease.session.handle, p) } }

    /// The call's last round has ended: without keep-alive the workers may go now.
    @usableFromInline
    func workersDone() { pool.workers.workersDone(lease) }
}

/// One round of a call: `count` tasks whose inputs are staged in shared memory, one
/// job of the C core, and, once it has ended, each task's result or error.
@usableFromInline
final class _Round: @unchecked Sendable {
    @usableFromInline let call: _Call
    /// Index in the call's input of the round's first task.
    @usableFromInline let first: Int
    @usableFromInline let count: Int
    let input: UnsafeMutableRawPointer
    let inStride: Int
    /// Fixed-size results: `count × outStride` bytes in shared memory; nil for results of
    /// variable size, which are the tasks' outputs.
    @usableFromInline let output: UnsafeMutableRawPointer?
    @usableFromInline let outStride: Int
    /// Tasks that failed before they ran (their input could not be staged), by index in
    /// the round.
    var preFailures: [Int: any Error]
    var job: OpaquePointer?
    /// The failed tasks once the round has ended, by index in the round, in order.
    @usableFromInline var failures: [(index: Int, error: any Error)] = []
    /// The same failures as the C core reported them (not those in `preFailures`).
    var coreFailures: [(index: Int, status: cpool_status_t)] = []

    @usableFromInline
    init(call: _Call, first: Int, count: Int, input: UnsafeMutableRawPointer, inStride: Int, outStride: Int,
         preFailures: [Int: any Error]) throws {
        self.call = call
        self.first = first
        self.count = count
        self.input = input
        self.inStride = inStride
        self.outStride = outStride
        self.preFailures = preFailures
        if outStride > 0 {
            guard let o = call.alloc(count * outStride) else {
                call.free(input)
                throw ProcessPoolError(.encodingFailed(reason: "no room in the pool's shared memory for \(count) results"),
                                       taskIndex: first)
            }
            output = o
        } else {
            output = nil
        }
    }

    deinit {
        if let job { cpool_job_free(job) }
        call.free(input)
        call.free(output)
    }

    /// Starts the round's job.
    @usableFromInline
    func start(chunkSize: Int?) throws {
        var j: OpaquePointer?
        let rc = cpool_map_start(call.lease.session.handle, call.lease.id, input, inStride, output, outStride,
                                 count, chunkSize ?? 0, nil, &j)
        guard rc == 0, let j else { throw ProcessPoolError.fromCore(rc, taskIndex: first) }
        job = j
    }

    /// Waits for the round's job on this thread and reads its failures.
    @usableFromInline
    func waitHere() {
        guard let job else { return }
        if let progress = call.progress {
            while cpool_job_wait(job, progress.intervalNanoseconds) == -ETIMEDOUT { progress.poll(job) }
        } else {
            cpool_job_wait(job, 0)
        }
        ended()
    }

    /// Waits for the round's job without blocking a Swift concurrency thread: the pool's
    /// waiter thread resumes it. Cancelling the Swift task cancels the job.
    @usableFromInline
    func waitAsync() async {
        guard let job else { return }
        let waiter = call.pool.waiter
        let session = call.lease.session
        // The waiter thread only wakes this task at the end; progress in between is
        // polled by a child task.
        let polling: Task<Void, Never>? = call.progress == nil ? nil : Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: call.progress?.intervalNanoseconds ?? 0)
                if !Task.isCancelled { pollProgress() }
            }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                waiter.watch(job, of: session) { c.resume() }
            }
        } onCancel: {
            self.cancel()
        }
        polling?.cancel()
        _ = await polling?.value
        ended()
    }

    func cancel() { if let job { cpool_job_cancel(job) } }

    /// Reports the progress of the round in flight (see `_ProgressTracker`).
    func pollProgress() { if let job { call.progress?.poll(job) } }

    /// Reads the failures of the ended job: each task's status, the error its closure
    /// threw (its output), and the inputs that could not be staged.
    func ended() {
        guard let job else { return }
        var found: [Int: any Error] = preFailures
        let n = Int(cpool_job_failures(job, nil, nil, 0))
        if n > 0 {
            var indices = [Int](repeating: 0, count: n)
            var statuses = [cpool_status_t](repeating: cpool_status_t(), count: n)
            let got = Int(cpool_job_failures(job, &indices, &statuses, n))
            for k in 0..<min(n, got) where found[indices[k]] == nil {
                let i = indices[k], s = statuses[k]
                coreFailures.append((index: i, status: s))
                found[i] = s.code == Int32(CPOOL_E_FUNCTION_ERROR)
                    ? thrownError(from: outputBytes(i), taskIndex: first + i)
                    : ProcessPoolError.fromCore(s.code, detail: s.detail, taskIndex: first + i)
            }
        }
        failures = found.sorted { $0.key < $1.key }.map { (index: $0.key, error: $0.value) }
        call.progress?.roundEnded(count: count, failed: failures.count)
        call.pool.workers.observers.tasksEnded(count: count, failures: failures.lazy.map(\.error))
    }

    /// The output of task `i` of the round (its result of variable size, or its error),
    /// valid while the round lives.
    @usableFromInline
    func outputBytes(_ i: Int) -> UnsafeRawBufferPointer {
        guard let job else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        var p: UnsafeRawPointer?
        var n = 0
        let rc = cpool_job_output(job, i, &p, &n)
        if rc != 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: p, count: n)
    }

    /// Task `i`'s result (the task succeeded).
    @inlinable
    func value<O>(_ i: Int, _ codec: _Codec<O>) throws -> O {
        if let output { return output.loadUnaligned(fromByteOffset: i &* outStride, as: O.self) }
        do {
            return try codec.decode(outputBytes(i))
        } catch {
            throw ProcessPoolError(.encodingFailed(reason: "the result could not be decoded: \(error)"),
                                   taskIndex: first + i)
        }
    }

    /// Appends the round's results to `out` (every task succeeded).
    @inlinable
    func appendAll<O>(to out: inout [O], _ codec: _Codec<O>) throws {
        if let output {
            out.append(contentsOf: UnsafeBufferPointer(start: output.assumingMemoryBound(to: O.self), count: count))
            return
        }
        for i in 0..<count { out.append(try value(i, codec)) }
    }

    /// Each task's result or error, in order.
    @inlinable
    func appendResults<O>(to out: inout [Result<O, any Error>], _ codec: _Codec<O>) {
        var next = 0
        for i in 0..<count {
            if next < failures.count && failures[next].index == i {
                out.append(.failure(failures[next].error))
                next += 1
            } else {
                out.append(Result { try value(i, codec) })
            }
        }
    }
}

extension _Call {
    /// Stages the inputs from `from` on, as many as a round holds (at least one), and
    /// makes the round. Fixed-size inputs are copied as they are; variable-size ones are
    /// encoded into shared memory behind one `_VariableInput` record each. An input that
    /// cannot be encoded, or is larger than the shared memory, fails its own task only.
    @inlinable
    func stage<I>(_ inputs: UnsafeBufferPointer<I>, from: Int, codec: _Codec<I>, outStride: Int,
                  indexBase: Int = 0) throws -> _Round {
        let left = inputs.count - from
        if let stride = codec.fixedStride {
            return try stageRecords(UnsafeRawPointer(inputs.baseAddress), count: inputs.count, stride: stride,
                                    from: from, outStride: outStride, indexBase: indexBase)
        }
        let recordBytes = MemoryLayout<_VariableInput>.stride
        var pre: [Int: any Error] = [:]
        var sizes: [Int] = []
        var total = 0
        // Raw values are measured and copied once, straight into shared memory; others
        // are encoded into a private buffer first.
        let sink: _ByteSink? = codec.withRawBytes == nil ? _ByteSink(capacity: 1 << 16) : nil
        while sizes.count < left {
            let i = sizes.count
            var size: Int
            if let withRawBytes = codec.withRawBytes {
                size = 0
                try withRawBytes(inputs[from + i]) { size = $0.count }
            } else {
                let mark = sink!.count
                do { try codec.append(inputs[from + i], sink!) } catch {
                    sink!.count = mark
                    pre[i] = ProcessPoolError(.encodingFailed(reason: "the input could not be encoded: \(error)"),
                                              taskIndex: indexBase + from + i)
                }
                size = sink!.count - mark
            }
            if size + recordBytes > sharedBytes / 2 {
                pre[i] = ProcessPoolError(.encodingFailed(reason:
                    "the input takes \(size) bytes; the pool's shared memory holds \(sharedBytes) (sharedMemoryBytes)"),
                    taskIndex: indexBase + from + i)
                sink?.count -= size
                size = 0
            }
            if i > 0 && total + size + (i + 1) * recordBytes > roundBudget {
                sink?.count -= size
                break
            }
            sizes.append(size)
            total += size
        }
        let n = sizes.count
        guard let buf = alloc(n * recordBytes + total) else { throw _Call.noRoom(indexBase + from) }
        var at = n * recordBytes
        for i in 0..<n {
            let dst = buf + at
            if pre[i] != nil {
                buf.storeBytes(of: _VariableInput(address: 0, count: -1), toByteOffset: i * recordBytes, as: _VariableInput.self)
                continue
            }
            if let withRawBytes = codec.withRawBytes {
                try withRawBytes(inputs[from + i]) { b in
                    if let s = b.baseAddress, b.count > 0 { dst.copyMemory(from: s, byteCount: b.count) }
                }
            }
            buf.storeBytes(of: _VariableInput(address: UInt(bitPattern: dst), count: sizes[i]),
                           toByteOffset: i * recordBytes, as: _VariableInput.self)
            at += sizes[i]
        }
        if let sink, sink.count > 0 {
            (buf + n * recordBytes).copyMemory(from: sink.base, byteCount: sink.count)
        }
        return try _Round(call: self, first: indexBase + from, count: n, input: buf, inStride: recordBytes,
                          outStride: outStride, preFailures: pre)
    }

    /// Fixed-size inputs: copies the records from `from` on (`count` records of `stride`
    /// bytes at `base`), as many as a round holds, and makes the round.
    @usableFromInline
    func stageRecords(_ base: UnsafeRawPointer?, count: Int, stride: Int, from: Int, outStride: Int,
                      indexBase: Int) throws -> _Round {
        let n = min(count - from, max(1, roundBudget / max(1, stride + outStride)))
        guard let buf = alloc(n * stride) else { throw _Call.noRoom(indexBase + from) }
        if stride > 0, let base { buf.copyMemory(from: base + from * stride, byteCount: n * stride) }
        return try _Round(call: self, first: indexBase + from, count: n, input: buf, inStride: stride,
                          outStride: outStride, preFailures: [:])
    }

    @usableFromInline
    static func noRoom(_ task: Int) -> ProcessPoolError {
        ProcessPoolError(.encodingFailed(reason: "no room in the pool's shared memory (sharedMemoryBytes) now"),
                         taskIndex: task)
    }
}
