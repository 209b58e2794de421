@_spi(Wire) import SwiftPool
import Foundation

/// A chunk of one call's tasks on its way to a rank, and the message that carries it
/// (kept until the chunk has ended, so that it can run elsewhere if its rank is lost).
final class Chunk: @unchecked Sendable {
    var id: UInt64
    let call: any ScheduledCall
    /// Index in the call's input of the chunk's first task, and its task count.
    let first: Int
    let count: Int
    /// u64 id, u16 name length, name, then the chunk in the wire form from `bodyOffset`.
    var message: WireBuffer
    let bodyOffset: Int

    init(id: UInt64, call: any ScheduledCall, first: Int, count: Int, message: WireBuffer, bodyOffset: Int) {
        self.id = id
        self.call = call
        self.first = first
        self.count = count
        self.message = message
        self.bodyOffset = bodyOffset
    }

    /// The chunk in the wire form.
    var body: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: message.bytes[bodyOffset...]) }

    /// The same chunk under a new id, in a message of its own (the old one may still be
    /// read by a send that never finishes).
    func renumbered(_ newID: UInt64) -> Chunk {
        let m = WireBuffer(capacity: message.count)
        m.append(newID)
        m.append(UnsafeRawBufferPointer(rebasing: message.bytes[8...]))
        return Chunk(id: newID, call: call, first: first, count: count, message: m, bodyOffset: bodyOffset)
    }
}

/// A call as the scheduler sees it: a source of chunks and a sink for their replies.
/// `take` is called with the scheduler's lock held.
protocol ScheduledCall: AnyObject, Sendable {
    /// Whether the call has a chunk to hand out now.
    var wantsToSend: Bool { get }
    /// Whether the call will hand out nothing more (`wantsToSend` is also false while its
    /// reader is behind).
    var inputEnded: Bool { get }
    /// Appends the next chunk of tasks for a rank with `workers` workers (of
    /// `totalWorkers` in the job) to `message`; returns its first index and count, nil
    /// when there is none.
    func take(workers: Int, totalWorkers: Int, maxBytes: Int, into message: WireBuffer) -> (first: Int, count: Int)?
    /// A chunk's reply arrived from `rank` on `host`.
    func ended(_ chunk: Chunk, reply: UnsafeRawBufferPointer, rank: Int, host: String)
    /// A chunk will not end: every task of it failed with `error`.
    func failed(_ chunk: Chunk, _ error: ProcessPoolError)
    var functionName: String { get }
}

/// Where a call's tasks come from.
enum CallInput<Input>: @unchecked Sendable {
    /// All at once (map, submit).
    case array([Input])
    /// Read on the caller's thread as results are read (imap): `chunkSize` per worker of
    /// the receiving rank, at most `readAhead` read and not yet sent.
    case sequence(AnyIterator<Input>, chunkSize: Int, readAhead: Int)
}

/// One map, lazy map or submitted task across the ranks: hands out its input in chunks
/// and keeps the results of ended chunks until they are read.
final class WireCall<Input, Output>: ScheduledCall, @unchecked Sendable {
    let function: PoolFunction<Input, Output>
    let functionName: String
    /// Guards the call's state; the reader waits on it.
    private let condition = NSCondition()
    private var input: CallInput<Input>
    /// Tasks handed out so far, and whether the input has ended.
    private var taken = 0
    private var exhausted = false
    /// Chunks out and not ended.
    private var outstanding = 0
    private var ready: [Int: WireResults<Output>] = [:]
    /// First indices of ended chunks, in the order they ended.
    private var endedOrder: [Int] = []
    /// The call failed as a whole (an input that cannot be encoded).
    private var callError: (any Error)?
    /// At most this many ended chunks wait to be read before the input is read further.
    private let maxReady: Int
    /// Called once when every task has ended; set before the call is scheduled.
    var onEnd: (@Sendable () -> Void)?
    /// A sequence's inputs read and not yet sent, and whether it has ended.
    private var pending: [Input] = []
    private var sequenceEnded = false

