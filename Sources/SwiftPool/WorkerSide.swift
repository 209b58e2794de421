internal import CPoolCore

/// What runs inside a worker process: the C core calls these trampolines there.
/// Everything they touch was created before the worker was forked.

/// The id of the worker process this code runs in (0 ..< workerCount), or `nil` in the
/// parent. Set when the worker starts, before its init hook runs.
nonisolated(unsafe) var currentWorkerID: Int? = nil

/// A chunk of tasks as the C core hands it over: input and output base addresses and
/// strides, the number of items, and where to store the index of the item being run.
/// Returns 0, or -1 after setting the index of the item whose closure threw.
@usableFromInline
typealias _ChunkRunner = (
    _ input: UnsafeRawPointer, _ inStride: Int, _ output: UnsafeMutableRawPointer, _ outStride: Int,
    _ count: Int, _ progress: UnsafeMutablePointer<Int>
) -> Int64

/// A closure ready to run in workers: the chunk loop, specialized in the caller's module
/// for its argument and result types, and the sizes of one item.
@usableFromInline
final class _TaskFunction: @unchecked Sendable {
    @usableFromInline let run: _ChunkRunner
    @usableFromInline let inStride: Int
    @usableFromInline let outStride: Int

    @usableFromInline
    init(run: @escaping _ChunkRunner, inStride: Int, outStride: Int) {
        self.run = run
        self.inStride = inStride
        self.outStride = outStride
    }
}

/// The C batch function every Swift closure goes through. A closure literal converted
/// in this module (a `@_cdecl` function converted in another module trips a Swift 6.3
/// linker bug).
let chunkTrampoline: cpool_batch_fn_t = { ctx, input, inStride, output, outStride, count, progress in
    let f = Unmanaged<_TaskFunction>.fromOpaque(ctx!).takeUnretainedValue()
    return f.run(input!, inStride, output!, outStride, count, progress!)
}

/// Worker hooks of one pool: created before its workers are forked, released with it.
final class WorkerHooks: @unchecked Sendable {
    let initHook: (@Sendable (Int) throws -> Void)?
    let exitHook: (@Sendable (Int) -> Void)?

    init(_ c: ProcessPoolConfiguration) {
        initHook = c.workerInit
        exitHook = c.workerExit
    }
}

let initTrampoline: cpool_worker_hook_t = { id, ctx in
    currentWorkerID = Int(id)
    let hooks = Unmanaged<WorkerHooks>.fromOpaque(ctx!).takeUnretainedValue()
    do {
        try hooks.initHook?(Int(id))
        return 0
    } catch {
        return 1
    }
}

let exitTrampoline: cpool_worker_hook_t = { id, ctx in
    let hooks = Unmanaged<WorkerHooks>.fromOpaque(ctx!).takeUnretainedValue()
    hooks.exitHook?(Int(id))
    return 0
}
