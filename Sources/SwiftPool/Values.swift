import Foundation

/// Values that cross to the workers as their raw bytes with a length: arrays of
/// trivially copyable elements (`[UInt8]`, `[Double]`, `[SIMD4<Float>]`, ...) and `Data`.
/// `String` crosses as its UTF-8 the same way. Only when `_isRaw`: an array of strings
/// takes the binary form.
@usableFromInline
protocol _RawBytes {
    static var _isRaw: Bool { get }
    func _withRawBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
    static func _fromRawBytes(_ bytes: UnsafeRawBufferPointer) throws -> Self
}

extension Array: _RawBytes {
    @usableFromInline static var _isRaw: Bool { _isPOD(Element.self) }

    @usableFromInline func _withRawBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBufferPointer { try body(UnsafeRawBufferPointer($0)) }
    }

    @usableFromInline static func _fromRawBytes(_ bytes: UnsafeRawBufferPointer) throws -> [Element] {
        let stride = MemoryLayout<Element>.stride
        guard stride > 0 else { return [] }
        guard bytes.count % stride == 0 else {
            throw _BinaryFormatError("\(bytes.count) bytes are no whole number of \(Element.self) (\(stride) bytes)")
        }
        let n = bytes.count / stride
        return [Element](unsafeUninitializedCapacity: n) { buffer, initialized in
            if n > 0, let dst = buffer.baseAddress, let src = bytes.baseAddress {
                UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: bytes.count)
            }
            initialized = n
        }
    }
}

extension Data: _RawBytes {
    @usableFromInline static var _isRaw: Bool { true }

    @usableFromInline func _withRawBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(body)
    }

    @usableFromInline static func _fromRawBytes(_ bytes: UnsafeRawBufferPointer) throws -> Data { Data(bytes) }
}

/// An input of variable size as a task sees it: where its bytes are in shared memory.
@usableFromInline
struct _VariableInput: BitwiseCopyable {
    @usableFromInline var address: UInt
    @usableFromInline var count: Int
    @usableFromInline init(address: UInt, count: Int) {
        self.address = address
        self.count = count
    }
}

/// How values of one type cross between the parent and the workers — the one value
/// path of every call:
/// - `BitwiseCopyable` values (and any other trivially copyable type): their bytes, at a
///   fixed stride, copied once in and once out;
/// - `String`, arrays of `BitwiseCopyable` elements, `Data`: their raw bytes and a length;
/// - any other `Codable` type: the compact binary form of `BinaryCoder.swift`.
/// Fixed-size inputs are records of the C map; variable-size inputs are staged in shared
/// memory with a `_VariableInput` record each; variable-size results travel as the
/// tasks' outputs (`cpool_task_output`), of any size.
@usableFromInline
struct _Codec<T>: @unchecked Sendable {
    /// The stride of a fixed-size value; nil for values of variable size.
    @usableFromInline let fixedStride: Int?
    /// Raw kinds: hands the value's own bytes to `body`, no copy; nil for other kinds.
    @usableFromInline let withRawBytes: ((T, (UnsafeRawBufferPointer) throws -> Void) throws -> Void)?
    /// Variable size: appends the value's bytes to a sink.
    @usableFromInline let append: (T, _ByteSink) throws -> Void
    /// Variable size: the value back from its bytes.
    @usableFromInline let decode: (UnsafeRawBufferPointer) throws -> T

    @usableFromInline
    init(fixedStride: Int?, withRawBytes: ((T, (UnsafeRawBufferPointer) throws -> Void) throws -> Void)?,
         append: @escaping (T, _ByteSink) throws -> Void, decode: @escaping (UnsafeRawBufferPointer) throws -> T) {
        self.fixedStride = fixedStride
        self.withRawBytes = withRawBytes
        self.append = append
        self.decode = decode
    }

    /// The record a task reads for one input: the value itself, or its `_VariableInput`.
    @inlinable var recordStride: Int { fixedStride ?? MemoryLayout<_VariableInput>.stride }

    /// Values copied as bytes.
    @inlinable
    @usableFromInline
    static func bitwise() -> _Codec<T> {
        _Codec(fixedStride: MemoryLayout<T>.stride, withRawBytes: nil,
               append: { v, sink in withUnsafeBytes(of: v) { sink.append($0) } },
               decode: { $0.loadUnaligned(as: T.self) })
    }

    /// The fastest form `T` has: bytes for trivially copyable types, raw bytes for
    /// strings, arrays and `Data`, else the binary form.
    @inlinable
    @usableFromInline
    static func codable() -> _Codec<T> where T: Codable {
        if _isPOD(T.self) { return bitwise() }
        if T.self == String.self {
            return _rawKind({ v, body in
                                var s = unsafeBitCast(v, to: String.self)
                                try s.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
                            },
                            decode: { unsafeBitCast(String(decoding: $0, as: UTF8.self), to: T.self) })
        }
        if let raw = T.self as? any _RawBytes.Type, raw._isRaw { return _rawCodec(raw) }
        // The per-value type checks of the binary form are asked once here.
        let structured = _binaryIsStructured(T.self)
        return _Codec(fixedStride: nil, withRawBytes: nil,
                      append: structured ? { v, sink in try _binaryEncodeStructured(v, into: sink) }
                                         : { v, sink in try _binaryEncode(v, into: sink) },
                      decode: structured ? { try _binaryDecodeStructured(T.self, from: $0) }
                                         : { try _binaryDecode(T.self, from: $0) })
    }

    @usableFromInline
    static func _rawCodec<Raw: _RawBytes>(_ raw: Raw.Type) -> _Codec<T> {
        _rawKind({ v, body in try unsafeBitCast(v, to: Raw.self)._withRawBytes { try body($0) } },
                 decode: { unsafeBitCast(try Raw._fromRawBytes($0), to: T.self) })
    }

    @usableFromInline
    static func _rawKind(_ withRawBytes: @escaping (T, (UnsafeRawBufferPointer) throws -> Void) throws -> Void,
                         decode: @escaping (UnsafeRawBufferPointer) throws -> T) -> _Codec<T> {
        _Codec(fixedStride: nil, withRawBytes: withRawBytes,
               append: { v, sink in try withRawBytes(v) { sink.append($0) } }, decode: decode)
    }

    /// Worker side: the input whose record is at `record`.
    @inlinable @inline(__always)
    func load(_ record: UnsafeRawPointer) throws -> T {
        if fixedStride != nil { return record.loadUnaligned(as: T.self) }
        let r = record.loadUnaligned(as: _VariableInput.self)
        guard r.count >= 0 else { throw _BinaryFormatError("an input that was not staged") }
        return try decode(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: r.address), count: r.count))
    }

    /// Worker side: stores the result at `slot` (fixed size) or makes it the task's output:
    /// raw bytes straight from the value, else encoded into `scratch`, the worker's one
    /// buffer (a worker runs one task at a time).
    @inlinable @inline(__always)
    func store(_ value: T, _ slot: UnsafeMutableRawPointer, scratch: _ByteSink) throws {
        if fixedStride != nil { return slot.storeBytes(of: value, as: T.self) }
        if let withRawBytes { return try withRawBytes(value) { try _setTaskOutput($0) } }
        scratch.count = 0
        try append(value, scratch)
        try _setTaskOutput(scratch.bytes)
    }
}
