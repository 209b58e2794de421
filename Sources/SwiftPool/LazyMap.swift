internal import CPoolCore
#if canImport(Glibc)
import Glibc
#endif

/// The engine of `imap(_:chunkSize:progress:_:)` and
/// `imapUnordered(_:chunkSize:progress:_:)`: one call whose rounds are the chunks
/// of the input as the iteration reads it, a bounded number in flight. Not generic: the
/// typed iterator around it stages inputs and reads results.
@usableFromInline
final class LazyMapEngine: @unchecked Sendable {
    @usableFromInline let call: _Call
    @usableFromInline let chunk: Int
    private let maxInFlight: Int
    // Guarded by `lock`, which is never held while waiting, so that cancelAll() from
    // another thread (an async stream's termination) is prompt.
    private let lock = Monitor()
    private var inFlight: [_Round] = []
    private var released = false

    @usableFromInline
    init(pool: ProcessPool, function: _TaskFunction, chunkSize: Int?) throws {
        call = try _Call(pool: pool, function: function)
        chunk = max(1, chunkSize ?? 256)
        maxInFlight = max(2, 4 * pool.configuration.workerCount)
    }

    deinit { finish() }

    /// Whether more chunks may be started now.
    @usableFromInline var hasRoom: Bool { lock.withLock { !released && inFlight.count < maxInFlight } }
    @usableFromInline var isIdle: Bool { lock.withLock { inFlight.isEmpty } }
    @usableFromInline var isCancelled: Bool { lock.withLock { released } }

    /// Starts a staged chunk.
    @usableFromInline
    func start(_ round: _Round) throws {
        try round.start(chunkSize: nil)
        lock.withLock { inFlight.append(round) }
    }

    /// Waits for a chunk to end: the oldest (ordered) or whichever ends first (the
    /// workers wake this thread when one does), and returns it.
    @usableFromInline
    func takeRound(ordered: Bool) -> _Round? {
        let rounds = lock.withLock { inFlight }
        guard !rounds.isEmpty else { return nil }
        var r = rounds[0]
        if !ordered {
            let jobs: [OpaquePointer?] = rounds.map(\.job)
            let first = jobs.withUnsafeBufferPointer { cpool_job_wait_any($0.baseAddress, $0.count, 0) }
            if first >= 0 {
                r = rounds[Int(first)]
            } else if first == -EINTR {
                // The interruption was meant for the pool's waiter thread: hand it on, and
                // take the oldest chunk this once.
                cpool_interrupt_waits(call.lease.session.handle)
            }
        }
        r.waitHere()
        lock.withLock { inFlight.removeAll { $0 === r } }
        return r
    }

    /// Cancels every chunk in flight (their running tasks' workers are killed); safe
    /// from any thread while another iterates.
    @usableFromInline
    func cancelAll() {
        lock.withLock {
            released = true
            for r in inFlight { r.cancel() }
        }
    }

    /// Cancels what is in flight and gives the workers back.
    @usableFromInline
    func finish() {
        let rounds: [_Round] = lock.withLock {
            released = true
            defer { inFlight.removeAll() }
            return inFlight
        }
        for r in rounds { r.cancel() }
        for r in rounds { r.waitHere() }
        call.end()
    }
}

/// The results of `imap(_:chunkSize:progress:_:)` or
/// `imapUnordered(_:chunkSize:progress:_:)`, computed as the iteration goes: each
/// element is one task's result or its error (a ``ProcessPoolError``'s
/// ``ProcessPoolError/taskIndex`` names the task). Iterate it once.
public struct LazyPoolMap<Inputs: Sequence, Output>: Sequence, IteratorProtocol {
    /// One task's result or its error.
    public typealias Element = Result<Output, any Error>

    @usableFromInline var inputs: Inputs.Iterator
    @usableFromInline let engine: LazyMapEngine
    @usableFromInline let function: PoolFunction<Inputs.Element, Output>
    @usableFromInline let ordered: Bool
    @usableFromInline var ready: [Element] = []
    @usableFromInline var readyIndex = 0
    @usableFromInline var inputsDone = false
    @usableFromInline var nextIndex = 0
    @usableFromInline var pendingError: (any Error)?

    @usableFromInline
    init(inputs: Inputs, engine: LazyMapEngine, function: PoolFunction<Inputs.Element, Output>, ordered: Bool) {
        self.inputs = inputs.makeIterator()
        self.engine = engine
        self.function = function
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
                try batch.withUnsafeBufferPointer { buffer in
                    var done = 0
                    while done < buffer.count {
                        let round = try engine.call.stage(buffer, from: done, codec: function.input,
                                                          outStride: function.function.outStride, indexBase: nextIndex)
                        try engine.start(round)
                        done += round.count
                    }
                }
            } catch {
                pendingError = error
            }
            nextIndex += batch.count
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
        guard let round = engine.takeRound(ordered: ordered) else { return nil }
        var out: [Element] = []
        out.reserveCapacity(round.count)
        round.appendResults(to: &out, function.output)
        ready = out
        readyIndex = 0
        fill()
        return next()
    }
}

