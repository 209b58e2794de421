/// Per-worker state (mpire's `use_worker_state`): a value made once in each worker, on
/// the first task of a function there, and passed `inout` to every task of that
/// function on that worker. Each worker has its own entry, indexed by worker id (a worker
/// process also has its own copy of the whole box; worker threads share the box, never an
/// entry), so tasks never share or lock it; with keep-alive and a registered function it
/// lives on between calls.
@usableFromInline
final class _WorkerState<State>: @unchecked Sendable {
    /// One entry per possible worker id (the C core's limit), the last for the parent.
    @usableFromInline static var entries: Int { 257 }
    @usableFromInline let states: UnsafeMutablePointer<State?>
    @usableFromInline let make: @Sendable (_ workerID: Int) -> State

    @usableFromInline
    init(_ make: @escaping @Sendable (Int) -> State) {
        self.make = make
        states = .allocate(capacity: Self.entries)
        states.initialize(repeating: nil, count: Self.entries)
    }

    deinit {
        states.deinitialize(count: Self.entries)
        states.deallocate()
    }

    @inlinable
    func with<R>(_ body: (inout State) throws -> R) rethrows -> R {
        let id = ProcessPool.currentWorkerID
        let entry = states + min(id ?? Self.entries - 1, Self.entries - 1)
        if entry.pointee == nil { entry.pointee = make(id ?? -1) }
        return try body(&entry.pointee!)
    }
}

extension ProcessPool {
    /// `map(_:chunkSize:progress:_:)` where every task also gets its worker's state, made by
    /// `workerState` on the worker's first task of this call.
    @inlinable
    public func map<State, Input: BitwiseCopyable, Output: BitwiseCopyable>(
        _ inputs: [Input], chunkSize: Int? = nil,
        workerState: @escaping @Sendable (_ workerID: Int) -> State,
        _ body: @escaping @Sendable (inout State, Input) throws -> Output
    ) throws -> [Output] {
        let box = _WorkerState(workerState)
        return try map(inputs, chunkSize: chunkSize) { x in try box.with { try body(&$0, x) } }
    }

    /// `register(_:)` with per-worker state that keep-alive workers keep between calls.
    @inlinable
    public func register<State, Input: BitwiseCopyable, Output: BitwiseCopyable>(
        workerState: @escaping @Sendable (_ workerID: Int) -> State,
        _ body: @escaping @Sendable (inout State, Input) throws -> Output
    ) -> PoolFunction<Input, Output> {
        let box = _WorkerState(workerState)
        return register { (x: Input) in try box.with { try body(&$0, x) } }
    }
}
