internal import CPoolCore
#if canImport(Glibc)
import Glibc
#endif

/// One chunk of a lazy map in flight: its inputs and outputs in the pool's shared
/// memory and the C core's job.
final class ChunkInFlight {
    let first: Int         // index of its first input in the whole stream
    let count: Int
    let job: OpaquePointer
    let inBuf: UnsafeMutableRawPointer
    let outBuf: UnsafeMutableRawPointer

    init(first: Int, count: Int, job: OpaquePointer, inBuf: UnsafeMutableRawPointer, outBuf: UnsafeMutableRawPointer) {
        self.first = first
        self.count = count
        self.job = job
        self.inBuf = inBuf
        self.outBuf = outBuf
    }
}

/// The engine of ``ProcessPool/imap(_:chunkSize:_:)`` and
/// ``ProcessPool/imapUnordered(_:chunkSize:_:)``: reads the input as it goes, keeps a
/// bounded number of chunks in flight, and hands back finished chunks. Not generic:
/// the typed iterators around it load and store the values.
@usableFromInline
final class LazyMapEngine: @unchecked Sendable {
    private let pool: ProcessPool
    private let session: CoreSession
    private let function: _TaskFunction
    private let id: cpool_fn_t
    private let chunkSize: Int
    private let maxInFlight: Int
    private let since: [UInt64]
    // inFlight and released are guarded by `lock`, which is never held while waiting,
    // so that cancelAll() from another thread (an async stream's termination) is prompt.
    private let lock = Monitor()
    private var inFlight: [ChunkInFlight] = []
    private var nextIndex = 0
    private var released = false

    @usableFromInline
    init(pool: ProcessPool, function: _TaskFunction, chunkSize: Int?) throws {
        let (s, id) = try pool.sessionForStream(function)
        self.pool = pool
        session = s
        self.function = function
        self.id = id
        self.chunkSize = max(1, chunkSize ?? 256)
        maxInFlight = max(2, 4 * pool.configuration.workerCount)
        since = pool.journal.snapshot()
    }

    deinit { finish() }

    /// Whether more chunks may be started now.
    @usableFromInline var hasRoom: Bool { lock.withLock { !released && inFlight.count < maxInFlight } }
    @usableFromInline var isIdle: Bool { lock.withLock { inFlight.isEmpty } }
    @usableFromInline var chunk: Int { chunkSize }
    @usableFromInline var isCancelled: Bool { lock.withLock { released } }

    /// Starts a chunk over `count` packed inputs. Throws when shared memory is full.
    @usableFromInline
    func start(packedInputs: UnsafeRawBufferPointer, count: Int) throws {
        let h = session.handle
        guard let i = cpool_alloc(h, max(1, count * function.inStride)) else {
            throw ProcessPoolError(.encodingFailed(reason: "no room in the pool's shared memory"))
        }
        guard let o = cpool_alloc(h, max(1, count * function.outStride)) else {
            cpool_free(h, i)
            throw ProcessPoolError(.encodingFailed(reason: "no room in the pool's shared memory"))
        }
        if let b = packedInputs.baseAddress, packedInputs.count > 0 { i.copyMemory(from: b, byteCount: packedInputs.count) }
        var job: OpaquePointer?
        let rc = cpool_map_start(h, id, i, function.inStride, o, function.outStride, count, 0, nil, &job)
        guard rc == 0, let job else {
            cpool_free(h, i)
            cpool_free(h, o)
            throw ProcessPoolError.fromCore(rc)
        }
        lock.withLock { inFlight.append(ChunkInFlight(first: nextIndex, count: count, job: job, inBuf: i, outBuf: o)) }
        nextIndex += count
    }

    /// Waits for a chunk to end: the oldest (ordered) or whichever ends first, and gives
    /// its outputs (`count × outStride` bytes) and failures to `body`.
    @usableFromInline
    func takeChunk(ordered: Bool,
                   _ body: (_ first: Int, _ count: Int, _ outputs: UnsafeRawPointer, _ failures: [(Int, ProcessPoolError)]) -> Void) {
        let chunks = lock.withLock { inFlight }
        guard !chunks.isEmpty else { return }
        var c = chunks[0]
        if !ordered {
            // Whichever chunk ends first; the workers wake this thread when one does.
            let jobs: [OpaquePointer?] = chunks.map { $0.job }
            let first = jobs.withUnsafeBufferPointer { cpool_job_wait_any($0.baseAddress, $0.count, 0) }
            if first >= 0 { c = chunks[Int(first)] }
        }
        let rc = cpool_job_wait(c.job, 0)
        var failures: [(Int, ProcessPoolError)] = []
        if rc == Int32(CPOOL_E_TASK_FAILED) {
            failures = pool.collectFailures(c.job, base: c.first, input: UnsafeRawPointer(c.inBuf),
                                            inStride: function.inStride, since: since)
        } else if rc != 0 {
            let e = ProcessPoolError.fromCore(rc)
            failures = (0..<c.count).map { (c.first + $0, ProcessPoolError(e.code, taskIndex: c.first + $0)) }
        }
        body(c.first, c.count, UnsafeRawPointer(c.outBuf), failures)
        lock.withLock {
            inFlight.removeAll { $0 === c }
            release(c)
        }
    }

