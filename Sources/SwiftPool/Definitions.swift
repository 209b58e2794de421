internal import CPoolCore

// Functions and hooks defined by name: what a spawned worker can run. Each is entered in
// the C core's table of this process (`cpool_define`, `cpool_define_hook`); a spawned
// worker's `main` makes the same definitions before it serves, and finds each by name.

extension PoolFunction: PoolDefinition {
    /// The name the function was defined under (`named`), `nil` for a closure.
    public var definedName: String? { function.name }
}

extension PoolFunction where Input: BitwiseCopyable, Output: BitwiseCopyable {
    /// A function every process of this program knows by `name`: the only kind a spawned
    /// worker runs (``StartMethod/spawn``), and usable with every start method. Define it
    /// once per process, in a static property listed in ``ProcessPool/serveIfSpawned(_:)``.
    /// Throws when `name` is already defined in this process, or is empty or 64 bytes or
    /// longer.
    @inlinable @_disfavoredOverload
    public static func named(_ name: String, _ body: @escaping @Sendable (Input) throws -> Output) throws -> PoolFunction {
        try PoolFunction(body, input: .bitwise(), output: .bitwise())._defined(as: name)
    }
}

extension PoolFunction where Input: Codable, Output: Codable {
    /// `named` for `Codable` arguments or results.
    @inlinable
    public static func named(_ name: String, _ body: @escaping @Sendable (Input) throws -> Output) throws -> PoolFunction {
        try PoolFunction(body, input: .codable(), output: .codable())._defined(as: name)
    }
}

extension PoolFunction {
    /// Enters the function in this process's table under `name`. Its type (argument and
    /// result types and sizes) is checked against the worker's own definition.
    @usableFromInline
    func _defined(as name: String) throws -> PoolFunction {
        let type = "\(String(reflecting: Input.self)) -> \(String(reflecting: Output.self))"
        let ctx = Unmanaged.passRetained(function).toOpaque() // defined for the process's life
        let rc = cpool_define(name, type, chunkTrampoline, ctx, function.inStride, function.outStride)
        guard rc == 0 else {
            Unmanaged<_TaskFunction>.fromOpaque(ctx).release()
            throw ProcessPoolError.definition(name, rc)
        }
        function.name = name
        return self
    }
}

/// Code that runs in each worker process (or thread) when it starts or leaves: a hook
/// of one call (``WorkerHooks``). A closure runs on forked workers and threads; a hook
/// defined by name (`named`) runs with every start method. An exit hook may
/// return a value, which the caller collects with ``ProcessPool/takeExitResults()``.
public struct WorkerHook: PoolDefinition {
    let name: String?
    let body: HookBody

    /// The name the hook was defined under, `nil` for a closure.
    public var definedName: String? { name }

    /// A hook that runs `body` with the worker's id. An init hook that throws makes that
    /// worker fail to start (a pool whose workers keep failing is broken).
    public init(_ body: @escaping @Sendable (_ workerID: Int) throws -> Void) {
        name = nil
        self.body = HookBody { id in try body(id); return nil }
    }

    /// An exit hook whose value the caller collects (mpire's `get_exit_results`).
    public init<Value: Codable & Sendable>(returning body: @escaping @Sendable (_ workerID: Int) throws -> Value) {
        name = nil
        self.body = HookBody.returning(body)
    }

    /// A hook every process of this program knows by `name` (see
    /// `PoolFunction.named`). Throws when the name is taken in this process.
    public static func named(_ name: String, _ body: @escaping @Sendable (_ workerID: Int) throws -> Void) throws -> WorkerHook {
        try WorkerHook(name: name, body: HookBody { id in try body(id); return nil })
    }

    /// A named exit hook whose value the caller collects.
    public static func named<Value: Codable & Sendable>(
        _ name: String, returning body: @escaping @Sendable (_ workerID: Int) throws -> Value
    ) throws -> WorkerHook {
        try WorkerHook(name: name, body: .returning(body))
    }

