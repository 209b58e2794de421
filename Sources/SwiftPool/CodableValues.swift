import Foundation

/// Values that are not `BitwiseCopyable` (`String`, arrays, your `Codable` types) cross
/// to the workers in Foundation's binary property-list encoding: each input is encoded
/// once into the pool's shared memory, each result into a fixed-size slot there.

/// One encoded input as a task sees it: where its bytes are in shared memory.
@usableFromInline
struct _EncodedInput: BitwiseCopyable {
    @usableFromInline var address: UInt
    @usableFromInline var length: Int
    @usableFromInline init(address: UInt, length: Int) {
        self.address = address
        self.length = length
    }
}

/// The top level of a property list must be a container: values travel wrapped.
@usableFromInline
struct _Boxed<T: Codable>: Codable {
    @usableFromInline var value: T
    @usableFromInline init(_ value: T) { self.value = value }
}

@usableFromInline
struct _ResultTooLarge: Error, CustomStringConvertible {
    @usableFromInline let bytes: Int, limit: Int
    @usableFromInline init(bytes: Int, limit: Int) {
        self.bytes = bytes
        self.limit = limit
    }
    @usableFromInline var description: String {
        "the encoded result takes \(bytes) bytes, more than maxResultBytes (\(limit))"
    }
}

@usableFromInline
func _encode<T: Codable>(_ value: T) throws -> Data {
    let e = PropertyListEncoder()
    e.outputFormat = .binary
    return try e.encode(_Boxed(value))
}

@usableFromInline
func _decode<T: Codable>(_ type: T.Type, from data: Data) throws -> T {
    try PropertyListDecoder().decode(_Boxed<T>.self, from: data).value
}

extension ProcessPool {
    /// Maps `body` over values of any `Codable` type, `String` included, in input order.
    /// Each result must encode to at most `maxResultBytes` bytes (a bigger one fails
    /// its task with ``ProcessPoolError/Code/userError(typeName:message:)`` naming the
    /// size). `BitwiseCopyable` values take the faster ``map(_:chunkSize:_:)``.
    @inlinable @_disfavoredOverload
    public func map<Argument: Codable, Result: Codable>(
        _ inputs: [Argument], chunkSize: Int? = nil, maxResultBytes: Int = 4096,
        _ body: @escaping @Sendable (Argument) throws -> Result
    ) throws -> [Result] {
        var out: [Result] = []
        out.reserveCapacity(inputs.count)
        for r in try mapResults(inputs, chunkSize: chunkSize, maxResultBytes: maxResultBytes, body) {
            out.append(try r.get())
        }
        return out
    }

    /// ``map(_:chunkSize:maxResultBytes:_:)`` returning every task's result or error.
    @inlinable @_disfavoredOverload
    public func mapResults<Argument: Codable, Result: Codable>(
        _ inputs: [Argument], chunkSize: Int? = nil, maxResultBytes: Int = 4096,
        _ body: @escaping @Sendable (Argument) throws -> Result
    ) throws -> [Swift.Result<Result, ProcessPoolError>] {
        let slot = 8 + max(16, maxResultBytes)
        let journal = self.journal
        // The chunk loop, compiled here for Argument and Result: decode, run, encode.
        let run: _ChunkRunner = { input, inBytes, output, outBytes, count, progress in
            for i in 0..<count {
                progress.pointee = i
                let rec = input.loadUnaligned(fromByteOffset: i &* inBytes, as: _EncodedInput.self)
                do {
                    let bytes = Data(bytes: UnsafeRawPointer(bitPattern: rec.address)!, count: rec.length)
                    let encoded = try _encode(try body(try _decode(Argument.self, from: bytes)))
                    guard encoded.count <= slot - 8 else {
                        throw _ResultTooLarge(bytes: encoded.count, limit: slot - 8)
                    }
                    let dst = output + i &* outBytes
                    dst.storeBytes(of: encoded.count, as: Int.self)
                    encoded.withUnsafeBytes { (dst + 8).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                } catch {
                    _recordThrown(error, input: input + i &* inBytes, in: journal)
                    progress.pointee = i
                    return -1
                }
            }
            return 0
        }
        let f = _TaskFunction(run: run, inStride: MemoryLayout<_EncodedInput>.stride, outStride: slot)

        // Encode the inputs into one shared buffer the workers read in place.
        var blob = Data()
        var spans: [(Int, Int)] = []
        spans.reserveCapacity(inputs.count)
        for x in inputs {
            let d: Data
            do { d = try _encode(x) } catch {
                throw ProcessPoolError(.encodingFailed(reason: "input \(spans.count): \(error)"), taskIndex: spans.count)
            }
            spans.append((blob.count, d.count))
            blob.append(d)
        }
        let shared = try makeSharedArray(repeating: UInt8(0), count: Swift.max(1, blob.count))
        blob.withUnsafeBytes { if $0.count > 0 { shared.baseAddress.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: $0.count) } }
        let base = UInt(bitPattern: shared.baseAddress)
        let records = spans.map { _EncodedInput(address: base + UInt($0.0), length: $0.1) }

        var slots = [UInt8](repeating: 0, count: inputs.count * slot)
        let failures = try withExtendedLifetime(shared) {
            try records.withUnsafeBytes { raw in
                try slots.withUnsafeMutableBytes { out in
                    try _run(f, input: raw, count: inputs.count, chunkSize: chunkSize, output: out.baseAddress)
                }
            }
        }
        var failed: [Int: ProcessPoolError] = [:]
        for (i, e) in failures { failed[i] = e }
        return slots.withUnsafeBytes { raw in
            (0..<inputs.count).map { i -> Swift.Result<Result, ProcessPoolError> in
                if let e = failed[i] { return .failure(e) }
                let at = raw.baseAddress! + i * slot
                let n = at.loadUnaligned(as: Int.self)
                guard n >= 0 && n <= slot - 8 else {
                    return .failure(ProcessPoolError(.encodingFailed(reason: "a malformed result slot"), taskIndex: i))
                }
                do {
                    return .success(try _decode(Result.self, from: Data(bytes: at + 8, count: n)))
                } catch {
                    return .failure(ProcessPoolError(.encodingFailed(reason: "result: \(error)"), taskIndex: i))
                }
            }
        }
    }
}