    init(_ function: PoolFunction<Input, Output>, name: String, input: CallInput<Input>, maxReady: Int = .max) {
        self.function = function
        functionName = name
        self.input = input
        self.maxReady = maxReady
        if case let .array(a) = input, a.isEmpty { exhausted = true }
    }

    var wantsToSend: Bool {
        condition.lock()
        defer { condition.unlock() }
        if case .sequence = input, pending.isEmpty && !sequenceEnded { return false }
        return !exhausted && ready.count < maxReady
    }

    func take(workers: Int, totalWorkers: Int, maxBytes: Int, into message: WireBuffer) -> (first: Int, count: Int)? {
        condition.lock()
        var chunk: (first: Int, count: Int)?
        if !exhausted {
            do {
                switch input {
                case let .array(items):
                    // Python's rule for map: about four chunks per worker, sized here per rank.
                    let perWorker = max(1, (items.count + 4 * totalWorkers - 1) / (4 * max(1, totalWorkers)))
                    let n = try items.withUnsafeBufferPointer {
                        try function._appendWireChunk($0, from: taken, maxItems: perWorker * max(1, workers),
                                                      maxBytes: maxBytes, to: message)
                    }
                    chunk = (taken, n)
                    if taken + n == items.count { exhausted = true }
                case let .sequence(_, chunkSize, _):
                    if pending.isEmpty {
                        if sequenceEnded { exhausted = true }
                        break
                    }
                    let n = try pending.withUnsafeBufferPointer {
                        try function._appendWireChunk($0, from: 0, maxItems: chunkSize * max(1, workers),
                                                      maxBytes: maxBytes, to: message)
                    }
                    pending.removeFirst(n)
                    chunk = (taken, n)
                }
            } catch {
                var e = error
                if var p = error as? ProcessPoolError {
                    p.taskIndex = (p.taskIndex ?? 0) + (isSequence ? taken : 0)
                    e = p
                }
                callError = e
                exhausted = true
            }
        }
        if let chunk {
            taken += chunk.count
            outstanding += 1
        }
        let end = takeEndLocked()
        condition.unlock()
        if end { reportEnd() }
        return chunk
    }

    private var isSequence: Bool { if case .sequence = input { return true } else { return false } }

    func ended(_ chunk: Chunk, reply: UnsafeRawBufferPointer, rank: Int, host: String) {
        let results: WireResults<Output>
        do {
            results = try function._wireResults(reply, firstIndex: chunk.first, rank: rank, host: host)
        } catch {
            var e = ProcessPoolError(.encodingFailed(reason: "the reply of rank \(rank) could not be read: \(error)"))
            e.rank = rank
            e.host = host
            return failed(chunk, e)
        }
        store(chunk.first, results)
    }

    func failed(_ chunk: Chunk, _ error: ProcessPoolError) {
        store(chunk.first, .results((0..<chunk.count).map { i in
            var e = error
            e.taskIndex = chunk.first + i
            return .failure(e)
        }))
    }

    private func store(_ first: Int, _ results: WireResults<Output>) {
        condition.lock()
        ready[first] = results
        endedOrder.append(first)
        outstanding -= 1
        let end = takeEndLocked()
        condition.unlock()
        if end { reportEnd() }
    }

    /// Whether every task has ended (or the call failed and nothing is out).
    private var doneLocked: Bool { exhausted && outstanding == 0 }
    private var endReported = false
    /// Whether `onEnd` has returned: waiting for the call waits for its callback too.
    private var finished = false

    /// Wakes the readers; true once, when the call has just ended.
    private func takeEndLocked() -> Bool {
        condition.broadcast()
        guard doneLocked, !endReported else { return false }
        endReported = true
        return true
    }

