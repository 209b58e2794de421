internal import CPoolCore

// The wire form of a chunk of tasks: what a pool spanning several processes that do not
// share memory (the ranks of an MPI job, SwiftPoolMPI) sends, as bytes, to a process that
// runs the chunk on its own pool. The function travels as its name (`PoolFunction.named`):
// every process defines the same functions. The values take the same forms as in shared
// memory (`_Codec`): the serving process stages them for its workers as they are, and the
// workers decode them with the function's own codec.
//
// A chunk:  u32 count, u32 kind (0: fixed-size records, 1: variable size), then
//           fixed: count × the input's stride; variable: per item u64 length + bytes.
// A reply:  u32 count, u32 failures, u64 length of the results, the results:
//           fixed: count × the result's stride (a failed item's bytes are meaningless);
//           variable: per item u64 length + bytes (0 for a failed item);
//           none when every task failed; then
//           per failure: u32 index in the chunk, u8 form (0: a ProcessPoolError in the
//           binary form; 1: the error its closure threw, as `_reportThrown` wrote it),
//           u32 length, bytes.

/// A growable byte buffer a message is built in: its bytes stay where they are until the
/// buffer is released.
@_spi(Wire)
public final class WireBuffer: @unchecked Sendable {
    let sink: _ByteSink

    public init(capacity: Int = 4096) { sink = _ByteSink(capacity: capacity) }

    /// The bytes written so far.
    public var bytes: UnsafeRawBufferPointer { sink.bytes }
    public var count: Int { sink.count }

    public func append(_ bytes: UnsafeRawBufferPointer) { sink.append(bytes) }
    /// Makes room for `n` more bytes at once.
    public func reserve(_ n: Int) { sink.reserve(n) }
    public func append<T: BitwiseCopyable>(_ value: T) { sink.append(value) }

    /// Overwrites the `T` at byte `offset` (written before).
    func store<T: BitwiseCopyable>(_ value: T, at offset: Int) {
        (sink.base + offset).storeBytes(of: value, as: T.self)
    }
}

/// The results of a chunk's reply: every value when every task succeeded, else each
/// task's result or error.
@_spi(Wire)
public enum WireResults<Output> {
    case values([Output])
    case results([Result<Output, any Error>])
}

private let fixedKind: UInt32 = 0
private let variableKind: UInt32 = 1
private let poolErrorForm: UInt8 = 0
private let thrownForm: UInt8 = 1

/// Reads a reply or chunk front to back, checking every length against what is there.
struct _WireReader {
    let bytes: UnsafeRawBufferPointer
    var at = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func read<T: BitwiseCopyable>(_: T.Type) throws -> T {
        guard at + MemoryLayout<T>.size <= bytes.count else { throw _BinaryFormatError("a wire message ends early") }
        defer { at += MemoryLayout<T>.size }
        return bytes.loadUnaligned(fromByteOffset: at, as: T.self)
    }

    mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, at + n <= bytes.count else { throw _BinaryFormatError("a wire message ends early") }
        defer { at += n }
        return UnsafeRawBufferPointer(rebasing: bytes[at..<at + n])
    }
}

@_spi(Wire)
extension PoolFunction {
    /// Appends a chunk of `inputs[from...]` to `buffer`: at most `maxItems`, and no more
    /// once `maxBytes` are written (always at least one). Returns how many it took.
    /// Throws when an input cannot be encoded.
    public func _appendWireChunk(_ inputs: UnsafeBufferPointer<Input>, from: Int, maxItems: Int, maxBytes: Int,
                                 to buffer: WireBuffer) throws -> Int {
        let n = min(inputs.count - from, max(1, maxItems))
        let header = buffer.count
        buffer.append(UInt32(0))
        if let stride = input.fixedStride {
            let taken = min(n, max(1, maxBytes / max(1, stride)))
            buffer.reserve(4 + taken * stride)
            buffer.append(fixedKind)
            if stride > 0, let base = inputs.baseAddress {
                buffer.append(UnsafeRawBufferPointer(start: UnsafeRawPointer(base + from), count: taken * stride))
            }
            buffer.store(UInt32(taken), at: header)
            return taken
        }
        buffer.append(variableKind)
        let start = buffer.count
        var taken = 0
        while taken < n && (taken == 0 || buffer.count - start < maxBytes) {
            let lengthAt = buffer.count
            buffer.append(UInt64(0))
            do {
                try input.append(inputs[from + taken], buffer.sink)
            } catch {
                throw ProcessPoolError(.encodingFailed(reason: "the input could not be encoded: \(error)"),
                                       taskIndex: from + taken)
            }
            buffer.store(UInt64(buffer.count - lengthAt - 8), at: lengthAt)
            taken += 1
        }
        buffer.store(UInt32(taken), at: header)
        return taken
    }

