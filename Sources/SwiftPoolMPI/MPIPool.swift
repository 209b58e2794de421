internal import CPoolCore
@_spi(Wire) import SwiftPool
import Foundation

/// A process pool over the ranks of an MPI job: the same calls as ``ProcessPool``, with
/// functions defined by name (`PoolFunction.named`), their tasks spread over every rank's
/// own pool. Launched as MPI programs are, `mpirun -np N ./app`: every rank runs the same
/// `main`, which calls ``start(_:configuration:)`` first; on rank 0 it returns the pool,
/// on every other rank it serves rank 0 and ends the process when rank 0 is done.
///
/// A task that crashes kills one worker of one rank: it fails alone, with the rank and
/// host in its ``ProcessPoolError``. A rank that dies or stops answering is reported
/// within ``MPIPoolConfiguration/rankTimeout`` as ``ProcessPoolError/Code/rankLost(reason:)``
/// (start `mpirun` with `--mca orte_enable_recovery 1`, or Open MPI ends every rank when
/// one dies).
public final class MPIPool: @unchecked Sendable {
    /// Every rank of the job, in rank order.
    public let ranks: [MPIRank]
    /// The configuration it was started with.
    public let configuration: MPIPoolConfiguration
    private let driver: Driver
    private let local: ProcessPool
    /// The functions every rank was found to define alike at start-up.
    private let agreed: Set<String>
    private let lock = NSLock()
    private var shut = false

    private init(ranks: [MPIRank], configuration: MPIPoolConfiguration, driver: Driver, local: ProcessPool,
                 agreed: Set<String>) {
        self.agreed = agreed
        self.ranks = ranks
        self.configuration = configuration
        self.driver = driver
        self.local = local
    }

    deinit { shutdown() }

    private nonisolated(unsafe) static var started = false

    /// Starts the pool on every rank of the MPI job. `definitions`: every function (and
    /// hook) the program defines by name, so that they exist before the ranks compare
    /// them. A spawned worker of a rank's pool serves here and never returns (this calls
    /// ``ProcessPool/serveIfSpawned(_:)`` first).
    ///
    /// On rank 0: returns once every rank has reported and defines the same functions
    /// with the same types; throws ``MPIPoolError`` when they differ (every rank leaves)
    /// or a rank does not report within ``MPIPoolConfiguration/startTimeout``. On every
    /// other rank: serves rank 0, then ends the process (status 0, or 1 when rank 0 was
    /// lost or did not answer).
    public static func start(_ definitions: any PoolDefinition...,
                             configuration: MPIPoolConfiguration = .init()) throws -> MPIPool {
        _ = definitions
        ProcessPool.serveIfSpawned()
        guard !started else { throw MPIPoolError(code: .alreadyStarted, message: "MPIPool.start was called twice") }
        started = true
        let transport = try Transport.start()
        if transport.rank == 0 && transport.size > 1
            && ProcessInfo.processInfo.environment["OMPI_MCA_orte_enable_recovery"] != "1" {
            FileHandle.standardError.write(Data(("SwiftPoolMPI: mpirun runs without --mca orte_enable_recovery 1: " +
                "Open MPI ends the whole job when a rank dies, before the pool can report it\n").utf8))
        }
        var localConfiguration = configuration.local
        localConfiguration.keepAlive = true
        let local = ProcessPool(localConfiguration)
        if transport.rank != 0 { serve(transport, local, configuration) }
        return try drive(transport, local, configuration)
    }

    // MARK: start-up

    private struct Definition: Codable, Equatable {
        let name: String
        let type: String
        let hash: UInt64
        let isHook: Bool
    }

    private struct Hello: Codable {
        let host: String
        let workers: Int
        let definitions: [Definition]
    }

    private struct Welcome: Codable {
        let ok: Bool
        let message: String
    }

