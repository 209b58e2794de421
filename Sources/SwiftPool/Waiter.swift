internal import CPoolCore

/// The pool's one waiting thread for work nobody blocks on: submitted tasks, rounds of
/// async maps. It waits for whichever watched job ends first (`cpool_job_wait_any`,
/// which the workers wake: no polling) and runs that job's continuation. A job watched
/// while it waits interrupts the wait (`cpool_interrupt_waits`) so that it is included.
/// The thread starts with the first watched job and ends when none is left.
final class Waiter: @unchecked Sendable {
    private struct Watched {
        let job: OpaquePointer
        let session: CoreSession
        let onEnd: () -> Void
    }

    private let monitor = Monitor()
    private var watched: [Watched] = []
    private var running = false

    /// Calls `onEnd` on the waiter thread once `job` (of `session`) has ended.
    func watch(_ job: OpaquePointer, of session: CoreSession, onEnd: @escaping () -> Void) {
        let start: Bool = monitor.withLock {
            watched.append(Watched(job: job, session: session, onEnd: onEnd))
            defer { running = true }
            return !running
        }
        if start {
            spawnThread { self.serve() }
        } else {
            cpool_interrupt_waits(session.handle)
        }
    }

    private func serve() {
        while true {
            let now: [Watched] = monitor.withLock {
                if watched.isEmpty { running = false }
                return watched
            }
            if now.isEmpty { return }
            // Jobs of one C pool at a time (a pool has one; a second exists only while
            // the first drains after its function table filled up).
            let session = now[0].session
            let group = now.filter { $0.session === session }
            let jobs: [OpaquePointer?] = group.map(\.job)
            let rc = jobs.withUnsafeBufferPointer {
                cpool_job_wait_any($0.baseAddress, $0.count, group.count == now.count ? 0 : 10_000_000)
            }
            guard rc >= 0 else { continue } // interrupted (a job to add) or a slice of a mixed wait
            let ended = group[Int(rc)]
            monitor.withLock { watched.removeAll { $0.job == ended.job } }
            ended.onEnd()
        }
    }
}
