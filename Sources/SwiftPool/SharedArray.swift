internal import CPoolCore

/// An array in the pool's shared memory: the parent and every worker read and write the
/// same elements in place, so large data is never copied to or from the workers
/// (mpire's shared objects, without copy-on-write). Workers reach it through closures
/// that capture it (`pool.map(ranges) { r in shared[r] ... }`).
///
/// Writes from several processes to the same element race like writes from several
/// threads: give each task its own slice. The memory lives as long as this object.
public final class SharedArray<Element: BitwiseCopyable>: @unchecked Sendable, RandomAccessCollection,
    MutableCollection
{
    private let session: CoreSession // keeps the mapping, and so the memory, alive
    /// The first element, valid in the parent and in every worker of the pool.
    public let baseAddress: UnsafeMutablePointer<Element>
    /// The number of elements.
    public let count: Int

    init(session: CoreSession, repeating value: Element, count: Int) throws {
        precondition(count >= 0, "a negative count")
        guard let p = cpool_alloc(session.handle, Swift.max(1, count * MemoryLayout<Element>.stride)) else {
            throw ProcessPoolError(.encodingFailed(
                reason: "\(count) elements do not fit in the pool's shared memory; raise sharedMemoryBytes"))
        }
        self.session = session
        baseAddress = p.bindMemory(to: Element.self, capacity: Swift.max(1, count))
        baseAddress.initialize(repeating: value, count: count)
        self.count = count
    }

    deinit { cpool_free(session.handle, baseAddress) }

    /// Always 0.
    public var startIndex: Int { 0 }
    /// ``count``.
    public var endIndex: Int { count }

    /// The element at `position`, read or written in shared memory.
    public subscript(position: Int) -> Element {
        get {
            precondition(position >= 0 && position < count, "index out of range")
            return baseAddress[position]
        }
        set {
            precondition(position >= 0 && position < count, "index out of range")
            baseAddress[position] = newValue
        }
    }

    /// The elements as a buffer, for bulk reads and writes.
    public func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Element>) throws -> R) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: baseAddress, count: count))
    }
}

extension ProcessPool {
    /// A ``SharedArray`` of `count` copies of `value` in this pool's shared memory.
    /// Throws when it does not fit (see ``ProcessPoolConfiguration/sharedMemoryBytes``).
    public func makeSharedArray<Element: BitwiseCopyable>(repeating value: Element, count: Int) throws
        -> SharedArray<Element>
    {
        try SharedArray(session: try workers.currentSession(), repeating: value, count: count)
    }
}