    private static func definitions() -> [Definition] {
        var out: [Definition] = []
        var info = cpool_definition_info_t()
        var i = 0
        while cpool_definition_at(i, &info) == 0 {
            let name = withUnsafeBytes(of: info.name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let type = withUnsafeBytes(of: info.type) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            out.append(Definition(name: name, type: type, hash: info.type_hash, isHook: info.is_hook != 0))
            i += 1
        }
        return out.sorted { $0.name < $1.name }
    }

    private static func json<T: Encodable>(_ value: T) -> WireBuffer {
        let data = (try? JSONEncoder().encode(value)) ?? Data()
        let b = WireBuffer(capacity: data.count)
        data.withUnsafeBytes { b.append($0) }
        return b
    }

    private static func sendAndWait(_ transport: Transport, _ b: WireBuffer, to rank: Int, tag: Tag) throws {
        try transport.send(b, to: rank, tag: tag)
        let deadline = ContinuousClock.now + .seconds(10)
        while !transport.sendsDone && ContinuousClock.now < deadline {
            try transport.progressSends()
            usleep(100)
        }
    }

    /// A serving rank: reports to rank 0, serves, and ends the process.
    private static func serve(_ transport: Transport, _ local: ProcessPool, _ configuration: MPIPoolConfiguration) -> Never {
        let hello = Hello(host: transport.host, workers: local.configuration.workerCount, definitions: definitions())
        var status: Int32 = 0
        do {
            try sendAndWait(transport, json(hello), to: 0, tag: .hello)
            guard let m = try transport.wait(for: .welcome, timeout: configuration.startTimeout) else {
                throw MPIPoolError(code: .startTimedOut, message: "rank 0 did not answer within \(configuration.startTimeout)")
            }
            let welcome = try JSONDecoder().decode(Welcome.self, from: Data(m.bytes))
            if !welcome.ok {
                // Rank 0 reports it to its caller; this rank leaves normally, so that
                // mpirun does not end rank 0 before it can.
                FileHandle.standardError.write(Data("SwiftPoolMPI rank \(transport.rank) (\(transport.host)): \(welcome.message)\n".utf8))
                local.close()
                transport.finalize()
                exit(0)
            }
            if let lost = Server(transport: transport, local: local, configuration: configuration).serve() {
                throw MPIPoolError(code: .mpi, message: lost)
            }
        } catch {
            FileHandle.standardError.write(Data("SwiftPoolMPI rank \(transport.rank) (\(transport.host)): \(error)\n".utf8))
            status = 1
        }
        local.close()
        local.join()
        if status == 0 { transport.finalize() }
        exit(status)
    }

    /// Rank 0: waits for every rank's report, compares definitions, answers, and starts
    /// driving.
    private static func drive(_ transport: Transport, _ local: ProcessPool,
                              _ configuration: MPIPoolConfiguration) throws -> MPIPool {
        let mine = definitions()
        let localWorkers = configuration.driverRunsTasks ? local.configuration.workerCount : 0
        var ranks = [MPIRank](repeating: MPIRank(rank: 0, host: transport.host, workerCount: localWorkers),
                              count: transport.size)
        var differences: [String] = []
        var reported = Set<Int>()
        let deadline = ContinuousClock.now + configuration.startTimeout
        while reported.count < transport.size - 1 && ContinuousClock.now < deadline {
            guard let m = try transport.wait(for: .hello, timeout: deadline - ContinuousClock.now) else { break }
            let hello = try JSONDecoder().decode(Hello.self, from: Data(m.bytes))
            ranks[m.source] = MPIRank(rank: m.source, host: hello.host, workerCount: hello.workers)
            reported.insert(m.source)
            differences += compare(mine, hello.definitions, rank: m.source, host: hello.host)
        }
        let missing = (1..<max(1, transport.size)).filter { !reported.contains($0) }
        let refusal: MPIPoolError? = !missing.isEmpty
            ? MPIPoolError(code: .startTimedOut,
                           message: "rank(s) \(missing.map(String.init).joined(separator: ", ")) did not report within \(configuration.startTimeout)")
            : differences.isEmpty ? nil
            : MPIPoolError(code: .definitionsDiffer,
                           message: "the ranks do not define the same functions: " + differences.joined(separator: "; "))
        let welcome = Welcome(ok: refusal == nil, message: refusal?.message ?? "")
        for r in reported.sorted() { try sendAndWait(transport, json(welcome), to: r, tag: .welcome) }
        if let refusal {
            local.close()
            if missing.isEmpty { transport.finalize() }
            throw refusal
        }
        let states = ranks.map { Scheduler.RankState(host: $0.host, workers: $0.workerCount) }
        let driver = Driver(transport: transport, ranks: states, local: local, configuration: configuration)
        driver.start()
        return MPIPool(ranks: ranks, configuration: configuration, driver: driver, local: local,
                       agreed: Set(mine.filter { !$0.isHook }.map(\.name)))
    }

    private static func compare(_ mine: [Definition], _ theirs: [Definition], rank: Int, host: String) -> [String] {
        let a = Dictionary(mine.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        let b = Dictionary(theirs.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        var out: [String] = []
        for name in Set(a.keys).union(b.keys).sorted() {
            switch (a[name], b[name]) {
            case let (x?, y?) where x.hash != y.hash || x.isHook != y.isHook:
                out.append("\"\(name)\" is \(x.type) on rank 0 but \(y.type) on rank \(rank) (\(host))")
            case (_?, nil): out.append("\"\(name)\" is not defined on rank \(rank) (\(host))")
            case (nil, _?): out.append("\"\(name)\" is defined on rank \(rank) (\(host)) but not on rank 0")
            default: break
            }
        }
        return out
    }

    // MARK: calls

    private func name<I, O>(of function: PoolFunction<I, O>) throws -> String {
        guard let name = function.definedName else {
            throw ProcessPoolError(.unsupported(reason: "a closure cannot run on other ranks: define the function with PoolFunction.named"))
        }
        guard agreed.contains(name) else {
            throw ProcessPoolError(.unsupported(reason:
                "\"\(name)\" was defined after MPIPool.start: every rank must define it before, and list it there"))
        }
        return name
    }

    private func run<I, O>(_ function: PoolFunction<I, O>, _ input: CallInput<I>, maxReady: Int = .max,
                           onEnd: (@Sendable (WireCall<I, O>) -> Void)? = nil) throws -> WireCall<I, O> {
        let call = WireCall(function, name: try name(of: function), input: input, maxReady: maxReady)
        if let onEnd { call.onEnd = { [unowned call] in onEnd(call) } }
        try driver.scheduler.add(call)
        driver.scheduler.poke()
        return call
    }

    /// Runs `function` on every input across the ranks and returns the results in input
    /// order; throws the first failure in input order (a crashed task's error names its
    /// rank and host).
    public func map<Input, Output>(_ function: PoolFunction<Input, Output>, _ inputs: [Input]) throws -> [Output] {
        try run(function, .array(inputs)).allValues()
    }

    /// Like ``map(_:_:)``, but each element is that task's result or error: one task's
    /// failure, or a lost rank's, never hides the other results.
    public func mapResults<Input, Output>(_ function: PoolFunction<Input, Output>,
                                          _ inputs: [Input]) throws -> [Result<Output, any Error>] {
        try run(function, .array(inputs)).allResults()
    }

    /// Maps lazily and in order: reads `inputs` as chunks go out (`chunkSize` tasks per
    /// worker of the receiving rank, default 64), a bounded number in flight and waiting
    /// to be read. Each element is that task's result or error.
    public func imap<Inputs: Sequence, Output>(_ function: PoolFunction<Inputs.Element, Output>, _ inputs: Inputs,
                                               chunkSize: Int? = nil) throws -> MPIResults<Output> {
        try lazyMap(function, inputs, chunkSize: chunkSize, ordered: true)
    }

    /// Like ``imap(_:_:chunkSize:)``, but yields each chunk's results as soon as it ends;
    /// ``ProcessPoolError/taskIndex`` tells which input a failure belongs to.
    public func imapUnordered<Inputs: Sequence, Output>(_ function: PoolFunction<Inputs.Element, Output>,
                                                        _ inputs: Inputs, chunkSize: Int? = nil) throws -> MPIResults<Output> {
        try lazyMap(function, inputs, chunkSize: chunkSize, ordered: false)
    }

    private func lazyMap<Inputs: Sequence, Output>(_ function: PoolFunction<Inputs.Element, Output>, _ inputs: Inputs,
                                                   chunkSize: Int?, ordered: Bool) throws -> MPIResults<Output> {
        let inFlight = ranks.count * max(1, configuration.chunksInFlight)
        let perWorker = max(1, chunkSize ?? 64)
        let workers = ranks.reduce(0) { $0 + $1.workerCount }
        let call = WireCall(function, name: try name(of: function),
                            input: .sequence(AnyIterator(inputs.makeIterator()), chunkSize: perWorker,
                                             readAhead: 2 * perWorker * max(1, workers) * max(1, configuration.chunksInFlight)),
                            maxReady: 2 * inFlight)
        call.refill()
        try driver.scheduler.add(call)
        return MPIResults(call: call, ordered: ordered, kick: { [driver] in driver.scheduler.poke(); driver.scheduler.kick() })
    }

    /// Starts `function(input)` on some rank and returns at once; `onEnd` is called
    /// with the result when the task ends (on the pool's communication thread: keep it
    /// short).
    public func submit<Input, Output>(_ function: PoolFunction<Input, Output>, _ input: Input,
                                      onEnd: (@Sendable (Result<Output, any Error>) -> Void)? = nil) throws -> MPITask<Output> {
        let call = try run(function, .array([input]), onEnd: onEnd.map { f in { call in f(MPITask.result(of: call, atEnd: true)) } })
        return MPITask(call: call)
    }

    /// `function(input)` on some rank: ``submit(_:_:onEnd:)`` and wait.
    public func apply<Input, Output>(_ function: PoolFunction<Input, Output>, _ input: Input) throws -> Output {
        try submit(function, input).get()
    }

    /// Ranks lost so far (they get no more tasks).
    public var lostRanks: [Int] { driver.scheduler.lostRanks }

    /// Waits for the calls under way, tells every serving rank to leave, and ends MPI on
    /// this rank. Later calls throw ``ProcessPoolError/Code/closed``. When a rank was lost,
    /// MPI cannot be finalized (it would wait for that rank for ever): when this process
    /// exits, the job ends with `MPI_Abort` (status 1), which ends every rank left, a
    /// hung one too. Called by `deinit` too.
    public func shutdown() {
        lock.lock()
        defer { lock.unlock() }
        if shut { return }
        shut = true
        driver.scheduler.close()
        while !driver.scheduler.isIdle { usleep(1000) }
        driver.stop()
        local.close()
        local.join()
        if driver.scheduler.lostRanks.isEmpty {
            driver.transport.finalize()
        } else {
            // Finalizing would wait for the lost rank for ever, and a rank that hangs
            // would keep mpirun waiting: the job ends with MPI_Abort when this process
            // exits (status 1), which ends every rank left.
            let lost = driver.scheduler.lostRanks.map { "\($0) (\(ranks[$0].host))" }.joined(separator: ", ")
            FileHandle.standardError.write(Data("SwiftPoolMPI: rank(s) \(lost) lost; the job ends with MPI_Abort at exit\n".utf8))
            atexit { Transport.abortJob() }
        }
    }
}

/// The results of ``MPIPool/imap(_:_:chunkSize:)`` and
/// ``MPIPool/imapUnordered(_:_:chunkSize:)``, read as the chunks end.
public struct MPIResults<Output>: Sequence, IteratorProtocol, @unchecked Sendable {
    let call: any ResultSource<Output>
    let ordered: Bool
    let kick: @Sendable () -> Void
    private var buffer: [Result<Output, any Error>] = []
    private var at = 0
    private var nextIndex = 0

    init<I>(call: WireCall<I, Output>, ordered: Bool, kick: @escaping @Sendable () -> Void) {
        self.call = call
        self.ordered = ordered
        self.kick = kick
    }

    public mutating func next() -> Result<Output, any Error>? {
        if at < buffer.count {
            defer { at += 1 }
            return buffer[at]
        }
        do {
            guard let r = try call.nextResults(startingAt: ordered ? nextIndex : nil, kick: kick) else { return nil }
            buffer = r
            at = 0
            nextIndex += r.count
        } catch {
            buffer = [.failure(error)]
            at = 0
        }
        return next()
    }
}

protocol ResultSource<Output>: AnyObject, Sendable {
    associatedtype Output
    func nextResults(startingAt first: Int?, kick: () -> Void) throws -> [Result<Output, any Error>]?
}

extension WireCall: ResultSource {}

/// A task started with ``MPIPool/submit(_:_:onEnd:)``.
public final class MPITask<Output>: @unchecked Sendable {
    private let waitFor: (Duration?) -> Bool
    private let outcome: () -> Result<Output, any Error>

    init<I>(call: WireCall<I, Output>) {
        waitFor = { call.wait(timeout: $0) }
        outcome = { MPITask.result(of: call) }
    }

    static func result<I>(of call: WireCall<I, Output>, atEnd: Bool = false) -> Result<Output, any Error> {
        do {
            let all = try atEnd ? call.resultsAtEnd() : call.allResults()
            return all.first ?? .failure(ProcessPoolError(.cancelled))
        } catch {
            return .failure(error)
        }
    }

    /// True once the task has ended.
    public var isDone: Bool { waitFor(.zero) }

    /// Waits until the task ends or `timeout` passes; returns whether it ended.
    @discardableResult
    public func wait(timeout: Duration? = nil) -> Bool { waitFor(timeout) }

    /// Waits for the task and returns its result, or throws its error.
    public func get() throws -> Output { try outcome().get() }

    /// The result, awaited without blocking a Swift concurrency thread.
    public var value: Output {
        get async throws {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Output, any Error>) in
                Thread.detachNewThread { [self] in c.resume(with: outcome()) }
            }
        }
    }
}
