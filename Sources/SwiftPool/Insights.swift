internal import CPoolCore

/// Where one worker slot's time went, over all of its processes (mpire's insights).
/// Times are measured only with ``ProcessPoolConfiguration/insights`` on; without it
/// they are zero and only the counts are kept.
public struct WorkerInsights: Sendable, Equatable {
    /// One of the slowest tasks the slot ran.
    public struct SlowTask: Sendable, Equatable {
        public var duration: Duration
        /// Its index in the call's inputs, or within its round for a call whose inputs
        /// filled the shared memory several times over; `nil` when the pool could not
        /// tell.
        public var taskIndex: Int?
    }

    /// The worker slot, 0 ..< workerCount.
    public var worker: Int
    /// Processes that started in the slot (the first one plus replacements).
    public var processes: Int
    public var tasksDone: Int
    /// Fork to ready, init hook included, summed over the slot's processes.
    public var startUp: Duration
    public var initHook: Duration
    public var exitHook: Duration
    /// Running tasks.
    public var working: Duration
    /// Ready and waiting for work.
    public var waiting: Duration
    /// Slowest first.
    public var slowestTasks: [SlowTask]
}

/// Every worker slot's ``WorkerInsights``; its `description` is a short table.
public struct PoolInsights: Sendable, Equatable, CustomStringConvertible {
    public var workers: [WorkerInsights]

    /// The slowest tasks of all workers, slowest first, with the worker that ran each.
    public var slowestTasks: [(worker: Int, task: WorkerInsights.SlowTask)] {
        workers.flatMap { w in w.slowestTasks.map { (worker: w.worker, task: $0) } }
            .sorted { $0.task.duration > $1.task.duration }
    }

    public static func == (a: PoolInsights, b: PoolInsights) -> Bool { a.workers == b.workers }

    public var description: String {
        var rows = [["worker", "processes", "tasks", "start-up", "init", "exit", "working", "waiting"]]
        for w in workers {
            rows.append(["\(w.worker)", "\(w.processes)", "\(w.tasksDone)", Self.time(w.startUp),
                         Self.time(w.initHook), Self.time(w.exitHook), Self.time(w.working), Self.time(w.waiting)])
        }
        let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        var lines = rows.map { row in
            zip(row, widths).map { String(repeating: " ", count: $1 - $0.count) + $0 }.joined(separator: "  ")
        }
        let slow = slowestTasks.prefix(5)
        if !slow.isEmpty {
            lines.append("slowest tasks: " + slow.map { s in
                "\(s.task.taskIndex.map { "#\($0)" } ?? "?") \(Self.time(s.task.duration)) (worker \(s.worker))"
            }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }

    static func time(_ d: Duration) -> String {
        let s = d.seconds
        switch s {
        case 0: return "0"
        case ..<1e-3: return "\(Int((s * 1e6).rounded())) µs"
        case ..<1: return "\(Int((s * 1e3).rounded())) ms"
        default: return "\(Double(Int(s * 100)) / 100) s"
        }
    }
}

extension CoreSession {
    func insights() -> PoolInsights {
        PoolInsights(workers: (0..<max(0, Int(cpool_worker_count(handle)))).map { w in
            var i = cpool_worker_insights_t()
            _ = cpool_worker_insights(handle, UInt32(w), &i)
            let slow = withUnsafeBytes(of: i.slowest) { raw in
                Array(raw.bindMemory(to: cpool_slow_item_t.self).prefix(Int(i.slowest_count)))
            }
            return WorkerInsights(
                worker: w, processes: Int(i.processes), tasksDone: Int(i.tasks_done),
                startUp: .nanoseconds(Int64(i.startup_ns)), initHook: .nanoseconds(Int64(i.init_ns)),
                exitHook: .nanoseconds(Int64(i.exit_ns)), working: .nanoseconds(Int64(i.working_ns)),
                waiting: .nanoseconds(Int64(i.waiting_ns)),
                slowestTasks: slow.map { .init(duration: .nanoseconds(Int64($0.duration_ns)),
                                               taskIndex: $0.item >= 0 ? Int($0.item) : nil) })
        })
    }
}
