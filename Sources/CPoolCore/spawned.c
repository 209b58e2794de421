/* Spawned workers: starting them (parent) and becoming one (the spawned program). */
#define _GNU_SOURCE
#include "spawned.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "supervisor.h"

extern char **environ;

/* The environment variable that makes a process a worker, and the descriptor number
 * its copy of the pool's memfd has there. */
#define SPAWN_ENV "CPOOL_SPAWNED_WORKER"
#define SPAWN_FD 3
/* A worker that finds something else at the pool's address starts itself again (new
 * address-space layout) this many times before it gives up. */
#define MAX_MAP_ATTEMPTS 8

/* What the parent tells a worker, as "fd slot base bytes parent started_ns attempt". */
typedef struct spawn_note {
    int fd;
    unsigned slot;
    uintptr_t base;
    uint64_t bytes;
    pid_t parent;
    uint64_t started_ns;
    unsigned attempt;
} spawn_note_t;

static int write_note(char *buf, size_t cap, const spawn_note_t *n) {
    return snprintf(buf, cap, SPAWN_ENV "=%d %u %" PRIxPTR " %" PRIu64 " %d %" PRIu64 " %u", n->fd,
                    n->slot, n->base, n->bytes, (int)n->parent, n->started_ns, n->attempt);
}

static int read_note(const char *s, spawn_note_t *n) {
    int parent;
    if (sscanf(s, "%d %u %" SCNxPTR " %" SCNu64 " %d %" SCNu64 " %u", &n->fd, &n->slot, &n->base,
               &n->bytes, &parent, &n->started_ns, &n->attempt) != 7)
        return -1;
    n->parent = parent;
    return 0;
}

/* ------------------------------------------------------------ parent */

int cpool__spawn_init(cpool__pool_t *p, const char *executable) {
    p->executable = strdup(executable ? executable : "/proc/self/exe");
    /* The environment as it is now, copied once: the supervisor thread must not read
     * `environ` while another thread may be changing it. One more entry holds the note. */
    size_t n = 0;
    while (environ && environ[n]) n++;
    p->spawn_env = calloc(n + 2, sizeof(char *));
    if (!p->executable || !p->spawn_env) return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], SPAWN_ENV "=", sizeof SPAWN_ENV) == 0) continue;
        if (!(p->spawn_env[k++] = strdup(environ[i]))) return -ENOMEM;
    }
    p->spawn_env_count = k;
    /* The memfd must not already be the number it gets in the worker: dup2 onto itself
     * would leave it close-on-exec. */
    if (p->region.fd == SPAWN_FD) {
        int fd = fcntl(p->region.fd, F_DUPFD_CLOEXEC, SPAWN_FD + 1);
        if (fd < 0) return -errno;
        close(p->region.fd);
        p->region.fd = fd;
    }
    return 0;
}

void cpool__spawn_fini(cpool__pool_t *p) {
    if (p->spawn_env)
        for (size_t i = 0; i < p->spawn_env_count; i++) free(p->spawn_env[i]);
    free(p->spawn_env);
    free(p->executable);
    p->spawn_env = NULL;
    p->executable = NULL;
}

int cpool__spawn_process(cpool__pool_t *p, uint32_t w, const cpool__capture_pipes_t *pipes,
                         uint64_t started_ns, pid_t *pid) {
    char note[256];
    const spawn_note_t n = {SPAWN_FD, w, (uintptr_t)p->region.base, p->region.bytes, p->parent_pid,
                            started_ns, 0};
    write_note(note, sizeof note, &n);
    /* The supervisor's environment array is its own: only it spawns. */
    p->spawn_env[p->spawn_env_count] = note;
    p->spawn_env[p->spawn_env_count + 1] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, p->region.fd, SPAWN_FD);
    for (int k = 0; k < CAPTURE_STREAMS; k++)
        if (pipes->write_end[k] >= 0) posix_spawn_file_actions_adddup2(&fa, pipes->write_end[k], STDOUT_FILENO + k);
    /* The supervisor blocks every signal, and the host may ignore some: the worker
     * starts with none blocked and every one at its default. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {p->executable, NULL};
    int rc = posix_spawn(pid, p->executable, &fa, &attr, argv, p->spawn_env);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    p->spawn_env[p->spawn_env_count] = NULL;
    return -rc;
}

/* ------------------------------------------------------------ the spawned program */

/* The note, taken from the environment before main() runs, so that nothing the
 * program starts (its own children) inherits it. */
static struct {
    int pending;
    char value[200];
} spawned;

int cpool__spawn_pending(void) { return spawned.pending; }

/* Runs when the program is loaded, before main(): a worker dies with its parent even
 * if its main() never gets to cpool_serve_if_spawned. */
__attribute__((constructor)) static void notice_spawn(void) {
    const char *v = getenv(SPAWN_ENV);
    spawn_note_t n;
    if (!v || strlen(v) >= sizeof spawned.value || read_note(v, &n) != 0) return;
    strcpy(spawned.value, v);
    spawned.pending = 1;
    unsetenv(SPAWN_ENV);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != n.parent) _exit(0);
}

/* Something else lives at the pool's address in this process: start again, with
 * another layout, keeping the memfd (the descriptor survives exec: no close-on-exec). */
static void start_again(spawn_note_t n) {
    n.attempt++;
    char note[256];
    write_note(note, sizeof note, &n);
    putenv(note);
    char *argv[] = {"/proc/self/exe", NULL};
    execve("/proc/self/exe", argv, environ);
}

int cpool_serve_if_spawned(void) {
    spawn_note_t n;
    if (!spawned.pending || read_note(spawned.value, &n) != 0) return 0;
    spawned.pending = 0;
    cpool__spawned_worker = 1;
    cpool__pool_t *p = calloc(1, sizeof *p);
    if (!p) _exit(EXIT_SPAWN_FAILED);
    int rc = cpool__region_attach(&p->region, n.fd, (void *)n.base, n.bytes);
    if (rc == -EEXIST && n.attempt + 1 < MAX_MAP_ATTEMPTS) start_again(n);
    if (rc) {
        fprintf(stderr, "cpool worker: cannot map the pool's memory at %#" PRIxPTR ": %s\n", n.base,
                strerror(-rc));
        _exit(EXIT_SPAWN_FAILED);
    }
    close(n.fd);
    if (n.slot >= p->region.header->workers) _exit(EXIT_SPAWN_FAILED);
    p->workers = p->region.header->workers;
    p->parent_pid = n.parent;
    cpool__registry_init(&p->registry, &p->region);
    cpool__worker_main(p, n.slot, n.started_ns);
}
