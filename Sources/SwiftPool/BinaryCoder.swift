import Foundation

// The compact binary form of `Codable` values that are neither `BitwiseCopyable` nor raw
// bytes (see `_Codec`). Every value is an *entry*: a 4-byte little-endian length, then
// that many bytes (length 0xFFFF_FFFF: nil, no bytes). Numbers are their fixed-width
// little-endian bytes, a `Bool` one byte, strings their UTF-8, arrays of
// `BitwiseCopyable` elements and `Data` their raw bytes. An unkeyed container is its
// entries one after another; a keyed container is pairs of entries (the key's string,
// then the value), so a decoder finds keys in any order and `decodeIfPresent` sees an
// absent key. No type names and no schema: both ends run the same program.

@usableFromInline
struct _BinaryFormatError: Error, CustomStringConvertible {
    @usableFromInline let description: String
    @usableFromInline init(_ d: String) { description = d }
}

private let nilLength: UInt32 = 0xFFFF_FFFF

/// A growable byte buffer the encoder writes into. Its state lives behind a pointer:
/// stored properties of a class pay a dynamic exclusivity check on every write, which
/// took a sixth of the time of encoding small structs.
@usableFromInline
final class _ByteSink {
    @usableFromInline struct State {
        @usableFromInline var base: UnsafeMutableRawPointer
        @usableFromInline var count: Int
        @usableFromInline var capacity: Int
    }

    @usableFromInline let state: UnsafeMutablePointer<State>

    @usableFromInline init(capacity: Int = 256) {
        let c = Swift.max(16, capacity)
        state = .allocate(capacity: 1)
        state.initialize(to: State(base: .allocate(byteCount: c, alignment: 16), count: 0, capacity: c))
    }

    deinit {
        state.pointee.base.deallocate()
        state.deallocate()
    }

    @usableFromInline var base: UnsafeMutableRawPointer { state.pointee.base }
    @usableFromInline var count: Int {
        get { state.pointee.count }
        set { state.pointee.count = newValue }
    }

    @usableFromInline func reserve(_ n: Int) {
        let s = state
        if s.pointee.count + n <= s.pointee.capacity { return }
        var c = s.pointee.capacity * 2
        while c < s.pointee.count + n { c *= 2 }
        let b = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 16)
        b.copyMemory(from: s.pointee.base, byteCount: s.pointee.count)
        s.pointee.base.deallocate()
        s.pointee.base = b
        s.pointee.capacity = c
    }

    @usableFromInline func append(_ bytes: UnsafeRawBufferPointer) {
        guard let b = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        (state.pointee.base + state.pointee.count).copyMemory(from: b, byteCount: bytes.count)
        state.pointee.count += bytes.count
    }

    @usableFromInline func append<T: BitwiseCopyable>(_ v: T) {
        reserve(MemoryLayout<T>.size)
        (state.pointee.base + state.pointee.count).storeBytes(of: v, as: T.self)
        state.pointee.count += MemoryLayout<T>.size
    }

    @usableFromInline var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

/// `Optional`, recognised without knowing its wrapped type: a nil is a nil entry.
protocol _OptionalValue { static func _isNil(_ value: Any) -> Bool }
extension Optional: _OptionalValue {
    static func _isNil(_ value: Any) -> Bool { (value as? Wrapped?).map { $0 == nil } ?? false }
}

// MARK: - Encoding

/// Appends `value`'s encoding to `sink` as one entry.
@usableFromInline
func _binaryEncode<T: Encodable>(_ value: T, into sink: _ByteSink) throws {
    try BinaryEncoder(sink: sink).entry(value)
}

/// Decodes the one entry that `bytes` hold.
@usableFromInline
func _binaryDecode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
    try BinaryDecoder.decode(type, from: bytes)
}

/// Whether values of `T` take their own encoding at the top level (no leaf type, no raw
/// bytes, not an Optional): then the per-value type checks can be skipped. Asked once
/// per call: a protocol conformance lookup costs as much as encoding a small struct.
@usableFromInline
func _binaryIsStructured<T>(_ type: T.Type) -> Bool {
    if T.self == Double.self || T.self == Int.self || T.self == String.self || T.self == Bool.self ||
        T.self == Float.self || T.self == Int64.self || T.self == Int32.self || T.self == UInt64.self ||
        T.self == UInt8.self { return false }
    if let raw = T.self as? any _RawBytes.Type, raw._isRaw { return false }
    return !(T.self is any _OptionalValue.Type)
}

