/* Making and laying out a pool's shared region (the layout itself: region.h). */
#define _GNU_SOURCE
#include "region.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

/* The parts of the region after the header, in order: where each starts (an offset
 * recorded in the header) and how many bytes it takes. */
enum { PART_CTL, PART_TASKS, PART_RESULTS, PART_FUNCTIONS, PART_CANCELLED,
       PART_JOB_LEFT, PART_COUNT };

static void lay_out(uint64_t *offsets, uint32_t workers, uint32_t ring_slots) {
    const uint64_t slots = (uint64_t)workers * ring_slots;
    const uint64_t bytes[PART_COUNT] = {
        [PART_CTL] = workers * sizeof(cpool__worker_ctl_t),
        [PART_TASKS] = slots * sizeof(cpool__task_slot_t),
        [PART_RESULTS] = slots * sizeof(cpool__completion_t),
        [PART_FUNCTIONS] = MAX_FUNCTIONS * sizeof(cpool__fn_shared_t),
        [PART_CANCELLED] = MAX_JOBS * sizeof(uint32_t),
        [PART_JOB_LEFT] = MAX_JOBS * sizeof(uint64_t),
    };
    uint64_t off = sizeof(cpool__header_t);
    for (int i = 0; i < PART_COUNT; i++) {
        offsets[i] = align_up(off, CACHE_LINE);
        off = offsets[i] + bytes[i];
    }
    offsets[PART_COUNT] = off;
}

/* A memfd mapping of total bytes, or MAP_FAILED with errno set. memfd rather than
 * shm_open: a name in /dev/shm exists from shm_open until shm_unlink, and a SIGKILL in
 * between would leave it behind; a memfd has no name and goes away with the last
 * mapping and descriptor. The fd (close-on-exec) stays open for spawned workers,
 * which receive it as their own. */
static void *map_anonymous_shared(uint64_t total, int *fd_out) {
    int fd = memfd_create("cpool", MFD_CLOEXEC);
    if (fd < 0) return MAP_FAILED;
    void *base = MAP_FAILED;
    if (ftruncate(fd, (off_t)total) == 0)
        base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    if (base == MAP_FAILED) close(fd);
    else *fd_out = fd;
    errno = e;
    return base;
}

/* Points r's parts into the mapping at base, from the header's offsets. */
static void find_parts(cpool__region_t *r, char *base) {
    const cpool__header_t *h = (const cpool__header_t *)base;
    r->base = base;
    r->bytes = h->region_bytes;
    r->header = (cpool__header_t *)base;
    r->ctl = (cpool__worker_ctl_t *)(base + h->ctl_off);
    r->task_slots = (cpool__task_slot_t *)(base + h->task_slots_off);
    r->res_slots = (cpool__completion_t *)(base + h->res_slots_off);
    r->functions = (cpool__fn_shared_t *)(base + h->functions_off);
    r->cancelled = (_Atomic uint32_t *)(base + h->cancel_off);
    r->job_left = (_Atomic uint64_t *)(base + h->job_left_off);
    r->arena = (unsigned char *)base + h->arena_off;
    r->arena_bytes = h->arena_bytes;
    r->outputs = (unsigned char *)base + h->outputs_off;
    r->output_bytes = h->output_bytes;
    r->hook_outputs = (unsigned char *)base + h->hook_outputs_off;
    r->hook_output_bytes = h->hook_output_bytes;
}

int cpool__region_create(cpool__region_t *r, uint32_t workers, uint32_t ring_slots,
                         uint64_t arena_bytes, uint64_t output_bytes, uint64_t hook_output_bytes) {
    memset(r, 0, sizeof *r);
    r->fd = -1;
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t at[PART_COUNT + 1];
    lay_out(at, workers, ring_slots);
    const uint64_t arena_off = align_up(at[PART_COUNT], page);
    arena_bytes = align_up(arena_bytes, page);
    output_bytes = align_up(output_bytes, page);
    hook_output_bytes = align_up(hook_output_bytes, CACHE_LINE);
    /* The output rings and exit values come last: like the arena, they are faulted on
     * first use. */
    const uint64_t outputs_off = arena_off + arena_bytes;
    const uint64_t hook_outputs_off = outputs_off + (uint64_t)workers * output_bytes;
    const uint64_t total =
        hook_outputs_off + (uint64_t)workers * (sizeof(cpool__hook_outputs_t) + hook_output_bytes);
    int fd = -1;
    char *base = map_anonymous_shared(total, &fd);
    if (base == MAP_FAILED) return -errno;
    /* Pre-fault the control part once (page faults cost ~2.7 us a page here); the
     * arena is faulted on first use and then reused low-address first. */
#ifdef MADV_POPULATE_WRITE
    madvise(base, arena_off, MADV_POPULATE_WRITE);
#endif

    r->fd = fd;
    cpool__header_t *h = (cpool__header_t *)base;
    h->magic = REGION_MAGIC;
    h->version = LAYOUT_VERSION;
    h->workers = workers;
    h->ring_slots = ring_slots;
    h->max_functions = MAX_FUNCTIONS;
    h->region_bytes = total;
    h->ctl_off = at[PART_CTL];
    h->task_slots_off = at[PART_TASKS];
    h->res_slots_off = at[PART_RESULTS];
    h->functions_off = at[PART_FUNCTIONS];
    h->cancel_off = at[PART_CANCELLED];
    h->job_left_off = at[PART_JOB_LEFT];
    h->arena_off = arena_off;
    h->arena_bytes = arena_bytes;
    h->outputs_off = outputs_off;
    h->output_bytes = output_bytes;
    h->hook_outputs_off = hook_outputs_off;
    h->hook_output_bytes = hook_output_bytes;
    h->parent_pid = (uint32_t)getpid();
    find_parts(r, base);
    return 0;
}

int cpool__region_attach(cpool__region_t *r, int fd, void *base, uint64_t bytes) {
    memset(r, 0, sizeof *r);
    r->fd = -1;
    /* Exactly at base or not at all: pointers into the region (cpool_alloc's buffers,
     * batch contexts) mean the same in every process. */
    void *at = mmap(base, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    if (at == MAP_FAILED) return -errno;
    if (at != base) { /* a kernel before 4.17 takes the flag as a hint */
        munmap(at, bytes);
        return -EEXIST;
    }
    const cpool__header_t *h = at;
    if (h->magic != REGION_MAGIC || h->version != LAYOUT_VERSION || h->region_bytes != bytes) {
        munmap(at, bytes);
        return -EPROTO;
    }
    find_parts(r, at);
    return 0;
}

void cpool__region_destroy(cpool__region_t *r) {
    if (r->base) munmap(r->base, r->bytes);
    if (r->fd >= 0) close(r->fd);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}
