import Glibc
import Testing
import SwiftPool

/// The fault-injection matrix (after CPython's test_deadlock.py): every fault at every
/// stage of a task's life. Each case asserts what the caller gets and that a pool still
/// works afterwards; a time limit fails a case that hangs instead of stalling CI.
enum Fault: String, CaseIterable, Codable, Sendable {
    case segfault, abort, exit3, hang, thrown, oversized
}

enum Stage: String, CaseIterable, Sendable {
    case workerInit, argumentDecoding, function, resultEncoding, exitHook, respawn
}

struct Injected: Error, CustomStringConvertible {
    var description: String { "injected" }
}

/// Runs `fault` here and now (in a worker).
func inject(_ fault: Fault) throws {
    switch fault {
    case .segfault: raise(SIGSEGV)
    case .abort: abort()
    case .exit3: _exit(3)
    case .hang: while true { sleep(1) }
    case .thrown: throw Injected()
    case .oversized: break // only meaningful where a result is produced
    }
}

/// An argument whose decoding (in the worker) runs a fault.
struct FaultyArgument: Codable, Sendable {
    var value: Int
    var fault: Fault?
    var note = "" // not trivially copyable: encoded and decoded, not copied as bytes
    init(value: Int, fault: Fault?) {
        self.value = value
        self.fault = fault
    }
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        value = try c.decode(Int.self, forKey: .value)
        fault = try c.decodeIfPresent(Fault.self, forKey: .fault)
        if let fault { try inject(fault) }
    }
}

/// A result whose encoding (in the worker) runs a fault.
struct FaultyResult: Codable, Sendable, Equatable {
    var value: Int
    var fault: Fault?
    var padding = ""
    init(value: Int, fault: Fault?) {
        self.value = value
        self.fault = fault
        if fault == .oversized { padding = String(repeating: "x", count: 100_000) }
    }
    func encode(to encoder: any Encoder) throws {
        if let fault { try inject(fault) }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(value, forKey: .value)
        try c.encode(padding, forKey: .padding)
    }
}

struct Case: CustomTestStringConvertible, Sendable {
    let fault: Fault
    let stage: Stage
    var testDescription: String { "\(fault) in \(stage)" }
}

/// Every meaningful pair: an oversized result exists only where a result is produced,
/// and an exit hook cannot throw.
let cases: [Case] = Stage.allCases.flatMap { stage in
    Fault.allCases.compactMap { fault in
        if fault == .oversized && !(stage == .function || stage == .resultEncoding) { return nil }
        if fault == .thrown && stage == .exitHook { return nil }
        return Case(fault: fault, stage: stage)
    }
}

@Suite("Fault-injection matrix", .timeLimit(.minutes(1)))
struct FaultMatrixTests {
    static let taskTimeout = Duration.milliseconds(500)

