/* Spawned workers (CPOOL_START_SPAWN): the parent starts a fresh process of a program
 * with the pool's memfd and a note in its environment; the program's main() calls
 * cpool_serve_if_spawned, which maps the memory at the parent's address and runs the
 * worker loop. */
#ifndef CPOOL_SPAWN_H
#define CPOOL_SPAWN_H

#include "capture.h"
#include "pool.h"

/* Exit status of a spawned process that could not become a worker: it could not map
 * the pool's memory, or its main() created a pool instead of serving. */
#define EXIT_SPAWN_FAILED 115
/* Exit status of a process whose program could not be executed (posix_spawn's child). */
#define EXIT_EXEC_FAILED 127
/* A spawned process that does not reach its task loop within this long (and no
 * init_timeout_ns says otherwise) is killed: its program does not serve. */
#define SPAWN_START_TIMEOUT_NS (60ull * 1000000000ull)

/* At pool creation: what every spawn needs (the program, its environment). Returns 0,
 * -ENOMEM. Freed by cpool__spawn_fini. */
int cpool__spawn_init(cpool__pool_t *p, const char *executable);
void cpool__spawn_fini(cpool__pool_t *p);

/* Starts the process for slot w, its stdout and stderr the capture pipes when the pool
 * captures. Returns 0 and *pid, or -errno (the program cannot be executed). Locks
 * held: none. */
int cpool__spawn_process(cpool__pool_t *p, uint32_t w, const cpool__capture_pipes_t *pipes,
                         uint64_t started_ns, pid_t *pid);

/* 1 in a process started as a worker that has not begun serving. */
int cpool__spawn_pending(void);

#endif
