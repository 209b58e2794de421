internal import CPoolCore

/// What runs inside a worker: the C core calls these trampolines there. Everything they
/// touch was created before a forked worker was forked (a spawned worker reaches its
/// functions by name instead: Definitions.swift).

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
    /// The name it is defined under in every process (`PoolFunction.named`), set once
    /// before it is shared; nil for a closure.
    @usableFromInline var name: String?
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

/// The hooks of one pool that are closures (forked workers and threads only): the pool's
/// own and those of the call its workers serve now. A call's are set while no worker
/// runs; a forked worker sees them as they were when it was forked.
final class HookClosures: @unchecked Sendable {
    let initHook: (@Sendable (Int) throws -> Void)?
    let exitHook: (@Sendable (Int) -> Void)?
    var callInit: HookBody?
    var callExit: HookBody?

    init(_ c: ProcessPoolConfiguration) {
        initHook = c.workerInit
        exitHook = c.workerExit
    }
}

let initTrampoline: cpool_worker_hook_t = { id, ctx in
    let hooks = Unmanaged<HookClosures>.fromOpaque(ctx!).takeUnretainedValue()
    do {
        try hooks.initHook?(Int(id))
    } catch {
        return 1
    }
    return hooks.callInit?.callInWorker(Int(id)) ?? 0
}

let exitTrampoline: cpool_worker_hook_t = { id, ctx in
    let hooks = Unmanaged<HookClosures>.fromOpaque(ctx!).takeUnretainedValue()
    _ = hooks.callExit?.callInWorker(Int(id))
    hooks.exitHook?(Int(id))
    return 0
}