    @Test(arguments: cases)
    func faultIsReportedAndThePoolGoesOn(_ c: Case) throws {
        let counters = SharedCounters() // per slot: processes that ran init; [100]: crashed yet
        let fault = c.fault, stage = c.stage
        let config = ProcessPoolConfiguration(
            // One worker for the respawn stage, so that the crash's replacement is the
            // process that must run the faulty init.
            workerCount: stage == .respawn ? 1 : 2,
            taskTimeout: Self.taskTimeout,
            // Generous: the tests run in parallel on 2 cores, and a healthy init must
            // never be taken for a hanging one.
            hookTimeout: .seconds(2),
            workerInit: { id in
                counters.base[id] += 1
                if stage == .workerInit { try inject(fault) }
                // respawn: every worker forked after the crash below faults
                if stage == .respawn && counters.base[100] == 1 { try inject(fault) }
            },
            workerExit: { _ in
                if stage == .exitHook { try? inject(fault) }
            })
        let pool = ProcessPool(config)
        let n = 8, faulty = 3
        let inputs = (0..<n).map {
            FaultyArgument(value: $0, fault: stage == .argumentDecoding && $0 == faulty ? fault : nil)
        }
        let call = Result { try pool.mapResults(inputs, chunkSize: 1) { (a: FaultyArgument) -> FaultyResult in
            if stage == .function && a.value == faulty { try inject(fault) }
            if stage == .respawn && a.value == faulty {
                counters.base[100] = 1 // from now on, new workers fault in their init hook
                raise(SIGSEGV)         // and this one dies, so that a replacement is forked
            }
            let encodingFault = stage == .resultEncoding && a.value == faulty ? fault : nil
            let functionOversized = stage == .function && a.value == faulty && fault == .oversized
            return FaultyResult(value: a.value * 10, fault: functionOversized ? .oversized : encodingFault)
        } }
        if stage == .workerInit, case let .failure(e as ProcessPoolError) = call {
            // The pool broke before the call could start its tasks: the call fails whole.
            #expect(e.code == .workerInitFailed)
            #expect(try ProcessPool(.init(workerCount: 2)).map([1, 2, 3]) { $0 + 1 } == [2, 3, 4])
            return
        }
        let results = try call.get()
        #expect(results.count == n)

        switch stage {
        case .workerInit:
            // No worker can start: every task fails with the pool's init error.
            for r in results { #expect(code(r) == .workerInitFailed) }
        case .argumentDecoding, .function, .resultEncoding:
            for (i, r) in results.enumerated() where i != faulty {
                #expect((try? r.get()) == FaultyResult(value: i * 10, fault: nil), "task \(i)")
            }
            let got = code(results[faulty]), want = expected(fault)
            if fault == .oversized {
                // Results have any size: a large one comes back whole.
                #expect((try? results[faulty].get())?.padding.utf8.count == 100_000)
            } else {
                #expect(got == want, "task \(faulty): \(results[faulty])")
            }
        case .exitHook:
            for (i, r) in results.enumerated() { #expect((try? r.get())?.value == i * 10) }
        case .respawn:
            // One worker: tasks 0-2 ran, task 3 crashed it, and every replacement faulted
            // in its init (a crash, an exit, a throw, or a hang past the hook timeout):
            // three failures in a row break the pool, so tasks 4-7 fail with that.
            #expect(code(results[faulty]) == .crashed(signal: SIGSEGV, exitStatus: nil))
            for i in 0..<faulty { #expect((try? results[i].get())?.value == i * 10, "task \(i)") }
            for i in (faulty + 1)..<n { #expect(code(results[i]) == .workerInitFailed, "task \(i): \(results[i])") }
            #expect(counters[0] >= 4, "init ran in the first worker and in at least three replacements")
        }

        // A pool still works afterwards: this one when its workers can start, else a new one.
        let next = stage == .workerInit || stage == .respawn ? ProcessPool(.init(workerCount: 2)) : pool
        #expect(try next.map([1, 2, 3]) { $0 + 1 } == [2, 3, 4])
        pool.close()
        pool.join() // returns even when exit hooks crash or hang
    }

    func expected(_ fault: Fault) -> ProcessPoolError.Code {
        switch fault {
        case .segfault: return .crashed(signal: SIGSEGV, exitStatus: nil)
        case .abort: return .crashed(signal: SIGABRT, exitStatus: nil)
        case .exit3: return .crashed(signal: nil, exitStatus: 3)
        case .hang: return .timedOut
        case .thrown: return .userError(typeName: "SwiftPoolTests.Injected", message: "injected")
        case .oversized:
            return .closed // not a failure: see the oversized case above
        }
    }
}

/// The pool's own error code of a failed result (nil for a success or another error).
func code<T>(_ r: Result<T, any Error>) -> ProcessPoolError.Code? {
    if case let .failure(e) = r { return e.code }
    return nil
}

/// What the tests read of a failure: its ``ProcessPoolError`` code and task, if it is one.
extension Error {
    var code: ProcessPoolError.Code? {
        guard let e = self as? ProcessPoolError else { return nil }
        let c: ProcessPoolError.Code = e.code
        return c
    }
    var taskIndex: Int? {
        guard let e = self as? ProcessPoolError else { return nil }
        let i: Int? = e.taskIndex
        return i
    }
}
