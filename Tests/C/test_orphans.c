/* Workers never outlive their parent: not when it is killed with SIGKILL (even after
 * the thread that created the pool has exited), not when it exits without destroying
 * its pool. And no shared memory is left in /dev/shm. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"
#include "testfns.h"

typedef struct report {
    _Atomic int ready;
    _Atomic int go; /* the parent saw the workers: the child may leave now */
    pid_t workers[4];
    int shm_objects, memfd; /* what the child's own memory looked like with its pool */
} report_t;

static report_t *rep;

/* Objects in /dev/shm that process pid maps or holds open. Only this process's own:
 * other programs (and other tests running in parallel) may use /dev/shm as they like.
 * The pool's memory is a memfd, which never has a name there. */
static int shm_objects_of(pid_t pid) {
    char path[64], line[512];
    int n = 0;
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        while (fgets(line, sizeof line, f)) n += strstr(line, " /dev/shm/") != NULL;
        fclose(f);
    }
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            char link[300], target[300];
            snprintf(link, sizeof link, "%s/%s", path, e->d_name);
            ssize_t len = readlink(link, target, sizeof target - 1);
            if (len > 0) {
                target[len] = '\0';
                n += strncmp(target, "/dev/shm/", 9) == 0;
            }
        }
        closedir(d);
    }
    return n;
}

static int pool_memory_is_memfd(pid_t pid) {
    char path[64], line[512];
    int n = 0;
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) n += strstr(line, "/memfd:cpool") != NULL;
    fclose(f);
    return n > 0;
}


static void *create_pool_and_leave(void *arg) {
    cpool_pool_t **out = arg;
    *out = make_pool(4);
    return NULL; /* this thread exits; the pool's supervisor thread lives on */
}

static void exit_on_sigterm(int sig) { exit(0); }

/* The child program: a pool made by a short-lived thread, busy with a long task.
 * how: 0 waits to be SIGKILLed; 1 exits without destroying the pool; 2 and 3 run a map
 * and get SIGINT (default action) or SIGTERM (a handler that calls exit); 4 aborts in
 * the middle of a map, as an uncaught error would. */
static _Noreturn void child(int how) {
    if (how == 3) signal(SIGTERM, exit_on_sigterm);
    pthread_t th;
    cpool_pool_t *p = NULL;
    pthread_create(&th, NULL, create_pool_and_leave, &p);
    pthread_join(th, NULL);
    cpool_fn_t s = cpool_register(p, "sleep_ms", "i64(i64)", (cpool_any_fn_t)t_sleep_ms, 0);
    int64_t ms = 60000, r;
    cpool_job_t *job;
    cpool_submit(p, s, &ms, 8, &r, 8, 0, &job);
    for (uint32_t w = 0; w < 4; w++) {
        cpool_worker_stats_t st;
        cpool_worker_stats(p, w, &st);
        rep->workers[w] = st.pid;
    }
    rep->shm_objects = shm_objects_of(getpid());
    rep->memfd = pool_memory_is_memfd(getpid());
    atomic_store(&rep->ready, 1);
    if (how >= 2) {
        int64_t in[64], out[64];
        for (int i = 0; i < 64; i++) in[i] = 60000;
        if (how == 4) {
            /* stand-in for a crash of the parent's own code while a map runs */
            cpool_job_t *j2;
            cpool_map_start(p, s, in, 8, out, 8, 64, 1, NULL, &j2);
            while (!atomic_load(&rep->go)) usleep(1000);
            abort();
        }
        cpool_map(p, s, in, 8, out, 8, 64, 1, NULL); /* interrupted by the signal */
        exit(3);
    }
    if (how == 1) {
        while (!atomic_load(&rep->go)) usleep(1000);
        exit(0); /* leaves without destroying the pool */
    }
    for (;;) pause();      /* waits for SIGKILL */
}

static void check_no_worker_survives(int how) {
    memset(rep, 0, sizeof *rep);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) child(how);
    for (int i = 0; i < 1000 && !atomic_load(&rep->ready); i++) usleep(10000);
    CHECK(atomic_load(&rep->ready));
    for (int w = 0; w < 4; w++) CHECK(rep->workers[w] > 0 && process_alive(rep->workers[w]));
    usleep(50000); /* let a map get going */
    if (how == 0) kill(pid, SIGKILL);
    if (how == 2) kill(pid, SIGINT);
    if (how == 3) kill(pid, SIGTERM);
    atomic_store(&rep->go, 1);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid); /* our own child only */
    if (how == 0) CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    if (how == 1 || how == 3) CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (how == 2) CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
    if (how == 4) CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    /* within 1 s, none of its workers is alive */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int left = 4;
    for (;;) {
        left = 0;
        for (int w = 0; w < 4; w++) left += process_alive(rep->workers[w]);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (left == 0 || s > 1.0) break;
        usleep(5000);
    }
    CHECK_EQ(left, 0);
    CHECK_EQ(rep->shm_objects, 0);
    CHECK_EQ(rep->memfd, 1);
}

static void shouldKillEveryWorkerWhenTheParentIsKilled(void) { check_no_worker_survives(0); }
static void shouldKillEveryWorkerWhenTheParentExitsWithoutDestroy(void) { check_no_worker_survives(1); }

static void shouldKillEveryWorkerWhenSigintInterruptsAMap(void) { check_no_worker_survives(2); }
static void shouldKillEveryWorkerWhenASigtermHandlerExitsDuringAMap(void) { check_no_worker_survives(3); }
static void shouldKillEveryWorkerWhenTheParentAbortsDuringAMap(void) { check_no_worker_survives(4); }

static void shouldLeaveNothingInDevShmAfterUse(void) {
    for (int i = 0; i < 5; i++) {
        cpool_pool_t *p = make_pool(2);
        CHECK_EQ(shm_objects_of(getpid()), 0); /* memfd: never a name in /dev/shm */
        CHECK_EQ(pool_memory_is_memfd(getpid()), 1);
        cpool_destroy(p);
        CHECK_EQ(pool_memory_is_memfd(getpid()), 0); /* unmapped */
    }
}

int main(void) {
    watchdog(60);
    rep = mmap(NULL, sizeof *rep, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    RUN(shouldKillEveryWorkerWhenTheParentIsKilled);
    RUN(shouldKillEveryWorkerWhenTheParentExitsWithoutDestroy);
    RUN(shouldKillEveryWorkerWhenSigintInterruptsAMap);
    RUN(shouldKillEveryWorkerWhenASigtermHandlerExitsDuringAMap);
    RUN(shouldKillEveryWorkerWhenTheParentAbortsDuringAMap);
    RUN(shouldLeaveNothingInDevShmAfterUse);
    return finish();
}
