internal import CPoolCore
#if canImport(Glibc)
import Glibc
#endif

/// How far a map-like call is, as its progress handler sees it.
public struct MapProgress: Sendable, Equatable {
    /// Tasks that have ended, successfully or not.
    public var done: Int
    /// Tasks among them that failed.
    public var failed: Int
    /// Tasks in the call; `nil` when the input is a sequence whose length is not known.
    public var total: Int?
    /// Time since the call started.
    public var elapsed: Duration

    /// `done / total`, when the total is known.
    public var fractionDone: Double? {
        guard let total, total > 0 else { return nil }
        return Double(done) / Double(total)
    }

    /// Tasks ended per second so far.
    public var tasksPerSecond: Double {
        let s = elapsed.seconds
        return s > 0 ? Double(done) / s : 0
    }

    /// The time left at the rate so far, when the total is known and some tasks are done.
    public var estimatedRemaining: Duration? {
        guard let total, done > 0 else { return nil }
        let rate = tasksPerSecond
        return rate > 0 ? .seconds(Double(max(0, total - done)) / rate) : nil
    }
}

/// What a map-like call does with its progress: hand it to a closure, throttled, or draw
/// a progress bar (``bar(_:interval:)``).
///
/// The handler runs on whichever thread waits for the call's tasks (the caller's thread
/// for a blocking call), at most once per `interval` while tasks end, and always once
/// more at the end of the call. Progress is read from the C core's job counts between
/// waits, never per task, so observing it costs the tasks nothing.
///
/// ```swift
/// let hashes = try pool.map(files, progress: .bar("hashing")) { try sha256(of: $0) }
/// let sizes = try pool.map(files, progress: .every(.seconds(1)) { print("\($0.done) files") }) { … }
/// ```
public struct ProgressReporting: Sendable {
    let interval: Duration
    let handler: @Sendable (MapProgress) -> Void

    /// Calls `handler` at most once per `interval`, and once at the end.
    public static func every(_ interval: Duration = .milliseconds(100),
                             _ handler: @escaping @Sendable (MapProgress) -> Void) -> ProgressReporting {
        ProgressReporting(interval: interval, handler: handler)
    }

    /// The one report of a call with no tasks.
    @usableFromInline
    static func _reportNothing(_ reporting: ProgressReporting?) {
        reporting?.handler(MapProgress(done: 0, failed: 0, total: 0, elapsed: .zero))
    }

    /// A progress bar on standard error, like tqdm's: count, percentage, rate and time
    /// left, redrawn in place on a terminal; on a pipe or a file, a plain line every
    /// `interval` (default: every 10 seconds) and one at the end.
    public static func bar(_ label: String = "", interval: Duration? = nil) -> ProgressReporting {
        let bar = ProgressBar(label: label, fd: STDERR_FILENO)
        return ProgressReporting(interval: interval ?? (bar.isTerminal ? .milliseconds(100) : .seconds(10))) {
            bar.draw($0)
        }
    }
}

/// A call's progress: the rounds already ended plus the job of the round in flight.
@usableFromInline
final class _ProgressTracker: @unchecked Sendable {
    private let reporting: ProgressReporting
    private let total: Int?
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant
    private var lastReport: ContinuousClock.Instant?
    private var lastReported: (done: Int, failed: Int)?
    private var doneBefore = 0, failedBefore = 0
    private var finished = false
    private let monitor = Monitor()

    init(_ reporting: ProgressReporting, total: Int?) {
        self.reporting = reporting
        self.total = total
        start = clock.now
    }

    var intervalNanoseconds: UInt64 { max(1_000_000, reporting.interval.nanoseconds) }

    /// Reports the round in flight (`job`) when the interval has passed.
    func poll(_ job: OpaquePointer) {
        var ended: UInt64 = 0, failed: UInt64 = 0
        cpool_job_progress(job, &ended, &failed, nil)
        report(done: Int(ended), failed: Int(failed), force: false)
    }

    /// A round of `count` tasks, `failed` of them failed, has ended.
    func roundEnded(count: Int, failed: Int) {
        monitor.withLock {
            doneBefore += count
            failedBefore += failed
        }
        report(done: 0, failed: 0, force: false)
    }

    /// The call has ended: the last report, whatever the interval.
    func finish() {
        let first = monitor.withLock {
            defer { finished = true }
            return !finished
        }
        if first { report(done: 0, failed: 0, force: true) }
    }

    private func report(done: Int, failed: Int, force: Bool) {
        let now = clock.now
        let progress: MapProgress? = monitor.withLock {
            if !force, let last = lastReport, now - last < reporting.interval { return nil }
            if !force && finished { return nil }
            let counts = (done: doneBefore + done, failed: failedBefore + failed)
            // The end of the last round was reported already: the end of the call adds nothing.
            if force, let last = lastReported, last == counts { return nil }
            lastReport = now
            lastReported = counts
            return MapProgress(done: counts.done, failed: counts.failed, total: total, elapsed: now - start)
        }
        if let progress { reporting.handler(progress) }
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
