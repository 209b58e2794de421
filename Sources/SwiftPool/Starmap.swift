/// Several arguments per task (multiprocessing's `starmap`): each input is a tuple.
extension ProcessPool {
    /// Runs `body` on the members of each tuple; results in input order.
    @inlinable @_disfavoredOverload
    public func starmap<A: BitwiseCopyable, B: BitwiseCopyable, Output: BitwiseCopyable>(
        _ inputs: [(A, B)], chunkSize: Int? = nil, progress: ProgressReporting? = nil,
        _ body: @escaping @Sendable (A, B) throws -> Output
    ) throws -> [Output] {
        try map(inputs, chunkSize: chunkSize, progress: progress) { try body($0.0, $0.1) }
    }

    /// `starmap(_:chunkSize:progress:_:)` for `Codable` arguments or results.
    @inlinable
    public func starmap<A: Codable, B: Codable, Output: Codable>(
        _ inputs: [(A, B)], chunkSize: Int? = nil, progress: ProgressReporting? = nil,
        _ body: @escaping @Sendable (A, B) throws -> Output
    ) throws -> [Output] {
        try map(inputs.map { _Arguments2($0.0, $0.1) }, chunkSize: chunkSize, progress: progress) { try body($0.a, $0.b) }
    }

    /// `starmap(_:chunkSize:progress:_:)` with three arguments per task.
    @inlinable @_disfavoredOverload
    public func starmap<A: BitwiseCopyable, B: BitwiseCopyable, C: BitwiseCopyable, Output: BitwiseCopyable>(
        _ inputs: [(A, B, C)], chunkSize: Int? = nil, progress: ProgressReporting? = nil,
        _ body: @escaping @Sendable (A, B, C) throws -> Output
    ) throws -> [Output] {
        try map(inputs, chunkSize: chunkSize, progress: progress) { try body($0.0, $0.1, $0.2) }
    }

    /// `starmap(_:chunkSize:progress:_:)` with three `Codable` arguments per task.
    @inlinable
    public func starmap<A: Codable, B: Codable, C: Codable, Output: Codable>(
        _ inputs: [(A, B, C)], chunkSize: Int? = nil, progress: ProgressReporting? = nil,
        _ body: @escaping @Sendable (A, B, C) throws -> Output
    ) throws -> [Output] {
        try map(inputs.map { _Arguments3($0.0, $0.1, $0.2) }, chunkSize: chunkSize, progress: progress) { try body($0.a, $0.b, $0.c) }
    }
}

/// Two arguments of a task, as one `Codable` value.
@usableFromInline
struct _Arguments2<A: Codable, B: Codable>: Codable {
    @usableFromInline var a: A, b: B
    @inlinable init(_ a: A, _ b: B) {
        self.a = a
        self.b = b
    }
}

/// Three arguments of a task, as one `Codable` value.
@usableFromInline
struct _Arguments3<A: Codable, B: Codable, C: Codable>: Codable {
    @usableFromInline var a: A, b: B, c: C
    @inlinable init(_ a: A, _ b: B, _ c: C) {
        self.a = a
        self.b = b
        self.c = c
    }
}
