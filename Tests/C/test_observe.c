/* Watching a pool: a job's progress, the pool's events, the workers' insights, and what
 * the workers print (captured line by line, or written once to the parent's streams). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "check.h"
#include "testfns.h"

static cpool_pool_t *make_pool_with(cpool_options_t *o) {
    cpool_pool_t *p = NULL;
    int rc = cpool_create(o, &p);
    if (rc) {
        fprintf(stderr, "cpool_create: %s\n", cpool_strerror(rc));
        exit(2);
    }
    return p;
}

static void shouldReportAJobsProgressUpToItsEnd(void) {
    cpool_pool_t *p = make_pool(2);
    cpool_fn_t crash = cpool_register(p, "crash_at", "i64(i64)", (cpool_any_fn_t)t_crash_at, 0);
    cpool_fn_t nap = cpool_register(p, "sleep", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    enum { N = 60 };
    int64_t in[N], out[N];
    for (int i = 0; i < N; i++) in[i] = 3;
    cpool_job_t *job;
    CHECK_RC(cpool_map_start(p, nap, in, 8, out, 8, N, 1, NULL, &job), 0);
    uint64_t last = 0, ended = 0, failed = 1, total = 0;
    int steps = 0;
    /* Only cpool_job_progress: no other call makes the job move meanwhile. */
    const uint64_t deadline = test_now_ms() + 10000;
    while (ended < N && test_now_ms() < deadline) {
        CHECK_RC(cpool_job_progress(job, &ended, &failed, &total), 0);
        CHECK(ended >= last && ended <= N);
        CHECK_EQ(total, N);
        if (ended > last) steps++;
        last = ended;
        usleep(2000);
    }
    CHECK_EQ(cpool_job_done(job), 1);
    CHECK_RC(cpool_job_progress(job, &ended, &failed, NULL), 0);
    CHECK_EQ(ended, N);
    CHECK_EQ(failed, 0);
    CHECK(steps >= 3); /* seen moving while no thread waited, not only at the end */
    cpool_job_free(job);

    for (int i = 0; i < N; i++) in[i] = i == 7 ? 500 : i;
    CHECK_RC(cpool_map_start(p, crash, in, 8, out, 8, N, 4, NULL, &job), 0);
    CHECK_RC(cpool_job_wait(job, 0), CPOOL_E_TASK_FAILED);
    CHECK_RC(cpool_job_progress(job, &ended, &failed, &total), 0);
    CHECK_EQ(ended, N);
    CHECK_EQ(failed, 1);
    cpool_job_free(job);
    CHECK_RC(cpool_job_progress(NULL, NULL, NULL, NULL), -EINVAL);
    cpool_destroy(p);
}

/* ------------------------------------------------------------------ events */

typedef struct seen_events {
    pthread_mutex_t lock;
    cpool_event_t e[256];
    int n;
    pthread_t thread;
    int other_thread; /* an event arrived on a thread other than the first one */
} seen_events_t;

static void on_event(const cpool_event_t *e, void *ctx) {
    seen_events_t *s = ctx;
    pthread_mutex_lock(&s->lock);
    if (s->n == 0) s->thread = pthread_self();
    else if (!pthread_equal(s->thread, pthread_self())) s->other_thread = 1;
    if (s->n < 256) s->e[s->n++] = *e;
    pthread_mutex_unlock(&s->lock);
}

static int count_kind(seen_events_t *s, int kind, int detail) {
    pthread_mutex_lock(&s->lock);
    int c = 0;
    for (int i = 0; i < s->n; i++)
        if (s->e[i].kind == kind && (detail < 0 || s->e[i].detail == detail)) c++;
    pthread_mutex_unlock(&s->lock);
    return c;
}

static int wait_kind(seen_events_t *s, int kind, int detail, int want) {
    for (int i = 0; i < 400; i++) {
        if (count_kind(s, kind, detail) >= want) return 1;
        usleep(5000);
    }
    return 0;
}

