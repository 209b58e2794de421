@_spi(Wire) import SwiftPool
import Foundation

/// Rank 0's view of the job: which rank runs which chunk, which ranks are alive, and the
/// calls whose input is not all handed out. Shared by the communication thread, the
/// thread that runs rank 0's own chunks, and the callers; guarded by `condition`.
final class Scheduler: @unchecked Sendable {
    struct RankState {
        let host: String
        /// Workers that run tasks (0: the rank only drives).
        let workers: Int
        var inFlight: [UInt64: Chunk] = [:]
        var lastHeard = ContinuousClock.now
        /// Why the rank was lost, once it was.
        var lost: String?
    }

    let configuration: MPIPoolConfiguration
    private let condition = NSCondition()
    private(set) var ranks: [RankState]
    private var calls: [any ScheduledCall] = []
    /// Chunks of lost ranks waiting to run elsewhere (`LostRankPolicy.rerun`).
    private var rerun: [Chunk] = []
    private var nextID: UInt64 = 1
    private var closed = false
    /// Wakes the communication thread when there is something to send.
    let kick: () -> Void

    init(ranks: [RankState], configuration: MPIPoolConfiguration, kick: @escaping () -> Void) {
        self.ranks = ranks
        self.configuration = configuration
        self.kick = kick
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    /// Adds a call whose chunks go out from now on. Throws `.closed` after `close()`.
    func add(_ call: any ScheduledCall) throws {
        try locked {
            guard !closed else { throw ProcessPoolError(.closed) }
            calls.append(call)
            condition.broadcast()
        }
        kick()
    }

    /// Later calls are refused; calls under way go on.
    func close() { locked { closed = true; condition.broadcast() } }

    /// Whether no chunk is out or waiting to go out.
    var isIdle: Bool {
        locked { rerun.isEmpty && calls.allSatisfy { !$0.wantsToSend } && ranks.allSatisfy { $0.inFlight.isEmpty } }
    }

    var liveRemoteRanks: [Int] { locked { ranks.indices.filter { $0 != 0 && ranks[$0].lost == nil } } }
    var lostRanks: [Int] { locked { ranks.indices.filter { ranks[$0].lost != nil } } }
    func host(of rank: Int) -> String { locked { ranks[rank].host } }

    /// The next chunk for `rank`, when it has room for one and a call has tasks left.
    func nextChunk(for rank: Int) -> Chunk? {
        locked { nextChunkLocked(for: rank) }
    }

    private func nextChunkLocked(for rank: Int) -> Chunk? {
        let state = ranks[rank]
        guard state.lost == nil, state.workers > 0, state.inFlight.count < max(1, configuration.chunksInFlight)
        else { return nil }
        var chunk: Chunk?
        if !rerun.isEmpty {
            chunk = rerun.removeFirst().renumbered(nextID)
        } else {
            let totalWorkers = ranks.reduce(0) { $0 + ($1.lost == nil ? $1.workers : 0) }
            calls.removeAll { $0.inputEnded }
            for call in calls where call.wantsToSend {
                let m = WireBuffer(capacity: 4096)
                m.append(nextID)
                let name = Array(call.functionName.utf8)
                m.append(UInt16(name.count))
                name.withUnsafeBytes { m.append($0) }
                let bodyOffset = m.count
                if let (first, count) = call.take(workers: state.workers, totalWorkers: totalWorkers,
                                                  maxBytes: configuration.maxChunkBytes, into: m) {
                    chunk = Chunk(id: nextID, call: call, first: first, count: count, message: m, bodyOffset: bodyOffset)
                    break
                }
            }
        }
        guard let chunk else { return nil }
        nextID += 1
        ranks[rank].inFlight[chunk.id] = chunk
        return chunk
    }

    /// Rank 0's own chunks: waits for one (nil once `stop` says so).
    func waitForLocalChunk(stop: () -> Bool) -> Chunk? {
        locked {
            while true {
                if stop() { return nil }
                if let c = nextChunkLocked(for: 0) { return c }
                _ = condition.wait(until: Date(timeIntervalSinceNow: 0.05))
            }
        }
    }

    /// Wakes the local runner (a call was read from, a rank was lost).
    func poke() { locked { condition.broadcast() } }

    /// A message from `rank` arrived: it is alive.
    func heard(from rank: Int) {
        locked { if rank < ranks.count { ranks[rank].lastHeard = .now } }
    }

    /// The reply to chunk `id` from `rank`: hands it to its call. A reply from a rank
    /// already lost, or for a chunk that ran elsewhere meanwhile, is dropped.
    func replied(_ id: UInt64, from rank: Int, reply: UnsafeRawBufferPointer) {
        let chunk: Chunk? = locked {
            guard ranks[rank].lost == nil else { return nil }
            let c = ranks[rank].inFlight.removeValue(forKey: id)
            condition.broadcast()
            return c
        }
        guard let chunk else { return }
        chunk.call.ended(chunk, reply: reply, rank: rank, host: ranks[rank].host)
        kick()
    }

    /// Ranks silent for longer than the configuration allows.
    func silentRanks(now: ContinuousClock.Instant) -> [Int] {
        locked {
            ranks.indices.filter { r in
                r != 0 && ranks[r].lost == nil && now - ranks[r].lastHeard > configuration.rankTimeout
            }
        }
    }

    /// Declares `rank` lost for `reason`: its chunks fail with `.rankLost`, or run again
    /// on the ranks left when the policy says so and some rank can run them.
    func lose(_ rank: Int, reason: String) {
        let (failed, host): ([Chunk], String) = locked {
            guard ranks[rank].lost == nil else { return ([], ranks[rank].host) }
            ranks[rank].lost = reason
            let chunks = ranks[rank].inFlight.values.sorted { $0.first < $1.first }
            ranks[rank].inFlight = [:]
            let canRerun = ranks.contains { $0.lost == nil && $0.workers > 0 }
            if configuration.onLostRank == .rerun && canRerun {
                rerun += chunks
                condition.broadcast()
                return ([], ranks[rank].host)
            }
            // Nothing can run the chunks waiting to run again either.
            let stranded = canRerun ? [] : rerun
            if !canRerun { rerun = [] }
            condition.broadcast()
            return (chunks + stranded, ranks[rank].host)
        }
        var error = ProcessPoolError(.rankLost(reason: reason))
        error.rank = rank
        error.host = host
        for c in failed { c.call.failed(c, error) }
        kick()
    }
}
