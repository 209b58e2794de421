internal import CPoolCore

/// How an error thrown by a task's closure reaches the caller: the worker writes it as
/// the task's output (`cpool_task_output`), which travels with the task's completion
/// and is never lost, however many tasks fail. The output holds the error's mangled
/// type name, its readable type name and its description, and, when its type is
/// `Codable`, its value in the binary form: the parent decodes it back into the same
/// type, so `catch let e as MyError` matches. Any other error comes back as a
/// ``ProcessPoolError`` with ``ProcessPoolError/Code/userError(typeName:message:)``.

/// Worker side: makes the thrown error the output of the task being run.
@usableFromInline
func _reportThrown(_ error: any Error) {
    let e = userError(in: error)
    let sink = _ByteSink()
    let type = type(of: e)
    do {
        try _binaryEncode(_mangledTypeName(type) ?? "", into: sink)
        try _binaryEncode(String(reflecting: type), into: sink)
        try _binaryEncode(String(describing: e), into: sink)
        if let value = e as? any Encodable {
            let mark = sink.count
            do { try encodeValue(value, into: sink) } catch { sink.count = mark }
        }
    } catch {
        sink.count = 0 // nothing sensible to say: the parent reports an error without text
    }
    _ = try? _setTaskOutput(sink.bytes)
}

private func encodeValue<E: Encodable>(_ value: E, into sink: _ByteSink) throws {
    try _binaryEncode(value, into: sink)
}

/// Worker side: makes `bytes` the output of the task being run. Throws when called
/// outside a task (in the parent).
@usableFromInline
func _setTaskOutput(_ bytes: UnsafeRawBufferPointer) throws {
    let rc = cpool_task_output(bytes.baseAddress, bytes.count)
    if rc != 0 { throw ProcessPoolError.fromCore(rc) }
}

/// Parent side: the error a task threw, from its output.
func thrownError(from output: UnsafeRawBufferPointer, taskIndex: Int) -> any Error {
    var at = 0
    guard let mangled = try? BinaryDecoder.readEntry(output, &at),
          let typeName = try? BinaryDecoder.readEntry(output, &at),
          let message = try? BinaryDecoder.readEntry(output, &at)
    else {
        return ProcessPoolError(.userError(typeName: "Error", message: "(the task's error could not be read)"),
                                taskIndex: taskIndex)
    }
    if at < output.count, let type = _typeByName(String(decoding: mangled, as: UTF8.self)) as? any (Error & Decodable).Type,
       let value = try? decodeValue(type, from: UnsafeRawBufferPointer(rebasing: output[at...])) {
        return value
    }
    return ProcessPoolError(.userError(typeName: String(decoding: typeName, as: UTF8.self),
                                       message: String(decoding: message, as: UTF8.self)),
                            taskIndex: taskIndex)
}

private func decodeValue<E: Error & Decodable>(_ type: E.Type, from bytes: UnsafeRawBufferPointer) throws -> any Error {
    try _binaryDecode(E.self, from: bytes)
}

/// The user's own error inside the coders' wrappers: an `encode(to:)` or `init(from:)`
/// that throws reaches us wrapped in an EncodingError or DecodingError.
private func userError(in error: any Error) -> any Error {
    let context: Any?
    switch error {
    case let EncodingError.invalidValue(_, c): context = c.underlyingError
    case let DecodingError.dataCorrupted(c): context = c.underlyingError
    case let DecodingError.keyNotFound(_, c): context = c.underlyingError
    case let DecodingError.typeMismatch(_, c): context = c.underlyingError
    case let DecodingError.valueNotFound(_, c): context = c.underlyingError
    default: context = nil
    }
    if let inner = context as? any Error { return userError(in: inner) }
    return error
}