    private init(name: String, body: HookBody) throws {
        let rc = cpool_define_hook(name, namedHookTrampoline, Unmanaged.passRetained(body).toOpaque())
        guard rc == 0 else { throw ProcessPoolError.definition(name, rc) }
        self.name = name
        self.body = body
    }
}

/// Hooks given to one call: each worker that serves the call runs `onStart` before its
/// first task of it and `onExit` when it leaves (see ``ProcessPool`` for exactly when).
public struct WorkerHooks: Sendable {
    /// Runs in each worker process before its first task of the call.
    public var onStart: WorkerHook?
    /// Runs in each worker process when it leaves: at the end of the call, or earlier
    /// when its lifespan ends (its replacement runs `onStart`).
    public var onExit: WorkerHook?

    public init(onStart: WorkerHook? = nil, onExit: WorkerHook? = nil) {
        self.onStart = onStart
        self.onExit = onExit
    }
}

/// What an exit hook returned, as ``ProcessPool/takeExitResults()`` hands it over.
public struct WorkerExitResult: Sendable {
    /// The worker (0 ..< workerCount) whose process ran the hook.
    public let workerID: Int
    let bytes: [UInt8]

    /// The value, decoded as `type`; throws the hook's error when it threw, or when the
    /// value is not a `type`.
    public func value<T: Decodable>(as type: T.Type = T.self) throws -> T {
        guard let tag = bytes.first else { throw ProcessPoolError(.encodingFailed(reason: "empty exit result")) }
        let rest = bytes.dropFirst()
        if tag == HookBody.errorTag {
            throw ProcessPoolError(.userError(typeName: "exit hook", message: String(decoding: rest, as: UTF8.self)))
        }
        return try Array(rest).withUnsafeBytes { try _binaryDecode(T.self, from: $0) }
    }
}

/// A hook's code, kept alive for as long as workers may call it.
final class HookBody: Sendable {
    static let valueTag: UInt8 = 0
    static let errorTag: UInt8 = 1
    /// Runs the hook; returns the exit value's bytes (tagged), if any.
    let run: @Sendable (Int) throws -> [UInt8]?

    init(_ run: @escaping @Sendable (Int) throws -> [UInt8]?) { self.run = run }

    static func returning<Value: Codable & Sendable>(_ body: @escaping @Sendable (Int) throws -> Value) -> HookBody {
        HookBody { id in
            let sink = _ByteSink()
            try _binaryEncode(try body(id), into: sink)
            return [valueTag] + Array(sink.bytes)
        }
    }

    /// Runs the hook in a worker: 0 when it succeeded. Its value, or the error it threw,
    /// goes to the parent when this is an exit hook (elsewhere there is nowhere to send it).
    func callInWorker(_ id: Int) -> Int32 {
        do {
            if let bytes = try run(id) { hand(bytes) }
            return 0
        } catch {
            hand([HookBody.errorTag] + Array("\(error)".utf8))
            return 1
        }
    }

    private func hand(_ bytes: [UInt8]) {
        let rc = bytes.withUnsafeBytes { cpool_hook_output($0.baseAddress, $0.count) }
        if rc == -ENOSPC {
            let note = [HookBody.errorTag] + Array("exit result of \(bytes.count) bytes does not fit in the room left".utf8)
            _ = note.withUnsafeBytes { cpool_hook_output($0.baseAddress, $0.count) }
        }
    }
}

let namedHookTrampoline: cpool_worker_hook_t = { id, ctx in
    Unmanaged<HookBody>.fromOpaque(ctx!).takeUnretainedValue().callInWorker(Int(id))
}

extension ProcessPoolError {
    static func definition(_ name: String, _ rc: Int32) -> ProcessPoolError {
        let why = rc == Int32(CPOOL_E_EXISTS) ? "the name is already defined in this process"
            : String(cString: cpool_strerror(rc))
        return ProcessPoolError(.core(code: rc, message: "cannot define \"\(name)\": \(why)"))
    }
}

#if canImport(Glibc)
import Glibc
#endif