    /// Cancels every chunk in flight (their running tasks' workers are killed); safe
    /// from any thread while another iterates.
    @usableFromInline
    func cancelAll() {
        lock.withLock {
            released = true
            for c in inFlight { cpool_job_cancel(c.job) }
        }
    }

    private func release(_ c: ChunkInFlight) {
        cpool_job_free(c.job)
        cpool_free(session.handle, c.inBuf)
        cpool_free(session.handle, c.outBuf)
    }

    /// Cancels what is in flight and gives the workers back.
    @usableFromInline
    func finish() {
        let chunks: [ChunkInFlight]? = lock.withLock {
            if released && inFlight.isEmpty && sessionReleased { return nil }
            released = true
            let all = inFlight
            inFlight.removeAll()
            return all
        }
        guard let chunks else { return }
        for c in chunks { cpool_job_cancel(c.job) }
        for c in chunks { release(c) }
        if !sessionReleased {
            sessionReleased = true
            pool.releaseSession(session)
        }
    }
    private var sessionReleased = false
}

/// The results of ``ProcessPool/imap(_:chunkSize:_:)`` or
/// ``ProcessPool/imapUnordered(_:chunkSize:_:)``, computed as the iteration goes: each
/// element is one task's result or its error, with ``ProcessPoolError/taskIndex``
/// naming the task. Iterate it once.
public struct LazyPoolMap<Inputs: Sequence, Result: BitwiseCopyable>: Sequence, IteratorProtocol
where Inputs.Element: BitwiseCopyable {
    /// One task's result or its error.
    public typealias Element = Swift.Result<Result, ProcessPoolError>

    @usableFromInline var inputs: Inputs.Iterator
    @usableFromInline let engine: LazyMapEngine
    @usableFromInline let ordered: Bool
    @usableFromInline var ready: [Element] = []
    @usableFromInline var readyIndex = 0
    @usableFromInline var inputsDone = false
    @usableFromInline var pendingError: ProcessPoolError?

    @usableFromInline
    init(inputs: Inputs, engine: LazyMapEngine, ordered: Bool) {
        self.inputs = inputs.makeIterator()
        self.engine = engine
        self.ordered = ordered
    }

    /// Starts chunks until the window is full or the input ends.
    @inlinable
    mutating func fill() {
        while !inputsDone && engine.hasRoom && pendingError == nil {
            var batch: [Inputs.Element] = []
            batch.reserveCapacity(engine.chunk)
            while batch.count < engine.chunk, let x = inputs.next() { batch.append(x) }
            if batch.count < engine.chunk { inputsDone = true }
            if batch.isEmpty { break }
            do {
                try batch.withUnsafeBytes { try engine.start(packedInputs: $0, count: batch.count) }
            } catch let e as ProcessPoolError {
                pendingError = e
            } catch {
                pendingError = ProcessPoolError(.encodingFailed(reason: "\(error)"))
            }
        }
    }

    @inlinable
    public mutating func next() -> Element? {
        if readyIndex < ready.count {
            defer { readyIndex += 1 }
            return ready[readyIndex]
        }
        fill()
        if engine.isIdle || engine.isCancelled {
            if let e = pendingError {
                pendingError = nil
                inputsDone = true
                return .failure(e)
            }
            engine.finish()
            return nil
        }
        var out: [Element] = []
        engine.takeChunk(ordered: ordered) { first, count, outputs, failures in
            out.reserveCapacity(count)
            let stride = MemoryLayout<Result>.stride
            for i in 0..<count {
                out.append(.success(outputs.loadUnaligned(fromByteOffset: i * stride, as: Result.self)))
            }
            for (i, e) in failures { out[i - first] = .failure(e) }
        }
        ready = out
        readyIndex = 0
        fill()
        return next()
    }
}