extension ProcessPool {
    /// Maps lazily and in order (multiprocessing's `imap`): reads `inputs` as the
    /// iteration goes and keeps a bounded number of chunks in flight, so an endless or
    /// huge input works. Each element is that task's result or error.
    @inlinable @_disfavoredOverload
    public func imap<Inputs: Sequence, Output: BitwiseCopyable>(
        _ inputs: Inputs, chunkSize: Int? = nil, progress: ProgressReporting? = nil,
        _ body: @escaping @Sendable (Inputs.Element) throws -> Output
    ) throws -> LazyPoolMap<Inputs, Output> where Inputs.Element: BitwiseCopyable {
        try imap(PoolFunction(body, input: .bitwise(), output: .bitwise()), inputs, chunkSize: chunkSize, progress: progress)
    }

    /// `imap(_:chunkSize:progress:_:)` for `Codable` arguments or results.
    @inlinable
    public func imap<Inputs: Sequence, Output: Codable>(
        _ inputs: Inputs, chunkSize: Int? = nil, progress: ProgressReporting? = nil,
        _ body: @escaping @Sendable (Inputs.Element) throws -> Output
    ) throws -> LazyPoolMap<Inputs, Output> where Inputs.Element: Codable {
        try imap(PoolFunction(body, input: .codable(), output: .codable()), inputs, chunkSize: chunkSize, progress: progress)
    }

    /// `imap(_:chunkSize:progress:_:)` with a registered function.
    @inlinable
    public func imap<Inputs: Sequence, Output>(
        _ function: PoolFunction<Inputs.Element, Output>, _ inputs: Inputs, chunkSize: Int? = nil,
        progress: ProgressReporting? = nil
    ) throws -> LazyPoolMap<Inputs, Output> {
        try _lazyMap(function, inputs, chunkSize: chunkSize, ordered: true, progress: progress)
    }

    /// Like `imap(_:chunkSize:progress:_:)`, but yields results as their chunks finish
    /// (multiprocessing's `imap_unordered`); ``ProcessPoolError/taskIndex`` and the
    /// order of finishing tell which input a failure belongs to.
    @inlinable @_disfavoredOverload
    public func imapUnordered<Inputs: Sequence, Output: BitwiseCopyable>(
        _ inputs: Inputs, chunkSize: Int? = nil, progress: ProgressReporting? = nil,
        _ body: @escaping @Sendable (Inputs.Element) throws -> Output
    ) throws -> LazyPoolMap<Inputs, Output> where Inputs.Element: BitwiseCopyable {
        try imapUnordered(PoolFunction(body, input: .bitwise(), output: .bitwise()), inputs, chunkSize: chunkSize, progress: progress)
    }

    /// `imapUnordered(_:chunkSize:progress:_:)` for `Codable` arguments or results.
    @inlinable
    public func imapUnordered<Inputs: Sequence, Output: Codable>(
        _ inputs: Inputs, chunkSize: Int? = nil, progress: ProgressReporting? = nil,
        _ body: @escaping @Sendable (Inputs.Element) throws -> Output
    ) throws -> LazyPoolMap<Inputs, Output> where Inputs.Element: Codable {
        try imapUnordered(PoolFunction(body, input: .codable(), output: .codable()), inputs, chunkSize: chunkSize, progress: progress)
    }

    /// `imapUnordered(_:chunkSize:progress:_:)` with a registered function.
    @inlinable
    public func imapUnordered<Inputs: Sequence, Output>(
        _ function: PoolFunction<Inputs.Element, Output>, _ inputs: Inputs, chunkSize: Int? = nil,
        progress: ProgressReporting? = nil
    ) throws -> LazyPoolMap<Inputs, Output> {
        try _lazyMap(function, inputs, chunkSize: chunkSize, ordered: false, progress: progress)
    }

    @inlinable
    func _lazyMap<Inputs: Sequence, Output>(
        _ function: PoolFunction<Inputs.Element, Output>, _ inputs: Inputs, chunkSize: Int?, ordered: Bool,
        progress: ProgressReporting?
    ) throws -> LazyPoolMap<Inputs, Output> {
        let engine = try LazyMapEngine(pool: self, function: function.function, chunkSize: chunkSize)
        let known = inputs.underestimatedCount
        engine.call.reportProgress(progress, total: known > 0 ? known : nil)
        return LazyPoolMap(inputs: inputs, engine: engine, function: function, ordered: ordered)
    }
}
