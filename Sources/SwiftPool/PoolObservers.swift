internal import CPoolCore
import CoreMetrics
public import Logging

/// A line a worker wrote to its standard output or standard error.
public struct WorkerOutputLine: Sendable, Equatable {
    public enum Stream: String, Sendable { case stdout, stderr }
    /// The worker slot (0 ..< workerCount) that wrote it.
    public var worker: Int
    public var stream: Stream
    /// The line without its newline (invalid UTF-8 repaired).
    public var text: String
}

/// Where the workers' standard output and standard error go.
public enum WorkerOutput: Sendable {
    /// Straight to this process's own stdout and stderr, whatever they are (a terminal, a
    /// pipe, a file). Each worker's stdout is line-buffered, so a line appears whole when
    /// it ends and nothing the parent had buffered is printed twice.
    case inherit
    /// Each line to `logger`: stdout at `.info`, stderr at `.warning`, with the metadata
    /// `worker` and `stream`.
    case logger(Logger)
    /// Each line to a closure, called on the pool's supervisor thread, in order per
    /// worker and stream. Keep it short: the same thread notices crashes and timeouts.
    case lines(@Sendable (WorkerOutputLine) -> Void)
}

/// What a pool tells the application: its events as log records, its counts as metrics,
/// its workers' output. The C core calls in on its supervisor thread; calls end, on the
/// thread that waited for them.
final class PoolObservers: @unchecked Sendable {
    let logger: Logger?
    let output: WorkerOutput
    private let tasks: Counter
    private let failures: [String: Counter]
    private let workerEvents: [Int32: Counter]
    private let workersAlive: Meter
    private let callsWaiting: Meter

    init(_ c: ProcessPoolConfiguration) {
        logger = c.logger
        output = c.workerOutput
        let factory = c.metricsFactory ?? MetricsSystem.factory
        let pool = [("pool", c.label)]
        tasks = Counter(label: "swiftpool_tasks_total", dimensions: pool, factory: factory)
        failures = Dictionary(uniqueKeysWithValues: Self.failureKinds.map {
            ($0, Counter(label: "swiftpool_task_failures_total", dimensions: pool + [("kind", $0)], factory: factory))
        })
        workerEvents = Dictionary(uniqueKeysWithValues: Self.eventNames.map { kind, name in
            (kind, Counter(label: "swiftpool_worker_events_total", dimensions: pool + [("event", name)], factory: factory))
        })
        workersAlive = Meter(label: "swiftpool_workers_alive", dimensions: pool, factory: factory)
        callsWaiting = Meter(label: "swiftpool_calls_waiting", dimensions: pool, factory: factory)
    }

    static let failureKinds = ["crashed", "timed_out", "cancelled", "thrown", "encoding", "other"]

    static let eventNames: [Int32: String] = [
        Int32(CPOOL_EVENT_WORKER_STARTED.rawValue): "started",
        Int32(CPOOL_EVENT_WORKER_EXITED.rawValue): "exited",
        Int32(CPOOL_EVENT_WORKER_CRASHED.rawValue): "crashed",
        Int32(CPOOL_EVENT_TASK_TIMED_OUT.rawValue): "task_timed_out",
        Int32(CPOOL_EVENT_TASK_CANCELLED.rawValue): "task_cancelled",
        Int32(CPOOL_EVENT_WORKER_RECYCLED.rawValue): "recycled",
        Int32(CPOOL_EVENT_INIT_FAILED.rawValue): "init_failed",
        Int32(CPOOL_EVENT_EXIT_TIMED_OUT.rawValue): "exit_timed_out",
        Int32(CPOOL_EVENT_KILLED.rawValue): "killed",
        Int32(CPOOL_EVENT_POOL_BROKEN.rawValue): "pool_broken",
    ]

    /// Whether the C pool must capture the workers' output for us.
    var capturesOutput: Bool {
        if case .inherit = output { return false }
        return true
    }

    // MARK: calls

    /// A round of `count` tasks ended with these failures.
    func tasksEnded<Failures: Sequence>(count: Int, failures: Failures) where Failures.Element == any Error {
        tasks.increment(by: Int64(count))
        for e in failures { self.failures[Self.failureKind(e)]?.increment() }
    }

