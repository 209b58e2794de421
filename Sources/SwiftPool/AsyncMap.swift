/// The async shape of `imap(_:chunkSize:progress:_:)`: results as an
/// `AsyncSequence`. Waiting happens on a separate thread, a chunk at a time, never on a
/// Swift concurrency thread. Cancelling the consuming task (or dropping the iteration)
/// drops the chunks not yet run and kills the workers running the others; they are
/// replaced.
public struct AsyncPoolMap<Inputs: Sequence, Output>: AsyncSequence, @unchecked Sendable
where Inputs: SendableMetatype {
    /// One task's result or its error.
    public typealias Element = Result<Output, any Error>

    @usableFromInline let source: _BlockingSource<LazyPoolMap<Inputs, Output>>

    @usableFromInline
    init(_ lazy: LazyPoolMap<Inputs, Output>) { source = _BlockingSource(lazy) }

    /// Iterate once: the results are computed as the iteration goes.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: source) }

    /// Waits for results a chunk at a time on a separate thread.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let source: _BlockingSource<LazyPoolMap<Inputs, Output>>
        var buffer: [Element] = []
        var index = 0

        /// The next result, or `nil` at the end of the input or after cancellation.
        public mutating func next() async -> Element? {
            if index < buffer.count {
                defer { index += 1 }
                return buffer[index]
            }
            if Task.isCancelled {
                source.cancel()
                return nil
            }
            let source = self.source
            buffer = await withTaskCancellationHandler {
                await withCheckedContinuation { (c: CheckedContinuation<[Element], Never>) in
                    spawnThread { c.resume(returning: source.nextBatch()) }
                }
            } onCancel: {
                source.cancel()
            }
            index = 0
            guard !buffer.isEmpty else { return nil }
            index = 1
            return buffer[0]
        }
    }
}

/// A lazy map driven from another thread, one chunk of results at a time.
@usableFromInline
final class _BlockingSource<Iterator: IteratorProtocol>: @unchecked Sendable {
    private var iterator: Iterator
    private let cancelHook: @Sendable () -> Void
    private let monitor = Monitor()

    @usableFromInline
    init<I: Sequence, R>(_ lazy: LazyPoolMap<I, R>) where Iterator == LazyPoolMap<I, R> {
        iterator = lazy
        let engine = lazy.engine
        cancelHook = { engine.cancelAll() }
    }

    /// The next element and every one already computed with it (one chunk's worth).
    func nextBatch() -> [Iterator.Element] {
        monitor.withLock {
            guard let first = iterator.next() else { return [] }
            var out = [first]
            while let more = readyElement() { out.append(more) }
            return out
        }
    }

    private func readyElement() -> Iterator.Element? {
        guard let lazy = iterator as? any _HasReady, lazy._readyCount > 0 else { return nil }
        return iterator.next()
    }

    func cancel() { cancelHook() }
}

/// How many computed results a lazy map holds that `next()` returns without waiting.
protocol _HasReady { var _readyCount: Int { get } }

extension LazyPoolMap: _HasReady {
    var _readyCount: Int { ready.count - readyIndex }
}

extension ProcessPool {
    /// `imap(_:chunkSize:progress:_:)` as an `AsyncSequence` for async code; `ordered: false`
    /// gives `imapUnordered(_:chunkSize:progress:_:)`'s order.
    @inlinable @_disfavoredOverload
    public func mapStream<Inputs: Sequence, Output: BitwiseCopyable>(
        _ inputs: Inputs, chunkSize: Int? = nil, ordered: Bool = true,
        progress: ProgressReporting? = nil, _ body: @escaping @Sendable (Inputs.Element) throws -> Output
    ) throws -> AsyncPoolMap<Inputs, Output> where Inputs.Element: BitwiseCopyable, Inputs: SendableMetatype {
        try mapStream(PoolFunction(body, input: .bitwise(), output: .bitwise()), inputs, chunkSize: chunkSize,
                      ordered: ordered, progress: progress)
    }

    /// `mapStream(_:chunkSize:ordered:progress:_:)` for `Codable` arguments or results.
    @inlinable
    public func mapStream<Inputs: Sequence, Output: Codable>(
        _ inputs: Inputs, chunkSize: Int? = nil, ordered: Bool = true,
        progress: ProgressReporting? = nil, _ body: @escaping @Sendable (Inputs.Element) throws -> Output
    ) throws -> AsyncPoolMap<Inputs, Output> where Inputs.Element: Codable, Inputs: SendableMetatype {
        try mapStream(PoolFunction(body, input: .codable(), output: .codable()), inputs, chunkSize: chunkSize,
                      ordered: ordered, progress: progress)
    }

    /// `mapStream(_:chunkSize:ordered:progress:_:)` with a registered function.
    @inlinable
    public func mapStream<Inputs: Sequence, Output>(
        _ function: PoolFunction<Inputs.Element, Output>, _ inputs: Inputs, chunkSize: Int? = nil,
        ordered: Bool = true, progress: ProgressReporting? = nil
    ) throws -> AsyncPoolMap<Inputs, Output> where Inputs: SendableMetatype {
        AsyncPoolMap(try _lazyMap(function, inputs, chunkSize: chunkSize, ordered: ordered, progress: progress))
    }
}
