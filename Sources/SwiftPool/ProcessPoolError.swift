internal import CPoolCore

/// The one error type of SwiftPool: what went wrong with a task or a call, for which
/// task, and, in a pool that spans an MPI job, on which rank.
public struct ProcessPoolError: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Sendable, Equatable, Codable {
        /// The worker died while running the task: killed by `signal`, or exited with
        /// `exitStatus`; both are `nil` when the host program collected the worker's exit
        /// status before the pool could (it ignores SIGCHLD or reaps every child itself).
        case crashed(signal: Int32?, exitStatus: Int32?)
        /// The task ran past ``ProcessPoolConfiguration/taskTimeout``; its worker was killed.
        case timedOut
        /// The task was cancelled (``TaskHandle/cancel()``, Swift task cancellation,
        /// or ``ProcessPool/terminate()``).
        case cancelled
        /// The pool was closed or terminated before the call.
        case closed
        /// The worker init hook kept failing: the pool cannot run anything.
        case workerInitFailed
        /// The task's own closure threw: `typeName` and `message` describe the error
        /// (the error value itself stays in the worker process).
        case userError(typeName: String, message: String)
        /// A value could not be moved through shared memory (too large for it, or
        /// another encoding problem); `reason` says which.
        case encodingFailed(reason: String)
        /// Not possible with the pool's start method (a closure on spawned workers, a task
        /// timeout on threads); `reason` says what.
        case unsupported(reason: String)
        /// Spawned workers kept failing to start: the program does not serve
        /// (``ProcessPool/serveIfSpawned(_:)`` must come first in its `main`) or could not
        /// be run. The pool is broken.
        case spawnFailed
        /// An MPI rank of the pool died or stopped answering (a pool over MPI): its tasks
        /// did not finish. ``ProcessPoolError/rank`` and ``ProcessPoolError/host`` name it;
        /// `reason` says what was seen.
        case rankLost(reason: String)
        /// Any other failure of the C core: its code and `cpool_strerror` text.
        case core(code: Int32, message: String)
    }

    /// What went wrong.
    public var code: Code
    /// Index of the failing task in the call's input (`nil` when the call failed as a whole).
    public var taskIndex: Int?
    /// In a pool over MPI: the rank where the task ran (or that was lost), else `nil`.
    public var rank: Int?
    /// In a pool over MPI: the host of that rank, as MPI names it, else `nil`.
    public var host: String?

    /// An error with `code`, for the task at `taskIndex` of the call's input, if any.
    public init(_ code: Code, taskIndex: Int? = nil) {
        self.code = code
        self.taskIndex = taskIndex
    }

    /// A one-line description naming the signal, status or error, the task, and the rank
    /// and host.
    public var description: String {
        var at = taskIndex.map { " (task \($0))" } ?? ""
        if let rank { at += " on rank \(rank)" + (host.map { " (\($0))" } ?? "") }
        switch code {
        case let .crashed(signal?, _): return "worker crashed with signal \(signal)\(at)"
        case let .crashed(_, status?): return "worker exited with status \(status)\(at)"
        case .crashed: return "worker crashed\(at)"
        case .timedOut: return "task timed out\(at); its worker was killed"
        case .cancelled: return "task cancelled\(at)"
        case .closed: return "the pool is closed"
        case .workerInitFailed: return "the worker init hook kept failing; the pool is broken"
        case let .userError(type, message): return "\(type): \(message)\(at)"
        case let .encodingFailed(reason): return "encoding failed: \(reason)\(at)"
        case let .unsupported(reason): return "not possible with this start method: \(reason)\(at)"
        case .spawnFailed:
            return "spawned workers kept failing to start: the program must call ProcessPool.serveIfSpawned() first in main"
        case let .rankLost(reason): return "lost a rank of the MPI job: \(reason)\(at)"
        case let .core(code, message): return "\(message) [\(code)]\(at)"
        }
    }

    /// Translates a C core status (see `cpool_status_t`) into the Swift error.
    static func fromCore(_ rc: Int32, detail: Int32 = 0, taskIndex: Int? = nil) -> ProcessPoolError {
        switch rc {
        case Int32(CPOOL_E_CRASHED):
            // A negative detail: the host program took the exit status first (unknown).
            if detail < 0 { return .init(.crashed(signal: nil, exitStatus: nil), taskIndex: taskIndex) }
            return detail >= 1000
                ? .init(.crashed(signal: nil, exitStatus: detail - 1000), taskIndex: taskIndex)
                : .init(.crashed(signal: detail, exitStatus: nil), taskIndex: taskIndex)
        case Int32(CPOOL_E_TASK_TIMEOUT): return .init(.timedOut, taskIndex: taskIndex)
        case Int32(CPOOL_E_CANCELLED): return .init(.cancelled, taskIndex: taskIndex)
        case Int32(CPOOL_E_CLOSED): return .init(.closed, taskIndex: taskIndex)
        case Int32(CPOOL_E_WORKER_INIT): return .init(.workerInitFailed, taskIndex: taskIndex)
        case Int32(CPOOL_E_SPAWN): return .init(.spawnFailed, taskIndex: taskIndex)
        case Int32(CPOOL_E_START_METHOD):
            return .init(.unsupported(reason: "a running task on a worker thread cannot be stopped"), taskIndex: taskIndex)
        case Int32(CPOOL_E_TOO_LARGE):
            return .init(.encodingFailed(reason: "larger than the pool's shared memory"), taskIndex: taskIndex)
        default:
            return .init(.core(code: rc, message: String(cString: cpool_strerror(rc))), taskIndex: taskIndex)
        }
    }
}