    static func failureKind(_ e: any Error) -> String {
        guard let p = e as? ProcessPoolError else { return "thrown" }
        switch p.code {
        case .crashed: return "crashed"
        case .timedOut: return "timed_out"
        case .cancelled: return "cancelled"
        case .userError: return "thrown"
        case .encodingFailed: return "encoding"
        default: return "other"
        }
    }

    /// Calls waiting for the workers to be forked again.
    func callsWaiting(_ n: Int) { callsWaiting.set(n) }

    // MARK: from the C core's supervisor thread

    func event(_ e: cpool_event_t) {
        workerEvents[e.kind]?.increment()
        let started = e.kind == Int32(CPOOL_EVENT_WORKER_STARTED.rawValue)
        if started { workersAlive.increment() }
        else if e.kind != Int32(CPOOL_EVENT_POOL_BROKEN.rawValue) { workersAlive.decrement() }
        guard let logger else { return }
        var meta: Logger.Metadata = ["worker": "\(e.worker)", "pid": "\(e.pid)", "tasks_done": "\(e.tasks_done)"]
        switch e.kind {
        case Int32(CPOOL_EVENT_WORKER_STARTED.rawValue):
            logger.debug(e.detail != 0 ? "worker replaced" : "worker started", metadata: meta)
        case Int32(CPOOL_EVENT_WORKER_EXITED.rawValue):
            logger.debug("worker exited", metadata: meta)
        case Int32(CPOOL_EVENT_WORKER_CRASHED.rawValue):
            meta.merge(Self.ending(e.detail)) { $1 }
            logger.warning("worker crashed", metadata: meta)
        case Int32(CPOOL_EVENT_TASK_TIMED_OUT.rawValue):
            logger.warning("task timed out; its worker was killed", metadata: meta)
        case Int32(CPOOL_EVENT_TASK_CANCELLED.rawValue):
            logger.info("worker killed to stop a cancelled task", metadata: meta)
        case Int32(CPOOL_EVENT_WORKER_RECYCLED.rawValue):
            logger.notice("worker recycled: its memory grew past the limit", metadata: meta)
        case Int32(CPOOL_EVENT_INIT_FAILED.rawValue):
            meta.merge(Self.ending(e.detail)) { $1 }
            logger.error("worker init failed", metadata: meta)
        case Int32(CPOOL_EVENT_EXIT_TIMED_OUT.rawValue):
            logger.warning("worker exit hook timed out; the worker was killed", metadata: meta)
        case Int32(CPOOL_EVENT_KILLED.rawValue):
            logger.debug("worker killed: the pool was terminated", metadata: meta)
        case Int32(CPOOL_EVENT_POOL_BROKEN.rawValue):
            logger.critical("the pool is broken: worker init keeps failing", metadata: [:])
        default:
            logger.debug("pool event \(e.kind)", metadata: meta)
        }
    }

    /// A crash detail (see `cpool_status_t`) as metadata.
    static func ending(_ detail: Int32) -> Logger.Metadata {
        if detail < 0 { return ["cause": "unknown"] }
        return detail >= 1000 ? ["exit_status": "\(detail - 1000)"] : ["signal": "\(detail)"]
    }

    func line(worker: UInt32, stream: Int32, bytes: UnsafeBufferPointer<UInt8>) {
        let line = WorkerOutputLine(worker: Int(worker), stream: stream == 2 ? .stderr : .stdout,
                                    text: String(decoding: bytes, as: UTF8.self))
        switch output {
        case .inherit: break
        case let .logger(l):
            let meta: Logger.Metadata = ["worker": "\(line.worker)", "stream": "\(line.stream.rawValue)"]
            if line.stream == .stderr { l.warning("\(line.text)", metadata: meta) }
            else { l.info("\(line.text)", metadata: meta) }
        case let .lines(handler): handler(line)
        }
    }
}

let eventTrampoline: cpool_event_fn_t = { event, ctx in
    guard let event, let ctx else { return }
    Unmanaged<PoolObservers>.fromOpaque(ctx).takeUnretainedValue().event(event.pointee)
}

let outputTrampoline: cpool_output_fn_t = { worker, stream, line, length, ctx in
    guard let ctx else { return }
    let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(line)?.assumingMemoryBound(to: UInt8.self), count: length)
    Unmanaged<PoolObservers>.fromOpaque(ctx).takeUnretainedValue().line(worker: worker, stream: stream, bytes: bytes)
}