    /// The results in the `reply` to a chunk whose first task is `firstIndex` of the
    /// call's input; errors are tagged with the rank and host that ran them.
    public func _wireResults(_ reply: UnsafeRawBufferPointer, firstIndex: Int, rank: Int,
                             host: String) throws -> WireResults<Output> {
        var r = _WireReader(reply)
        let count = Int(try r.read(UInt32.self))
        let failureCount = Int(try r.read(UInt32.self))
        let block = try r.take(Int(try r.read(UInt64.self)))
        if failureCount == count {
            var failures = try readFailures(&r, failureCount, count: count, firstIndex: firstIndex, rank: rank, host: host)
            return .results((0..<count).map { .failure(failures.removeValue(forKey: $0)!) })
        }
        if let stride = output.fixedStride {
            guard block.count == count * stride else { throw _BinaryFormatError("a reply's results have another size") }
            if failureCount == 0 {
                return .values([Output](unsafeUninitializedCapacity: count) { buffer, initialized in
                    if count > 0, stride > 0, let dst = buffer.baseAddress, let src = block.baseAddress {
                        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * stride)
                    }
                    initialized = count
                })
            }
            var failures = try readFailures(&r, failureCount, count: count, firstIndex: firstIndex, rank: rank, host: host)
            return .results((0..<count).map { i in
                if let e = failures.removeValue(forKey: i) { return .failure(e) }
                return .success(block.loadUnaligned(fromByteOffset: i * stride, as: Output.self))
            })
        }
        var items: [UnsafeRawBufferPointer] = []
        items.reserveCapacity(count)
        var results = _WireReader(block)
        for _ in 0..<count { items.append(try results.take(Int(try results.read(UInt64.self)))) }
        var failures = try readFailures(&r, failureCount, count: count, firstIndex: firstIndex, rank: rank, host: host)
        let decode = output.decode
        func value(_ i: Int) throws -> Output {
            do { return try decode(items[i]) } catch {
                throw ProcessPoolError(.encodingFailed(reason: "the result could not be decoded: \(error)"),
                                       taskIndex: firstIndex + i)
            }
        }
        if failureCount == 0 { return .values(try (0..<count).map(value)) }
        return .results((0..<count).map { i in
            if let e = failures.removeValue(forKey: i) { return .failure(e) }
            return Result { try value(i) }
        })
    }

    private func readFailures(_ r: inout _WireReader, _ n: Int, count: Int, firstIndex: Int, rank: Int,
                              host: String) throws -> [Int: any Error] {
        var found: [Int: any Error] = [:]
        for _ in 0..<n {
            let i = Int(try r.read(UInt32.self))
            let form = try r.read(UInt8.self)
            let bytes = try r.take(Int(try r.read(UInt32.self)))
            guard i < count else { throw _BinaryFormatError("a failure of task \(i) in a reply of \(count)") }
            var error: any Error
            if form == thrownForm {
                error = thrownError(from: bytes, taskIndex: firstIndex + i)
            } else {
                error = try _binaryDecode(ProcessPoolError.self, from: bytes)
            }
            if var e = error as? ProcessPoolError {
                e.taskIndex = firstIndex + i
                e.rank = rank
                e.host = host
                error = e
            }
            found[i] = error
        }
        return found
    }
}