static void shouldTellEveryWorkersStartAndEndAsAnEvent(void) {
    seen_events_t s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 2;
    o.max_tasks_per_worker = 10;
    o.on_event = on_event;
    o.event_ctx = &s;
    cpool_pool_t *p = make_pool_with(&o);
    cpool_fn_t crash = cpool_register(p, "crash_at", "i64(i64)", (cpool_any_fn_t)t_crash_at, 0);
    cpool_fn_t nap = cpool_register(p, "sleep", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    CHECK(wait_kind(&s, CPOOL_EVENT_WORKER_STARTED, 0, 2));

    /* 30 items, 10 per process: lifespan exits and replacements. */
    int64_t in[30], out[30];
    for (int i = 0; i < 30; i++) in[i] = i;
    CHECK_RC(cpool_map(p, crash, in, 8, out, 8, 30, 1, NULL), 0);
    CHECK(wait_kind(&s, CPOOL_EVENT_WORKER_EXITED, -1, 2));
    CHECK(wait_kind(&s, CPOOL_EVENT_WORKER_STARTED, 1, 2));

    int64_t x = 500, r;
    cpool_status_t st;
    CHECK_RC(cpool_apply(p, crash, &x, 8, &r, 8, 0, &st), CPOOL_E_CRASHED);
    CHECK(wait_kind(&s, CPOOL_EVENT_WORKER_CRASHED, SIGSEGV, 1));
    x = 5000;
    CHECK_RC(cpool_apply(p, nap, &x, 8, &r, 8, 20000000u, &st), CPOOL_E_TASK_TIMEOUT);
    CHECK(wait_kind(&s, CPOOL_EVENT_TASK_TIMED_OUT, -1, 1));
    cpool_job_t *job;
    CHECK_RC(cpool_submit(p, nap, &x, 8, &r, 8, 0, &job), 0);
    usleep(50000);
    CHECK_RC(cpool_job_cancel(job), 0);
    cpool_job_free(job);
    CHECK(wait_kind(&s, CPOOL_EVENT_TASK_CANCELLED, -1, 1));

    CHECK_RC(cpool_close(p), 0);
    CHECK_RC(cpool_join(p, 10000000000ull), 0);
    cpool_destroy(p);
    /* Every process that started has ended, each with exactly one event. */
    const int started = count_kind(&s, CPOOL_EVENT_WORKER_STARTED, -1);
    const int ended = count_kind(&s, CPOOL_EVENT_WORKER_EXITED, -1) +
                      count_kind(&s, CPOOL_EVENT_WORKER_CRASHED, -1) +
                      count_kind(&s, CPOOL_EVENT_TASK_TIMED_OUT, -1) +
                      count_kind(&s, CPOOL_EVENT_TASK_CANCELLED, -1);
    CHECK_EQ(started, ended);
    CHECK_EQ(count_kind(&s, CPOOL_EVENT_WORKER_CRASHED, -1), 1);
    CHECK(!s.other_thread);
    /* A slot's events come in order: each start follows the end of the slot's last. */
    int alive[2] = {0, 0};
    for (int i = 0; i < s.n; i++) {
        const int w = s.e[i].worker;
        CHECK(w == 0 || w == 1);
        if (w < 0 || w > 1) continue;
        if (s.e[i].kind == CPOOL_EVENT_WORKER_STARTED) CHECK_EQ(alive[w]++, 0);
        else CHECK_EQ(alive[w]--, 1);
        CHECK(s.e[i].pid > 0);
    }
}

/* A join right after a worker was killed: the replacement the supervisor is forking
 * then is waited for (it leaves at once, the pool being closed) or never forked; none
 * is left to the destroy's kill, and every start has its end event. */
static void shouldEndEveryWorkerThatStartedWhenJoinedRightAfterAKill(void) {
    for (int round = 0; round < 30; round++) {
        seen_events_t s = {.lock = PTHREAD_MUTEX_INITIALIZER};
        cpool_options_t o;
        cpool_options_init(&o);
        o.workers = 1;
        o.on_event = on_event;
        o.event_ctx = &s;
        cpool_pool_t *p = make_pool_with(&o);
        cpool_fn_t nap = cpool_register(p, "sleep", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
        int64_t x = 5000, r;
        CHECK_RC(cpool_apply(p, nap, &x, 8, &r, 8, 5000000u, NULL), CPOOL_E_TASK_TIMEOUT);
        CHECK_RC(cpool_close(p), 0);
        CHECK_RC(cpool_join(p, 10000000000ull), 0);
        cpool_destroy(p);
        const int started = count_kind(&s, CPOOL_EVENT_WORKER_STARTED, -1);
        const int ended = count_kind(&s, CPOOL_EVENT_WORKER_EXITED, -1) +
                          count_kind(&s, CPOOL_EVENT_TASK_TIMED_OUT, -1) +
                          count_kind(&s, CPOOL_EVENT_KILLED, -1);
        CHECK_EQ(count_kind(&s, CPOOL_EVENT_KILLED, -1), 0);
        CHECK_EQ(started, ended);
        if (started != ended) break;
    }
}

static int failing_init(uint32_t w, void *ctx) {
    (void)w;
    (void)ctx;
    return 1;
}

static void shouldTellAnInitThatFailsAndThePoolItBreaks(void) {
    seen_events_t s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 1;
    o.worker_init = failing_init;
    o.on_event = on_event;
    o.event_ctx = &s;
    cpool_pool_t *p = NULL;
    int rc = cpool_create(&o, &p);
    CHECK(rc == 0 || rc == CPOOL_E_WORKER_INIT);
    CHECK(wait_kind(&s, CPOOL_EVENT_POOL_BROKEN, CPOOL_E_WORKER_INIT, 1));
    CHECK(count_kind(&s, CPOOL_EVENT_INIT_FAILED, -1) >= 3);
    cpool_destroy(p);
}

/* ------------------------------------------------------------------ insights */

static int slow_init(uint32_t w, void *ctx) {
    (void)w;
    (void)ctx;
    usleep(20000);
    return 0;
}

static void shouldTellWhereEachWorkersTimeWent(void) {
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 1;
    o.flags = CPOOL_OPTION_INSIGHTS;
    o.worker_init = slow_init;
    cpool_pool_t *p = make_pool_with(&o);
    cpool_fn_t nap = cpool_register(p, "sleep", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    enum { N = 40 };
    int64_t in[N], out[N];
    for (int i = 0; i < N; i++) in[i] = 1;
    in[13] = 40;
    in[27] = 25;
    int64_t first = 0, r;
    CHECK_RC(cpool_apply(p, nap, &first, 8, &r, 8, 0, NULL), 0); /* the worker is up */
    usleep(30000); /* idle: waiting time */
    CHECK_RC(cpool_map(p, nap, in, 8, out, 8, N, 0, NULL), 0);
    cpool_worker_insights_t in0;
    CHECK_RC(cpool_worker_insights(p, 0, &in0), 0);
    CHECK_EQ(in0.processes, 1);
    CHECK_EQ(in0.tasks_done, N + 1);
    CHECK(in0.init_ns >= 20000000u);
    CHECK(in0.startup_ns >= in0.init_ns);
    CHECK(in0.working_ns >= 103000000u); /* 38 + 40 + 25 ms of sleeping */
    CHECK(in0.waiting_ns >= 10000000u);
    CHECK_EQ(in0.slowest_count, CPOOL_SLOWEST_ITEMS);
    CHECK_EQ(in0.slowest[0].item, 13);
    CHECK(in0.slowest[0].duration_ns >= 40000000u);
    CHECK_EQ(in0.slowest[1].item, 27);
    CHECK_EQ(in0.slowest[0].fn, nap);
    for (uint32_t i = 1; i < in0.slowest_count; i++)
        CHECK(in0.slowest[i].duration_ns <= in0.slowest[i - 1].duration_ns);
    CHECK_RC(cpool_worker_insights(p, 1, &in0), -ERANGE);
    CHECK_RC(cpool_worker_insights(p, 0, NULL), -EINVAL);
    cpool_destroy(p);

    /* Off by default: counts only. */
    p = make_pool(1);
    nap = cpool_register(p, "sleep", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    CHECK_RC(cpool_map(p, nap, in, 8, out, 8, 4, 0, NULL), 0);
    CHECK_RC(cpool_worker_insights(p, 0, &in0), 0);
    CHECK_EQ(in0.processes, 1);
    CHECK_EQ(in0.tasks_done, 4);
    CHECK_EQ(in0.working_ns, 0);
    CHECK_EQ(in0.slowest_count, 0);
    cpool_destroy(p);
}

/* ------------------------------------------------------------------ output */

typedef struct seen_lines {
    pthread_mutex_t lock;
    char *text[2];   /* per stream: every line, each followed by '\n' */
    size_t len[2];
    int pieces_of_long; /* lines made of 'x' only */
    size_t long_bytes;
} seen_lines_t;

static void on_output(uint32_t worker, int stream, const char *line, size_t n, void *ctx) {
    (void)worker;
    seen_lines_t *s = ctx;
    pthread_mutex_lock(&s->lock);
    if (n > 1000 && line[0] == 'x') {
        s->pieces_of_long++;
        s->long_bytes += n;
    } else {
        const int k = stream == 2;
        s->text[k] = realloc(s->text[k], s->len[k] + n + 2);
        memcpy(s->text[k] + s->len[k], line, n);
        s->len[k] += n;
        s->text[k][s->len[k]++] = '\n';
        s->text[k][s->len[k]] = '\0';
    }
    pthread_mutex_unlock(&s->lock);
}

static int occurrences(const char *text, const char *line) {
    int c = 0;
    size_t n = strlen(line);
    for (const char *at = text; at && (at = strstr(at, line)) != NULL; at += n)
        if ((at == text || at[-1] == '\n') && at[n] == '\n') c++;
    return c;
}

static void shouldHandOnEveryLineAWorkerPrintsOnceWhenCaptured(void) {
    seen_lines_t s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    cpool_options_t o;
    cpool_options_init(&o);
    o.workers = 2;
    o.flags = CPOOL_OPTION_CAPTURE_OUTPUT;
    o.on_output = on_output;
    o.output_ctx = &s;
    cpool_pool_t *p = make_pool_with(&o);
    cpool_fn_t pr = cpool_register(p, "print", "i64(i64)", (cpool_any_fn_t)t_print_lines, 0);
    enum { N = 200 };
    int64_t in[N + 1], out[N + 1];
    for (int i = 0; i < N; i++) in[i] = i;
    in[N] = -1;
    CHECK_RC(cpool_map(p, pr, in, 8, out, 8, N + 1, 0, NULL), 0);
    /* Last, a line without its newline (printed before another, it would begin it). */
    int64_t tail = -2, r;
    CHECK_RC(cpool_apply(p, pr, &tail, 8, &r, 8, 0, NULL), 0);
    /* The last partial line comes when the worker leaves (gracefully: a destroy of an
     * open pool kills its workers). */
    CHECK_RC(cpool_close(p), 0);
    CHECK_RC(cpool_join(p, 10000000000ull), 0);
    cpool_destroy(p);
    for (int i = 0; i < N; i++) {
        char line[32];
        snprintf(line, sizeof line, "out %d", i);
        CHECK_EQ(occurrences(s.text[0], line), 1);
        snprintf(line, sizeof line, "err %d", i);
        CHECK_EQ(occurrences(s.text[1], line), 1);
    }
    CHECK_EQ(occurrences(s.text[0], "tail"), 1);
    CHECK_EQ(s.long_bytes, 100000);
    CHECK_EQ(s.pieces_of_long, 2); /* 64 KiB, then the rest */
    free(s.text[0]);
    free(s.text[1]);

    o.on_output = NULL;
    CHECK_RC(cpool_create(&o, &p), -EINVAL);
    o.flags = 1u << 7;
    CHECK_RC(cpool_create(&o, &p), -EINVAL);
}

/* Without capture, workers write to the parent's own stdout: here a pipe, so fully
 * buffered in the parent. Every worker line arrives once, and what the parent had
 * buffered before the fork once (not again from each worker's first flush). */
static void shouldWriteWorkersLinesOnceToTheParentsPipe(void) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        dup2(fds[1], STDOUT_FILENO);
        freopen("/dev/null", "w", stderr);
        close(fds[0]);
        close(fds[1]);
        static char buf[1 << 16];
        setvbuf(stdout, buf, _IOFBF, sizeof buf);
        printf("parent before\n"); /* still in the parent's buffer at the fork */
        cpool_pool_t *p = make_pool(2);
        cpool_fn_t pr = cpool_register(p, "print", "i64(i64)", (cpool_any_fn_t)t_print_lines, 0);
        int64_t in[100], out[100];
        for (int i = 0; i < 100; i++) in[i] = i;
        int rc = cpool_map(p, pr, in, 8, out, 8, 100, 0, NULL);
        cpool_destroy(p);
        printf("parent after\n");
        exit(rc == 0 ? 0 : 1);
    }
    close(fds[1]);
    size_t cap = 1 << 20, len = 0;
    char *text = calloc(1, cap);
    ssize_t got;
    while (len < cap - 1 && (got = read(fds[0], text + len, cap - 1 - len)) > 0) len += (size_t)got;
    close(fds[0]);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(occurrences(text, "parent before"), 1);
    CHECK_EQ(occurrences(text, "parent after"), 1);
    for (int i = 0; i < 100; i++) {
        char line[32];
        snprintf(line, sizeof line, "out %d", i);
        CHECK_EQ(occurrences(text, line), 1);
    }
    free(text);
}

int main(void) {
    watchdog(120);
    RUN(shouldReportAJobsProgressUpToItsEnd);
    RUN(shouldTellEveryWorkersStartAndEndAsAnEvent);
    RUN(shouldEndEveryWorkerThatStartedWhenJoinedRightAfterAKill);
    RUN(shouldTellAnInitThatFailsAndThePoolItBreaks);
    RUN(shouldTellWhereEachWorkersTimeWent);
    RUN(shouldHandOnEveryLineAWorkerPrintsOnceWhenCaptured);
    RUN(shouldWriteWorkersLinesOnceToTheParentsPipe);
    return finish();
}
