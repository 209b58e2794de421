internal import CPoolMPI
@_spi(Wire) import SwiftPool
import Foundation

/// What a message is, as its MPI tag.
enum Tag: Int32 {
    /// A serving rank to rank 0 at start-up: its host, workers and definitions.
    case hello = 1
    /// Rank 0 to a serving rank: start serving, or leave (with the reason).
    case welcome = 2
    /// Rank 0 to a serving rank: u64 chunk id, u16 name length, the function's name, a
    /// chunk in the wire form (`WireChunks.swift` of SwiftPool).
    case chunk = 3
    /// A serving rank to rank 0: u64 chunk id, the reply in the wire form.
    case reply = 4
    /// Either way, empty: the sender is alive.
    case heartbeat = 5
    /// Rank 0 to a serving rank: finish and leave.
    case stop = 6
}

struct Message {
    let source: Int
    let tag: Tag
    let bytes: [UInt8]
}

/// The MPI side of one rank. Every method but `start` is called from one thread at a
/// time (the rank's communication thread).
final class Transport: @unchecked Sendable {
    let rank: Int
    let size: Int
    let host: String
    /// Sends in flight and the buffers they read from, which live until the send is done.
    private var sends: [(send: OpaquePointer, buffer: WireBuffer, dest: Int)] = []
    /// Sends to ranks that were lost: they may never finish, so their buffers are kept.
    private var abandoned: [(send: OpaquePointer, buffer: WireBuffer)] = []

    private init(rank: Int, size: Int, host: String) {
        self.rank = rank
        self.size = size
        self.host = host
    }

    /// Starts MPI in this process.
    static func start() throws -> Transport {
        var rank: Int32 = 0, size: Int32 = 0
        var host = [CChar](repeating: 0, count: 256)
        let rc = cpool_mpi_init(&rank, &size, &host, host.count)
        guard rc == 0 else { throw MPIPoolError(code: .mpi, message: "MPI could not start: \(errorText(rc))") }
        return Transport(rank: Int(rank), size: Int(size), host: cString(host))
    }

    static func errorText(_ rc: Int32) -> String {
        var text = [CChar](repeating: 0, count: 512)
        cpool_mpi_error_text(rc, &text, text.count)
        return cString(text)
    }

    /// Starts sending `buffer` (kept alive until the send is done).
    func send(_ buffer: WireBuffer, to dest: Int, tag: Tag) throws {
        var s: OpaquePointer?
        let rc = cpool_mpi_send(Int32(dest), tag.rawValue, buffer.bytes.baseAddress, buffer.count, &s)
        guard rc == 0, let s else { throw MPIError(text: Transport.errorText(rc)) }
        sends.append((send: s, buffer: buffer, dest: dest))
    }

    /// Lets MPI move the sends in flight; drops those done. Throws the first failure
    /// with the rank it was for.
    func progressSends() throws {
        var failed: (Int, String)?
        sends.removeAll { entry in
            var done: Int32 = 0
            let rc = cpool_mpi_test(entry.send, &done)
            if rc != 0 && failed == nil { failed = (entry.dest, Transport.errorText(rc)) }
            return done != 0
        }
        if let (dest, text) = failed { throw MPIError(text: text, rank: dest) }
    }

    /// Whether every send has finished.
    var sendsDone: Bool { sends.isEmpty }

    /// Keeps the sends to `dest` (a lost rank) out of the way for good.
    func abandonSends(to dest: Int) {
        abandoned += sends.filter { $0.dest == dest }.map { (send: $0.send, buffer: $0.buffer) }
        sends.removeAll { $0.dest == dest }
    }

    /// The next message that has arrived, if any.
    func poll() throws -> Message? {
        var source: Int32 = 0, tag: Int32 = 0
        var count = 0
        let rc = cpool_mpi_poll(&source, &tag, &count)
        if rc < 0 { throw MPIError(text: Transport.errorText(-rc)) }
        if rc == 0 { return nil }
        var got: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            got = cpool_mpi_receive(source, tag, buffer.baseAddress, count)
            initialized = count
        }
        if got != 0 { throw MPIError(text: Transport.errorText(got), rank: Int(source)) }
        guard let t = Tag(rawValue: tag) else { return try poll() } // not ours: dropped
        return Message(source: Int(source), tag: t, bytes: bytes)
    }

    /// Waits up to `timeout` for a message with `tag` (start-up only, before the
    /// communication thread runs); heartbeats that come first are dropped.
    func wait(for tag: Tag, timeout: Duration) throws -> Message? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            try progressSends()
            if let m = try poll() {
                if m.tag == tag { return m }
                continue
            }
            usleep(200)
        }
        return nil
    }

    func finalize() { _ = cpool_mpi_finalize() }

    /// Ends every rank of the job (from an `atexit` handler: no thread calls MPI then).
    static func abortJob() { cpool_mpi_abort(1) }
}

/// A failed MPI call, with the rank it concerned when known.
struct MPIError: Error {
    let text: String
    var rank: Int?
}

/// Sleeps with a growing pause while nothing happens, so that an idle rank costs
/// little CPU and a busy one reacts within microseconds; `kick()` from another thread
/// (new work, a reply ready) ends the pause at once.
final class Backoff: @unchecked Sendable {
    private let condition = NSCondition()
    private var kicked = false
    private var pauseNs: UInt64 = 0
    private let maxPauseNs: UInt64

    init(maxPause: Duration) { maxPauseNs = UInt64(maxPause.components.attoseconds / 1_000_000_000) + UInt64(maxPause.components.seconds) * 1_000_000_000 }

    /// Something happened: the next pause starts short.
    func reset() { pauseNs = 0 }

    /// Pauses (longer each time since the last reset), or not at all once kicked.
    func pause() {
        pauseNs = pauseNs == 0 ? 2_000 : min(maxPauseNs, pauseNs * 2)
        condition.lock()
        if !kicked { _ = condition.wait(until: Date(timeIntervalSinceNow: Double(pauseNs) / 1e9)) }
        if kicked { pauseNs = 0 }
        kicked = false
        condition.unlock()
    }

    func kick() {
        condition.lock()
        kicked = true
        condition.signal()
        condition.unlock()
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The text of a NUL-terminated C buffer.
func cString(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
