import SwiftPool

/// How a pool over the ranks of an MPI job runs (``MPIPool``).
public struct MPIPoolConfiguration: Sendable {
    /// The pool each rank runs over its own cores: worker count, start method, task
    /// timeout, lifespan. Keep-alive is always on: the workers serve chunk after chunk.
    public var local: ProcessPoolConfiguration
    /// A rank from which nothing (no result, no heartbeat) arrived for this long is lost:
    /// its unfinished tasks fail with ``ProcessPoolError/Code/rankLost(reason:)`` (or run
    /// elsewhere, see `onLostRank`). Serving ranks leave when the driver is silent as long.
    public var rankTimeout: Duration
    /// How often each rank tells the others it is alive.
    public var heartbeatInterval: Duration
    /// How long rank 0 waits for every rank to report at start-up.
    public var startTimeout: Duration
    /// Chunks sent to one rank and not yet answered, at most: one runs, the others wait
    /// there so that the rank's workers never wait for the network.
    public var chunksInFlight: Int
    /// What happens to the unfinished chunks of a lost rank.
    public var onLostRank: LostRankPolicy
    /// Whether rank 0 runs tasks on its own workers too, beside driving.
    public var driverRunsTasks: Bool
    /// Bytes of inputs one chunk carries at most (at least one task).
    public var maxChunkBytes: Int

    public init(local: ProcessPoolConfiguration = .init(keepAlive: true), rankTimeout: Duration = .seconds(10),
                heartbeatInterval: Duration = .milliseconds(250), startTimeout: Duration = .seconds(60),
                chunksInFlight: Int = 2, onLostRank: LostRankPolicy = .fail, driverRunsTasks: Bool = true,
                maxChunkBytes: Int = 16 << 20) {
        self.local = local
        self.rankTimeout = rankTimeout
        self.heartbeatInterval = heartbeatInterval
        self.startTimeout = startTimeout
        self.chunksInFlight = chunksInFlight
        self.onLostRank = onLostRank
        self.driverRunsTasks = driverRunsTasks
        self.maxChunkBytes = maxChunkBytes
    }
}

/// What happens to the tasks of a rank that was lost.
public enum LostRankPolicy: Sendable {
    /// They fail with ``ProcessPoolError/Code/rankLost(reason:)``, naming the rank and
    /// host; every other task's result stays.
    case fail
    /// They run again on the ranks that are left (a task may then have run twice).
    case rerun
}

/// One rank of the job, as rank 0 sees it.
public struct MPIRank: Sendable, Equatable {
    public let rank: Int
    /// The host MPI names for it.
    public let host: String
    /// Workers of its own pool that run tasks (0 for rank 0 when it only drives).
    public let workerCount: Int
}

/// Why the pool over an MPI job could not start.
public struct MPIPoolError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// MPI itself failed: `MPI_Init_thread` or a message at start-up.
        case mpi
        /// The ranks did not define the same functions with the same types.
        case definitionsDiffer
        /// A rank did not report within ``MPIPoolConfiguration/startTimeout``.
        case startTimedOut
        /// ``MPIPool/start(_:configuration:)`` was called twice in one process.
        case alreadyStarted
    }
    public let code: Code
    /// What happened, naming the ranks and functions concerned.
    public let message: String

    public var description: String { message }
}