/// `_binaryEncode` for a type that `_binaryIsStructured`.
@usableFromInline
func _binaryEncodeStructured<T: Encodable>(_ value: T, into sink: _ByteSink) throws {
    try BinaryEncoder(sink: sink).structured(value)
}

/// `_binaryDecode` for a type that `_binaryIsStructured`.
@usableFromInline
func _binaryDecodeStructured<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
    var at = 0
    let e = try BinaryDecoder.readEntry(bytes, &at)
    guard at == bytes.count else { throw _BinaryFormatError("\(bytes.count - at) bytes after the value") }
    return try T(from: BinaryDecoder(body: e))
}

final class BinaryEncoder: Encoder {
    let sink: _ByteSink
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    /// Where the open entries of nested containers begin; a container closes those
    /// opened after it before it writes again (see `closeNested`). Behind a pointer,
    /// like the sink's state, to spare the exclusivity checks.
    let nestedStack: UnsafeMutablePointer<[Int]>
    var nested: [Int] {
        get { nestedStack.pointee }
        _modify { yield &nestedStack.pointee }
    }

    init(sink: _ByteSink) {
        self.sink = sink
        nestedStack = .allocate(capacity: 1)
        nestedStack.initialize(to: [])
    }

    deinit {
        nestedStack.deinitialize(count: 1)
        nestedStack.deallocate()
    }

    func begin() -> Int {
        sink.append(UInt32(0))
        return sink.count
    }

    func end(_ start: Int) throws {
        let n = sink.count - start
        guard n < Int(nilLength) else { throw _BinaryFormatError("a value of \(n) bytes (at most 4 GiB)") }
        (sink.base + start - 4).storeBytes(of: UInt32(n).littleEndian, as: UInt32.self)
    }

    /// Ends the entries of nested containers opened since `depth`.
    func closeNested(to depth: Int) throws {
        while nestedStack.pointee.count > depth { try end(nestedStack.pointee.removeLast()) }
    }

    func nilEntry() { sink.append(nilLength) }

    func string(_ s: String) throws {
        let start = begin()
        var s = s
        s.withUTF8 { sink.append(UnsafeRawBufferPointer($0)) }
        try end(start)
    }

    func fixed<T: BitwiseCopyable>(_ v: T) {
        sink.append(UInt32(MemoryLayout<T>.size).littleEndian)
        sink.append(v)
    }

    /// One entry for `value`: the common leaf types directly (no container is made for
    /// them), raw bytes for strings, arrays and `Data`, else the value's own encoding.
    func entry<T: Encodable>(_ value: T) throws {
        // Exact types, never casts: a cast would unwrap an Optional.
        if T.self == Double.self { return fixed(unsafeBitCast(value, to: Double.self).bitPattern.littleEndian) }
        if T.self == Int.self { return fixed(Int64(unsafeBitCast(value, to: Int.self)).littleEndian) }
        if T.self == String.self { return try string(unsafeBitCast(value, to: String.self)) }
        if T.self == Bool.self { return fixed(unsafeBitCast(value, to: Bool.self) ? UInt8(1) : 0) }
        if T.self == Float.self { return fixed(unsafeBitCast(value, to: Float.self).bitPattern.littleEndian) }
        if T.self == Int64.self { return fixed(unsafeBitCast(value, to: Int64.self).littleEndian) }
        if T.self == Int32.self { return fixed(unsafeBitCast(value, to: Int32.self).littleEndian) }
        if T.self == UInt64.self { return fixed(unsafeBitCast(value, to: UInt64.self).littleEndian) }
        if T.self == UInt8.self { return fixed(unsafeBitCast(value, to: UInt8.self)) }
        if let raw = T.self as? any _RawBytes.Type, raw._isRaw {
            let start = begin()
            (value as! any _RawBytes)._withRawBytes { sink.append($0) }
            return try end(start)
        }
        if let optional = T.self as? any _OptionalValue.Type, optional._isNil(value) { return nilEntry() }
        try structured(value)
    }

