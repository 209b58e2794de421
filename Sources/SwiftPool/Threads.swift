#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a new detached thread. Used to wait on the C core without blocking a
/// Swift concurrency thread, and to call callbacks in the parent process.
@usableFromInline
func spawnThread(_ body: @escaping @Sendable () -> Void) {
    let ctx = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { ctx in
        Unmanaged<ThreadBody>.fromOpaque(ctx!).takeRetainedValue().body()
        return nil
    }, ctx)
    if rc != 0 {
        // No thread to be had: run it here rather than lose it.
        Unmanaged<ThreadBody>.fromOpaque(ctx).takeRetainedValue().body()
    } else {
        pthread_detach(tid)
    }
}

private final class ThreadBody {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// A mutex and condition for the pool's own bookkeeping (never shared with workers).
final class Monitor: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }

    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }

    /// Inside `withLock`: waits until `done()` is true; whoever changes what it reads
    /// does so under the lock and calls `broadcastLocked()`.
    func waitLocked(until done: () -> Bool) {
        while !done() { pthread_cond_wait(&cond, &mutex) }
    }

    /// Inside `withLock`: like `waitLocked(until:)`, for at most `timeoutNs`; returns
    /// whether `done()` became true.
    func waitLocked(until done: () -> Bool, timeoutNs: UInt64) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let total = UInt64(now.tv_nsec) + timeoutNs
        var deadline = timespec(tv_sec: now.tv_sec + Int(total / 1_000_000_000), tv_nsec: Int(total % 1_000_000_000))
        while !done() {
            if pthread_cond_timedwait(&cond, &mutex, &deadline) == ETIMEDOUT { return done() }
        }
        return true
    }

    /// Inside `withLock`: wakes every waiter.
    func broadcastLocked() { pthread_cond_broadcast(&cond) }
}
