@_spi(Wire) import SwiftPool
import Foundation

/// Rank 0's two threads: the communication thread (the only one that calls MPI) sends
/// chunks, receives replies and heartbeats and declares silent ranks lost; the local
/// runner runs rank 0's own share of the chunks on its pool.
final class Driver: @unchecked Sendable {
    let transport: Transport
    let scheduler: Scheduler
    let local: ProcessPool
    private let backoff: Backoff
    private let configuration: MPIPoolConfiguration
    private let state = NSCondition()
    private var stopping = false
    private var threadsLeft = 0

    init(transport: Transport, ranks: [Scheduler.RankState], local: ProcessPool, configuration: MPIPoolConfiguration) {
        self.transport = transport
        self.local = local
        self.configuration = configuration
        let backoff = Backoff(maxPause: .microseconds(500))
        self.backoff = backoff
        scheduler = Scheduler(ranks: ranks, configuration: configuration, kick: { backoff.kick() })
    }

    func start() {
        threadsLeft = 2
        Thread.detachNewThread { [self] in communicate(); threadEnded() }
        Thread.detachNewThread { [self] in runLocalChunks(); threadEnded() }
    }

    private func threadEnded() {
        state.lock()
        threadsLeft -= 1
        state.broadcast()
        state.unlock()
    }

    private var isStopping: Bool {
        state.lock()
        defer { state.unlock() }
        return stopping
    }

    /// Tells the serving ranks to leave once their sends are done, and ends both threads.
    /// Waits at most `rankTimeout` for the ranks' last messages to go out.
    func stop() {
        state.lock()
        stopping = true
        state.unlock()
        backoff.kick()
        scheduler.poke()
        state.lock()
        while threadsLeft > 0 { state.wait() }
        state.unlock()
    }

    // MARK: communication thread

    private func communicate() {
        var lastBeat = ContinuousClock.now
        while !isStopping {
            var busy = false
            do {
                while let m = try transport.poll() {
                    busy = true
                    receive(m)
                }
                try transport.progressSends()
                for r in scheduler.liveRemoteRanks {
                    while let chunk = scheduler.nextChunk(for: r) {
                        try send(chunk.message, to: r, tag: .chunk)
                        busy = true
                    }
                }
            } catch let e as MPIError {
                // A failure towards one rank loses that rank; one without a rank (a probe)
                // is tried again on the next turn, and silent ranks are still timed out.
                if let r = e.rank, r != 0 { lose(r, "MPI failed: \(e.text)") }
            } catch {}
            let now = ContinuousClock.now
            if now - lastBeat >= configuration.heartbeatInterval {
                lastBeat = now
                for r in scheduler.liveRemoteRanks { try? send(WireBuffer(capacity: 16), to: r, tag: .heartbeat) }
            }
            for r in scheduler.silentRanks(now: now) {
                lose(r, "no message from rank \(r) for \(configuration.rankTimeout) (heartbeats every \(configuration.heartbeatInterval))")
            }
            if busy { backoff.reset() } else { backoff.pause() }
        }
        // Stop: every live serving rank finishes what it has and leaves.
        for r in scheduler.liveRemoteRanks { try? send(WireBuffer(capacity: 16), to: r, tag: .stop) }
        let deadline = ContinuousClock.now + configuration.rankTimeout
        while !transport.sendsDone && ContinuousClock.now < deadline {
            try? transport.progressSends()
            usleep(200)
        }
    }

    private func send(_ buffer: WireBuffer, to rank: Int, tag: Tag) throws {
        do { try transport.send(buffer, to: rank, tag: tag) } catch var e as MPIError {
            e.rank = rank
            throw e
        }
    }

    private func receive(_ m: Message) {
        scheduler.heard(from: m.source)
        guard m.tag == .reply, m.bytes.count >= 8 else { return }
        m.bytes.withUnsafeBytes { b in
            let id = b.loadUnaligned(as: UInt64.self)
            scheduler.replied(id, from: m.source, reply: UnsafeRawBufferPointer(rebasing: b[8...]))
        }
    }

    private func lose(_ rank: Int, _ reason: String) {
        transport.abandonSends(to: rank)
        scheduler.lose(rank, reason: reason)
    }

    // MARK: local runner

    private func runLocalChunks() {
        guard scheduler.ranks[0].workers > 0 else { return }
        while let chunk = scheduler.waitForLocalChunk(stop: { isStopping }) {
            let reply = WireBuffer(capacity: 1 << 16)
            local._serveWireChunk(function: chunk.call.functionName, chunk.body, to: reply)
            scheduler.replied(chunk.id, from: 0, reply: reply.bytes)
        }
    }
}