    /// An entry holding the value's own encoding.
    func structured<T: Encodable>(_ value: T) throws {
        let depth = nestedStack.pointee.count
        let start = begin()
        try value.encode(to: self)
        try closeNested(to: depth)
        try end(start)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(Keyed<Key>(encoder: self, depth: nested.count))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer { Unkeyed(encoder: self, depth: nested.count) }

    func singleValueContainer() -> any SingleValueEncodingContainer { Single(encoder: self) }

    /// A nested container's entry stays open until its parent writes again or ends.
    func openNested() -> Int {
        nested.append(begin())
        return nested.count
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let encoder: BinaryEncoder
        let depth: Int
        var codingPath: [any CodingKey] { [] }

        private func key(_ k: Key) throws {
            try encoder.closeNested(to: depth)
            try encoder.string(k.stringValue)
        }

        mutating func encodeNil(forKey k: Key) throws {
            try key(k)
            encoder.nilEntry()
        }

        mutating func encode<T: Encodable>(_ value: T, forKey k: Key) throws {
            try key(k)
            try encoder.entry(value)
        }

        // The leaf types directly: the synthesized code calls these, and the generic
        // path would cost a dispatch and a run of type comparisons for each field.
        mutating func encode(_ value: Double, forKey k: Key) throws {
            try key(k)
            encoder.fixed(value.bitPattern.littleEndian)
        }
        mutating func encode(_ value: Float, forKey k: Key) throws {
            try key(k)
            encoder.fixed(value.bitPattern.littleEndian)
        }
        mutating func encode(_ value: Int, forKey k: Key) throws {
            try key(k)
            encoder.fixed(Int64(value).littleEndian)
        }
        mutating func encode(_ value: Int64, forKey k: Key) throws {
            try key(k)
            encoder.fixed(value.littleEndian)
        }
        mutating func encode(_ value: Int32, forKey k: Key) throws {
            try key(k)
            encoder.fixed(value.littleEndian)
        }
        mutating func encode(_ value: UInt64, forKey k: Key) throws {
            try key(k)
            encoder.fixed(value.littleEndian)
        }
        mutating func encode(_ value: Bool, forKey k: Key) throws {
            try key(k)
            encoder.fixed(value ? UInt8(1) : 0)
        }
        mutating func encode(_ value: String, forKey k: Key) throws {
            try key(k)
            try encoder.string(value)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey k: Key)
            -> KeyedEncodingContainer<NestedKey>
        {
            try? key(k)
            return KeyedEncodingContainer(Keyed<NestedKey>(encoder: encoder, depth: encoder.openNested()))
        }

        mutating func nestedUnkeyedContainer(forKey k: Key) -> any UnkeyedEncodingContainer {
            try? key(k)
            return Unkeyed(encoder: encoder, depth: encoder.openNested())
        }

        mutating func superEncoder() -> any Encoder { encoder }
        mutating func superEncoder(forKey key: Key) -> any Encoder { encoder }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let encoder: BinaryEncoder
        let depth: Int
        var codingPath: [any CodingKey] { [] }
        var count = 0

        mutating func encodeNil() throws {
            try encoder.closeNested(to: depth)
            encoder.nilEntry()
            count += 1
        }

        mutating func encode<T: Encodable>(_ value: T) throws {
            try encoder.closeNested(to: depth)
            try encoder.entry(value)
            count += 1
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
            -> KeyedEncodingContainer<NestedKey>
        {
            try? encoder.closeNested(to: depth)
            count += 1
            return KeyedEncodingContainer(Keyed<NestedKey>(encoder: encoder, depth: encoder.openNested()))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            try? encoder.closeNested(to: depth)
            count += 1
            return Unkeyed(encoder: encoder, depth: encoder.openNested())
        }

        mutating func superEncoder() -> any Encoder { encoder }
    }

    /// A single value is the body of the entry being written (a leaf: its bytes; any
    /// other value: an entry of its own, as `Optional` wraps its value).
    struct Single: SingleValueEncodingContainer {
        let encoder: BinaryEncoder
        var codingPath: [any CodingKey] { [] }

        mutating func encodeNil() throws {
            throw EncodingError.invalidValue(Optional<Int>.none as Any, .init(
                codingPath: [], debugDescription: "a nil single value outside an Optional"))
        }
        mutating func encode(_ value: Bool) throws { encoder.sink.append(value ? UInt8(1) : 0) }
        mutating func encode(_ value: String) throws {
            var s = value
            s.withUTF8 { encoder.sink.append(UnsafeRawBufferPointer($0)) }
        }
        mutating func encode(_ value: Double) throws { encoder.sink.append(value.bitPattern.littleEndian) }
        mutating func encode(_ value: Float) throws { encoder.sink.append(value.bitPattern.littleEndian) }
        mutating func encode(_ value: Int) throws { encoder.sink.append(Int64(value).littleEndian) }
        mutating func encode(_ value: Int8) throws { encoder.sink.append(value) }
        mutating func encode(_ value: Int16) throws { encoder.sink.append(value.littleEndian) }
        mutating func encode(_ value: Int32) throws { encoder.sink.append(value.littleEndian) }
        mutating func encode(_ value: Int64) throws { encoder.sink.append(value.littleEndian) }
        mutating func encode(_ value: UInt) throws { encoder.sink.append(UInt64(value).littleEndian) }
        mutating func encode(_ value: UInt8) throws { encoder.sink.append(value) }
        mutating func encode(_ value: UInt16) throws { encoder.sink.append(value.littleEndian) }
        mutating func encode(_ value: UInt32) throws { encoder.sink.append(value.littleEndian) }
        mutating func encode(_ value: UInt64) throws { encoder.sink.append(value.littleEndian) }
        mutating func encode<T: Encodable>(_ value: T) throws { try encoder.entry(value) }
    }
}

// MARK: - Decoding

/// Reads entries from bytes that stay valid while it decodes.
final class BinaryDecoder: Decoder {
    /// The body of the entry being decoded; nil for a nil entry.
    let body: UnsafeRawBufferPointer?
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(body: UnsafeRawBufferPointer?) { self.body = body }

    static func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        var at = 0
        let e = try readEntry(bytes, &at)
        guard at == bytes.count else { throw _BinaryFormatError("\(bytes.count - at) bytes after the value") }
        return try value(T.self, e)
    }

    /// The entry at `at` (its body, nil for a nil entry), moving `at` past it.
    static func readEntry(_ b: UnsafeRawBufferPointer, _ at: inout Int) throws -> UnsafeRawBufferPointer? {
        guard b.count - at >= 4 else { throw _BinaryFormatError("truncated: no entry length at \(at)") }
        let n = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self))
        at += 4
        if n == nilLength { return nil }
        guard Int(n) <= b.count - at else { throw _BinaryFormatError("truncated: an entry of \(n) bytes at \(at)") }
        defer { at += Int(n) }
        return UnsafeRawBufferPointer(rebasing: b[at..<at + Int(n)])
    }

    static func leaf<T: BitwiseCopyable>(_ e: UnsafeRawBufferPointer?, _ t: T.Type) throws -> T {
        guard let e else { throw DecodingError.valueNotFound(T.self, .init(codingPath: [], debugDescription: "nil")) }
        guard e.count == MemoryLayout<T>.size else {
            throw DecodingError.typeMismatch(T.self, .init(codingPath: [], debugDescription: "\(e.count) bytes"))
        }
        return e.loadUnaligned(as: T.self)
    }

    /// The value of entry `e`: the leaf types directly, raw bytes for strings, arrays and
    /// `Data`, else the type's own decoding.
    static func value<T: Decodable>(_ type: T.Type, _ e: UnsafeRawBufferPointer?) throws -> T {
        if T.self == Double.self { return Double(bitPattern: UInt64(littleEndian: try leaf(e, UInt64.self))) as! T }
        if T.self == Int.self { return Int(Int64(littleEndian: try leaf(e, Int64.self))) as! T }
        if T.self == String.self {
            guard let e else { throw DecodingError.valueNotFound(T.self, .init(codingPath: [], debugDescription: "nil")) }
            return String(decoding: e, as: UTF8.self) as! T
        }
        if T.self == Bool.self { return (try leaf(e, UInt8.self) != 0) as! T }
        if T.self == Float.self { return Float(bitPattern: UInt32(littleEndian: try leaf(e, UInt32.self))) as! T }
        if T.self == Int64.self { return Int64(littleEndian: try leaf(e, Int64.self)) as! T }
        if T.self == Int32.self { return Int32(littleEndian: try leaf(e, Int32.self)) as! T }
        if T.self == UInt64.self { return UInt64(littleEndian: try leaf(e, UInt64.self)) as! T }
        if T.self == UInt8.self { return try leaf(e, UInt8.self) as! T }
        if let raw = T.self as? any _RawBytes.Type, raw._isRaw, let e {
            return try raw._fromRawBytes(e) as! T
        }
        return try T(from: BinaryDecoder(body: e))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard let body else { throw DecodingError.valueNotFound(Key.self, .init(codingPath: [], debugDescription: "nil")) }
        return KeyedDecodingContainer(try Keyed<Key>(body))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard let body else { throw DecodingError.valueNotFound([Any].self, .init(codingPath: [], debugDescription: "nil")) }
        return Unkeyed(body: body)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(body: body) }

    /// A class: decoding moves its cursor, and the protocol's calls are not mutating.
    final class Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        /// (key, value) entries in the order they were written.
        var entries: [(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer?)] = []
        var codingPath: [any CodingKey] { [] }

        /// Where the next key is looked for first: keys are usually read in the order
        /// they were written.
        var cursor = 0

        init(_ body: UnsafeRawBufferPointer) throws {
            entries.reserveCapacity(8)
            var at = 0
            while at < body.count {
                guard let k = try BinaryDecoder.readEntry(body, &at) else { throw _BinaryFormatError("a nil key") }
                entries.append((k, try BinaryDecoder.readEntry(body, &at)))
            }
        }

        var allKeys: [Key] {
            entries.compactMap { Key(stringValue: String(decoding: $0.key, as: UTF8.self)) }
        }

        func find(_ key: Key) -> Int? {
            var name = key.stringValue
            return name.withUTF8 { n in
                let wanted = UnsafeRawBufferPointer(n)
                if cursor < entries.count, entries[cursor].key.elementsEqual(wanted) { return cursor }
                return entries.firstIndex { $0.key.elementsEqual(wanted) }
            }
        }

        /// The entry of `key`; the cursor moves past it.
        func entry(_ key: Key) throws -> UnsafeRawBufferPointer? {
            guard let i = find(key) else {
                throw DecodingError.keyNotFound(key, .init(codingPath: [], debugDescription: "no such key"))
            }
            cursor = i + 1
            return entries[i].value
        }

        func decode(_ type: Double.Type, forKey key: Key) throws -> Double {
            Double(bitPattern: UInt64(littleEndian: try BinaryDecoder.leaf(try entry(key), UInt64.self)))
        }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float {
            Float(bitPattern: UInt32(littleEndian: try BinaryDecoder.leaf(try entry(key), UInt32.self)))
        }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int {
            Int(Int64(littleEndian: try BinaryDecoder.leaf(try entry(key), Int64.self)))
        }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 {
            Int64(littleEndian: try BinaryDecoder.leaf(try entry(key), Int64.self))
        }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 {
            Int32(littleEndian: try BinaryDecoder.leaf(try entry(key), Int32.self))
        }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 {
            UInt64(littleEndian: try BinaryDecoder.leaf(try entry(key), UInt64.self))
        }
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
            try BinaryDecoder.leaf(try entry(key), UInt8.self) != 0
        }
        func decode(_ type: String.Type, forKey key: Key) throws -> String {
            guard let e = try entry(key) else {
                throw DecodingError.valueNotFound(String.self, .init(codingPath: [], debugDescription: "nil"))
            }
            return String(decoding: e, as: UTF8.self)
        }

        func contains(_ key: Key) -> Bool { find(key) != nil }
        func decodeNil(forKey key: Key) throws -> Bool {
            guard let i = find(key) else {
                throw DecodingError.keyNotFound(key, .init(codingPath: [], debugDescription: "no such key"))
            }
            return entries[i].value == nil
        }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try BinaryDecoder.value(T.self, try entry(key))
        }

        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            guard let i = find(key), let e = entries[i].value else { return nil }
            return try BinaryDecoder.value(T.self, e)
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            try BinaryDecoder(body: try entry(key)).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try BinaryDecoder(body: try entry(key)).unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder { throw _BinaryFormatError("superDecoder is not supported") }
        func superDecoder(forKey key: Key) throws -> any Decoder { throw _BinaryFormatError("superDecoder is not supported") }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let body: UnsafeRawBufferPointer
        var at = 0
        var currentIndex = 0
        var codingPath: [any CodingKey] { [] }
        var count: Int? { nil }
        var isAtEnd: Bool { at >= body.count }

        init(body: UnsafeRawBufferPointer) { self.body = body }

        mutating func next() throws -> UnsafeRawBufferPointer? {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(Any.self, .init(codingPath: [], debugDescription: "at the end"))
            }
            currentIndex += 1
            return try BinaryDecoder.readEntry(body, &at)
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd else { return false }
            if UInt32(littleEndian: body.loadUnaligned(fromByteOffset: at, as: UInt32.self)) == nilLength {
                _ = try next()
                return true
            }
            return false
        }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try BinaryDecoder.value(T.self, try next()) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            try BinaryDecoder(body: try next()).container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            try BinaryDecoder(body: try next()).unkeyedContainer()
        }

        mutating func superDecoder() throws -> any Decoder { BinaryDecoder(body: try next()) }
    }

    struct Single: SingleValueDecodingContainer {
        let body: UnsafeRawBufferPointer?
        var codingPath: [any CodingKey] { [] }

        func raw<T: BitwiseCopyable>(_ t: T.Type) throws -> T {
            guard let body, body.count == MemoryLayout<T>.size else {
                throw DecodingError.typeMismatch(T.self, .init(codingPath: [], debugDescription: "\(body?.count ?? -1) bytes"))
            }
            return body.loadUnaligned(as: T.self)
        }

        func decodeNil() -> Bool { body == nil }
        func decode(_ type: Bool.Type) throws -> Bool { try raw(UInt8.self) != 0 }
        func decode(_ type: String.Type) throws -> String { String(decoding: body ?? .init(start: nil, count: 0), as: UTF8.self) }
        func decode(_ type: Double.Type) throws -> Double { Double(bitPattern: UInt64(littleEndian: try raw(UInt64.self))) }
        func decode(_ type: Float.Type) throws -> Float { Float(bitPattern: UInt32(littleEndian: try raw(UInt32.self))) }
        func decode(_ type: Int.Type) throws -> Int { Int(Int64(littleEndian: try raw(Int64.self))) }
        func decode(_ type: Int8.Type) throws -> Int8 { try raw(Int8.self) }
        func decode(_ type: Int16.Type) throws -> Int16 { Int16(littleEndian: try raw(Int16.self)) }
        func decode(_ type: Int32.Type) throws -> Int32 { Int32(littleEndian: try raw(Int32.self)) }
        func decode(_ type: Int64.Type) throws -> Int64 { Int64(littleEndian: try raw(Int64.self)) }
        func decode(_ type: UInt.Type) throws -> UInt { UInt(UInt64(littleEndian: try raw(UInt64.self))) }
        func decode(_ type: UInt8.Type) throws -> UInt8 { try raw(UInt8.self) }
        func decode(_ type: UInt16.Type) throws -> UInt16 { UInt16(littleEndian: try raw(UInt16.self)) }
        func decode(_ type: UInt32.Type) throws -> UInt32 { UInt32(littleEndian: try raw(UInt32.self)) }
        func decode(_ type: UInt64.Type) throws -> UInt64 { UInt64(littleEndian: try raw(UInt64.self)) }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            guard let body else { throw DecodingError.valueNotFound(T.self, .init(codingPath: [], debugDescription: "nil")) }
            return try BinaryDecoder.decode(T.self, from: body)
        }
    }
}
