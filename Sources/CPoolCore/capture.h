/* Captured worker output (CPOOL_OPTION_CAPTURE_OUTPUT): each worker's stdout and stderr
 * are pipes that the supervisor thread reads and cuts into lines for on_output. Every
 * function here is a no-op when the pool does not capture. Supervisor thread only. */
#ifndef CPOOL_CAPTURE_H
#define CPOOL_CAPTURE_H

#include <poll.h>

#include "pool.h"

#define CAPTURE_STREAMS 2
/* slot_of[] value of a pipe in the supervisor's watch list. */
#define CAPTURE_ENTRY UINT32_MAX

/* The pipes made for one fork: read and write ends of stdout and stderr. */
typedef struct cpool__capture_pipes {
    int read_end[CAPTURE_STREAMS], write_end[CAPTURE_STREAMS];
} cpool__capture_pipes_t;

/* Allocates the capture state when the pool captures (at creation). Returns 0 or -ENOMEM. */
int cpool__capture_init(cpool__pool_t *p);
/* Frees it; every pipe has been finished. */
void cpool__capture_free(cpool__pool_t *p);

/* Before a fork: makes the pipes. Returns 0 or -errno. */
int cpool__capture_prepare(cpool__pool_t *p, cpool__capture_pipes_t *pipes);
/* The fork failed: closes them. */
void cpool__capture_abandon(cpool__capture_pipes_t *pipes);
/* In the child: the write ends become its stdout and stderr. */
void cpool__capture_enter_child(const cpool__capture_pipes_t *pipes);
/* In the parent: keeps the read ends for slot w, closes the write ends. */
void cpool__capture_adopt(cpool__pool_t *p, uint32_t w, cpool__capture_pipes_t *pipes);

/* Appends the open read ends to the watch list; returns how many. */
nfds_t cpool__capture_watch(cpool__pool_t *p, struct pollfd *fds, uint32_t *slot_of);
/* Reads the pipes that polled readable and hands on their complete lines. */
void cpool__capture_read(cpool__pool_t *p, const struct pollfd *fds, const uint32_t *slot_of,
                         nfds_t n);
/* Slot w's process is gone: reads what is left in its pipes, hands on the last partial
 * lines, closes them. */
void cpool__capture_finish(cpool__pool_t *p, uint32_t w);

#endif
