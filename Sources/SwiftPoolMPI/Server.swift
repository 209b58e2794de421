@_spi(Wire) import SwiftPool
import Foundation

/// A serving rank (every rank but 0): its communication thread receives chunks, answers
/// them and sends heartbeats; its runner thread runs the chunks, one after the other, on
/// the rank's pool. It leaves when rank 0 says stop, or when rank 0 is silent for
/// `rankTimeout`.
final class Server: @unchecked Sendable {
    private let transport: Transport
    private let local: ProcessPool
    private let configuration: MPIPoolConfiguration
    private let backoff = Backoff(maxPause: .microseconds(500))
    private let queue = NSCondition()
    /// Guarded by `queue`.
    private var waiting: [(id: UInt64, message: [UInt8])] = []
    private var replies: [WireBuffer] = []
    private var running = false
    private var leaving = false

    init(transport: Transport, local: ProcessPool, configuration: MPIPoolConfiguration) {
        self.transport = transport
        self.local = local
        self.configuration = configuration
    }

    /// Serves until rank 0 says stop. Returns normally then; returns the reason when
    /// rank 0 was lost.
    func serve() -> String? {
        Thread.detachNewThread { [self] in runChunks() }
        var lastBeat = ContinuousClock.now
        var lastHeard = ContinuousClock.now
        var stopAsked = false
        var lostReason: String?
        while true {
            var busy = false
            do {
                while let m = try transport.poll() {
                    busy = true
                    lastHeard = .now
                    switch m.tag {
                    case .chunk where m.bytes.count >= 8:
                        let id = m.bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                        queue.lock()
                        waiting.append((id, m.bytes))
                        queue.broadcast()
                        queue.unlock()
                    case .stop: stopAsked = true
                    default: break
                    }
                }
                queue.lock()
                let out = replies
                replies = []
                let idle = waiting.isEmpty && !running
                queue.unlock()
                for r in out {
                    try transport.send(r, to: 0, tag: .reply)
                    busy = true
                }
                try transport.progressSends()
                if stopAsked && idle && out.isEmpty && transport.sendsDone { break }
            } catch let e as MPIError {
                lostReason = "MPI failed: \(e.text)"
                break
            } catch {}
            let now = ContinuousClock.now
            if now - lastBeat >= configuration.heartbeatInterval {
                lastBeat = now
                try? transport.send(WireBuffer(capacity: 16), to: 0, tag: .heartbeat)
            }
            if now - lastHeard > configuration.rankTimeout {
                lostReason = "no message from rank 0 for \(configuration.rankTimeout)"
                break
            }
            if busy { backoff.reset() } else { backoff.pause() }
        }
        queue.lock()
        leaving = true
        queue.broadcast()
        queue.unlock()
        return lostReason
    }

    private func runChunks() {
        while true {
            queue.lock()
            while waiting.isEmpty && !leaving { queue.wait() }
            if leaving {
                queue.unlock()
                return
            }
            let (id, message) = waiting.removeFirst()
            running = true
            queue.unlock()
            let reply = WireBuffer(capacity: 1 << 16)
            reply.append(id)
            message.withUnsafeBytes { b in
                let nameLength = Int(b.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
                let name = String(decoding: b[10..<10 + nameLength], as: UTF8.self)
                local._serveWireChunk(function: name, UnsafeRawBufferPointer(rebasing: b[(10 + nameLength)...]), to: reply)
            }
            queue.lock()
            replies.append(reply)
            running = false
            queue.unlock()
            backoff.kick()
        }
    }
}