@_spi(Wire)
extension ProcessPool {
    /// Runs the `chunk` of tasks of the function defined as `name` on this pool, and
    /// appends the reply to `reply`. Never throws: a task that cannot run (a name not
    /// defined here, a closed pool) is a failure in the reply.
    public func _serveWireChunk(function name: String, _ chunk: UnsafeRawBufferPointer, to reply: WireBuffer) {
        var r = _WireReader(chunk)
        guard let count = try? Int(r.read(UInt32.self)), let kind = try? r.read(UInt32.self) else {
            return appendFailedReply(count: 0, ProcessPoolError(.encodingFailed(reason: "a chunk without its header")), reply)
        }
        let function: _TaskFunction
        do { function = try _TaskFunction.defined(name) } catch {
            return appendFailedReply(count: count, error, reply)
        }
        let start = reply.count
        do {
            reply.reserve(16 + count * max(function.outStride, 16))
            let header = reply.count
            reply.append(UInt32(count))
            reply.append(UInt32(0))
            reply.append(UInt64(0))
            var failures: [(index: Int, error: any Error, thrown: UnsafeRawBufferPointer?)] = []
            let call = try _Call(pool: self, function: function)
            defer { call.end() }
            var items: [UnsafeRawBufferPointer] = []
            if kind == variableKind {
                items.reserveCapacity(count)
                for _ in 0..<count { items.append(try r.take(Int(try r.read(UInt64.self)))) }
            }
            let records = kind == fixedKind ? try r.take(count * function.inStride) : nil
            var rounds: [_Round] = [] // kept until the reply is written: thrown errors point into them
            var done = 0
            while done < count {
                let round: _Round
                if let records {
                    round = try call.stageRecords(records.baseAddress, count: count, stride: function.inStride,
                                                  from: done, outStride: function.outStride, indexBase: 0)
                } else {
                    round = try items.withUnsafeBufferPointer {
                        try call.stage($0, from: done, codec: _wireItemCodec, outStride: function.outStride)
                    }
                }
                try round.start(chunkSize: nil)
                round.waitHere()
                done += round.count
                if done == count { call.workersDone() }
                rounds.append(round)
                appendResults(of: round, failures: &failures, reply)
            }
            reply.store(UInt64(reply.count - header - 16), at: header + 8)
            for f in failures { appendFailure(f.index, f.error, thrown: f.thrown, reply) }
            reply.store(UInt32(failures.count), at: header + 4)
        } catch {
            // The pool could not run the chunk at all: every task fails with its reason.
            reply.sink.count = start
            appendFailedReply(count: count, error, reply)
        }
    }

    private func appendResults(of round: _Round,
                               failures: inout [(index: Int, error: any Error, thrown: UnsafeRawBufferPointer?)],
                               _ reply: WireBuffer) {
        var thrown: [Int: UnsafeRawBufferPointer] = [:]
        for f in round.coreFailures where f.status.code == Int32(CPOOL_E_FUNCTION_ERROR) {
            thrown[f.index] = round.outputBytes(f.index)
        }
        let failed = Set(round.failures.map(\.index))
        for f in round.failures {
            failures.append((index: round.first + f.index, error: f.error, thrown: thrown[f.index]))
        }
        if let output = round.output {
            reply.append(UnsafeRawBufferPointer(start: output, count: round.count * round.outStride))
            return
        }
        for i in 0..<round.count {
            let bytes = failed.contains(i) ? UnsafeRawBufferPointer(start: nil, count: 0) : round.outputBytes(i)
            reply.append(UInt64(bytes.count))
            reply.append(bytes)
        }
    }

    private func appendFailure(_ index: Int, _ error: any Error, thrown: UnsafeRawBufferPointer?, _ reply: WireBuffer) {
        reply.append(UInt32(index))
        if let thrown {
            reply.append(thrownForm)
            reply.append(UInt32(thrown.count))
            reply.append(thrown)
            return
        }
        let e = error as? ProcessPoolError
            ?? ProcessPoolError(.userError(typeName: String(reflecting: type(of: error)), message: "\(error)"))
        let sink = _ByteSink()
        try? _binaryEncode(e, into: sink)
        reply.append(poolErrorForm)
        reply.append(UInt32(sink.count))
        reply.append(sink.bytes)
    }

    /// A reply in which every one of `count` tasks failed with `error`.
    private func appendFailedReply(count: Int, _ error: any Error, _ reply: WireBuffer) {
        reply.append(UInt32(count))
        reply.append(UInt32(count))
        reply.append(UInt64(0))
        for i in 0..<count { appendFailure(i, error, thrown: nil, reply) }
    }
}

/// Serving side: variable-size inputs arrive already in their encoded form; staging
/// copies them as they are.
private let _wireItemCodec = _Codec<UnsafeRawBufferPointer>._rawKind({ v, body in try body(v) }, decode: { $0 })

extension _TaskFunction {
    /// The Swift function defined as `name` in this process (`PoolFunction.named`).
    static func defined(_ name: String) throws -> _TaskFunction {
        var info = cpool_definition_info_t()
        guard cpool_definition_find(name, &info) == 0, info.is_hook == 0 else {
            throw ProcessPoolError(.core(code: Int32(CPOOL_E_NOT_IN_WORKER),
                                         message: "\"\(name)\" is not defined in this process"))
        }
        guard let fn = info.fn, fn == unsafeBitCast(chunkTrampoline, to: UnsafeMutableRawPointer.self), let ctx = info.ctx
        else {
            throw ProcessPoolError(.core(code: Int32(CPOOL_E_NOT_IN_WORKER),
                                         message: "\"\(name)\" is defined here by C code, not by PoolFunction.named"))
        }
        return Unmanaged<_TaskFunction>.fromOpaque(ctx).takeUnretainedValue()
    }
}
