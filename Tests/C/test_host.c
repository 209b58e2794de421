/* The pool in host programs that take their children's exit statuses themselves: one
 * that ignores SIGCHLD (the kernel reaps every child at once, common in daemons) and
 * one whose SIGCHLD handler calls waitpid(-1) (as some runtimes do). Deaths must still
 * be settled, maps must return, and close/join, stop_workers and destroy must not hang.
 * Each host runs in a child process of its own (the signal disposition is
 * process-wide), under an alarm; the child reports through its exit status. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "check.h"
#include "testfns.h"

enum { HOST_IGNORES_SIGCHLD, HOST_REAPS_EVERY_CHILD };

static void reap_everything(int sig) {
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    errno = saved;
}

static void become_host(int kind) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = kind == HOST_IGNORES_SIGCHLD ? SIG_IGN : reap_everything;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
}

/* Runs in the host child; returns the number of failed checks. */
static int exercise_pool(void) {
    cpool_pool_t *p = make_pool(2);
    cpool_fn_t crash = cpool_register(p, "crash_at", "int64_t(int64_t)", (cpool_any_fn_t)t_crash_at, 0);
    cpool_fn_t sleeper = cpool_register(p, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
    enum { N = 1000 };
    static int64_t in[N], out[N];
    static cpool_status_t st[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) in[i] = i == 500 ? 500 : i + 1000;
        CHECK_RC(cpool_map(p, crash, in, 8, out, 8, N, 0, st), CPOOL_E_TASK_FAILED);
        CHECK_EQ(st[500].code, CPOOL_E_CRASHED);
        /* the status is the signal when the pool collected it first, else unknown */
        CHECK(st[500].detail == SIGSEGV || st[500].detail == CPOOL_DETAIL_UNKNOWN);
        int right = 0;
        for (int i = 0; i < N; i++) right += i != 500 && st[i].code == 0 && out[i] == in[i] * in[i];
        CHECK_EQ(right, N - 1);
    }
    CHECK_EQ(STAT_SUM(p, crashes), 3);
    /* a timeout kills a worker: settled as a timeout, not as an unknown crash */
    int64_t ms = 10000, r = 0;
    CHECK_RC(cpool_apply(p, sleeper, &ms, 8, &r, 8, 100 * 1000000ull, NULL), CPOOL_E_TASK_TIMEOUT);
    /* graceful stops: every worker leaves and is noticed */
    CHECK_RC(cpool_stop_workers(p, 0), 0);
    CHECK_RC(cpool_start_workers(p), 0);
    ms = 2;
    CHECK_RC(cpool_apply(p, sleeper, &ms, 8, &r, 8, 0, NULL), 0);
    CHECK_EQ(r, 2);
    CHECK_RC(cpool_close(p), 0);
    CHECK_RC(cpool_join(p, 0), 0);
    cpool_destroy(p);
    /* destroy of a busy open pool */
    cpool_pool_t *q = make_pool(2);
    cpool_fn_t s2 = cpool_register(q, "sleep_ms", "int64_t(int64_t)", (cpool_any_fn_t)t_sleep_ms, 0);
    cpool_job_t *job;
    ms = 10000;
    CHECK_RC(cpool_submit(q, s2, &ms, 8, &r, 8, 0, &job), 0);
    cpool_destroy(q);
    return check_failures;
}

static void run_as_host(int kind) {
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60); /* a hang fails the test (SIGALRM) */
        become_host(kind);
        _exit(exercise_pool() ? 1 : 0);
    }
    CHECK(pid > 0);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) fprintf(stderr, "host child killed by signal %d\n", WTERMSIG(status));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void shouldSettleDeathsWhenTheHostIgnoresSigchld(void) { run_as_host(HOST_IGNORES_SIGCHLD); }
static void shouldSettleDeathsWhenTheHostReapsEveryChild(void) { run_as_host(HOST_REAPS_EVERY_CHILD); }

int main(void) {
    watchdog(150);
    RUN(shouldSettleDeathsWhenTheHostIgnoresSigchld);
    RUN(shouldSettleDeathsWhenTheHostReapsEveryChild);
    return finish();
}