    /// Runs the end callback, then lets `wait`, `allResults` and `allValues` return.
    private func reportEnd() {
        onEnd?()
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    // MARK: reading inputs and results (the caller's thread)

    /// Reads the sequence's next inputs, up to its read-ahead; the caller's thread reads
    /// them, as it would without a pool.
    func refill() {
        guard case let .sequence(iterator, _, readAhead) = input else { return }
        condition.lock()
        let room = readAhead - pending.count
        let ended = sequenceEnded
        condition.unlock()
        guard room > 0, !ended else { return }
        var batch: [Input] = []
        batch.reserveCapacity(room)
        while batch.count < room, let x = iterator.next() { batch.append(x) }
        condition.lock()
        pending += batch
        if batch.count < room {
            sequenceEnded = true
            if pending.isEmpty { exhausted = true }
        }
        let end = takeEndLocked()
        condition.unlock()
        if end { reportEnd() }
    }


    /// Waits until every task has ended; returns all results in input order.
    func allResults() throws -> [Result<Output, any Error>] {
        condition.lock()
        defer { condition.unlock() }
        while !finished { condition.wait() }
        return try resultsLocked()
    }

    /// The results, for the end callback (every task has ended; the callback has not
    /// returned yet, so `allResults` would wait for it).
    func resultsAtEnd() throws -> [Result<Output, any Error>] {
        condition.lock()
        defer { condition.unlock() }
        return try resultsLocked()
    }

    private func resultsLocked() throws -> [Result<Output, any Error>] {
        if let callError { throw callError }
        var out: [Result<Output, any Error>] = []
        for first in ready.keys.sorted() {
            switch ready[first]! {
            case let .values(v): out += v.lazy.map { .success($0) }
            case let .results(r): out += r
            }
        }
        return out
    }

    /// Waits until every task has ended; returns the values in input order, or throws
    /// the first failure in input order.
    func allValues() throws -> [Output] {
        condition.lock()
        defer { condition.unlock() }
        while !finished { condition.wait() }
        if let callError { throw callError }
        var out: [Output] = []
        out.reserveCapacity(taken)
        for first in ready.keys.sorted() {
            switch ready[first]! {
            case let .values(v): out += v
            case let .results(r): for x in r { out.append(try x.get()) }
            }
        }
        return out
    }

    /// The next ended chunk's results: the one starting at `first` (ordered), or the
    /// earliest ended (`first` nil); nil once all are read. `kick` lets the scheduler
    /// send more once results are taken.
    func nextResults(startingAt first: Int?, kick: () -> Void) throws -> [Result<Output, any Error>]? {
        while true {
            refill()
            kick()
            condition.lock()
            if let callError, outstanding == 0 {
                self.callError = nil
                condition.unlock()
                throw callError
            }
            let key = first ?? endedOrder.first(where: { ready[$0] != nil })
            if let key, let r = ready.removeValue(forKey: key) {
                endedOrder.removeAll { $0 == key }
                condition.unlock()
                kick()
                switch r {
                case let .values(v): return v.map { .success($0) }
                case let .results(r): return r
                }
            }
            if doneLocked && ready.isEmpty {
                condition.unlock()
                return nil
            }
            // Woken by an ended chunk, or to read more input once the scheduler has sent it.
            let wanted = pending.isEmpty && !sequenceEnded
            if !wanted { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.02)) }
            condition.unlock()
        }
    }

    /// Waits up to `timeout` (nil: for ever) for every task to end; returns whether they did.
    func wait(timeout: Duration?) -> Bool {
        let deadline = timeout.map { Date(timeIntervalSinceNow: $0.seconds) }
        condition.lock()
        defer { condition.unlock() }
        while !finished {
            if let deadline { if !condition.wait(until: deadline) { return finished } } else { condition.wait() }
        }
        return true
    }

    var isDone: Bool {
        condition.lock()
        defer { condition.unlock() }
        return finished
    }
}

extension WireCall {
    var inputEnded: Bool {
        condition.lock()
        defer { condition.unlock() }
        return exhausted
    }
}
