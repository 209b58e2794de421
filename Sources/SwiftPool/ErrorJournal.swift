#if canImport(Glibc)
import Glibc
#endif

/// Where worker processes write down the errors their closures throw, so that the
/// parent can report the type name and message: a shared mapping made before any
/// worker is forked. Each worker slot owns one ring of entries and is its only writer;
/// it bumps its count after the entry is complete, so a worker dying mid-write leaves
/// no half entry behind. The parent reads only entries written since a call started,
/// and matches them to tasks by the shared-memory address of the task's input.
@usableFromInline
final class ErrorJournal: @unchecked Sendable {
    static let entriesPerWorker = 32
    static let entryBytes = 512
    static let headerBytes = 64 // the count, on its own cache line
    private static let textBytes = entryBytes - 16

    let base: UnsafeMutableRawPointer
    let workers: Int
    let bytes: Int

    init(workers: Int) {
        self.workers = workers
        bytes = workers * (Self.headerBytes + Self.entriesPerWorker * Self.entryBytes)
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        precondition(p != MAP_FAILED, "mmap of \(bytes) bytes for the error journal failed")
        base = p!
    }

    deinit { munmap(base, bytes) }

    private func slot(_ worker: Int) -> UnsafeMutableRawPointer {
        base + worker * (Self.headerBytes + Self.entriesPerWorker * Self.entryBytes)
    }

    private func count(_ worker: Int) -> UnsafeMutablePointer<UInt64> {
        slot(worker).assumingMemoryBound(to: UInt64.self)
    }

    /// The counts now, to be passed to `find` after the call.
    func snapshot() -> [UInt64] { (0..<workers).map { count($0).pointee } }

    /// Worker side: records an error thrown for the task whose input is at `input`.
    func record(worker: Int, input: UnsafeRawPointer, typeName: String, message: String) {
        guard worker >= 0 && worker < workers else { return }
        let n = count(worker).pointee
        let entry = slot(worker) + Self.headerBytes + Int(n % UInt64(Self.entriesPerWorker)) * Self.entryBytes
        entry.storeBytes(of: UInt64(UInt(bitPattern: input)), as: UInt64.self)
        let type = Array(typeName.utf8.prefix(120))
        let msg = Array(message.utf8.prefix(Self.textBytes - type.count))
        entry.storeBytes(of: UInt32(type.count), toByteOffset: 8, as: UInt32.self)
        entry.storeBytes(of: UInt32(msg.count), toByteOffset: 12, as: UInt32.self)
        type.withUnsafeBytes { (entry + 16).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        msg.withUnsafeBytes { (entry + 16 + type.count).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        // The count moves only after the entry is whole. No fence is needed: the parent
        // reads the journal only after acquiring the task's completion, which this
        // worker publishes with release ordering after this function returns.
        count(worker).pointee = n + 1
    }

    /// Parent side: the error recorded since `since` for the input at `input`, if any.
    func find(input: UnsafeRawPointer, since: [UInt64]) -> (typeName: String, message: String)? {
        let key = UInt64(UInt(bitPattern: input))
        for w in 0..<workers {
            let now = count(w).pointee
            let first = max(since[w], now >= UInt64(Self.entriesPerWorker) ? now - UInt64(Self.entriesPerWorker) : 0)
            var i = first
            while i < now {
                let entry = slot(w) + Self.headerBytes + Int(i % UInt64(Self.entriesPerWorker)) * Self.entryBytes
                if entry.load(as: UInt64.self) == key {
                    let tl = Int(entry.load(fromByteOffset: 8, as: UInt32.self))
                    let ml = Int(entry.load(fromByteOffset: 12, as: UInt32.self))
                    guard tl + ml <= Self.textBytes else { return nil } // scribbled over
                    let t = String(decoding: UnsafeRawBufferPointer(start: entry + 16, count: tl), as: UTF8.self)
                    let m = String(decoding: UnsafeRawBufferPointer(start: entry + 16 + tl, count: ml), as: UTF8.self)
                    return (t, m)
                }
                i += 1
            }
        }
        return nil
    }
}

