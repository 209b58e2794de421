#define _GNU_SOURCE
#include "region.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

int cpool__region_create(cpool__region_t *r, uint32_t workers, uint32_t ring_slots,
                         uint64_t arena_bytes) {
    memset(r, 0, sizeof *r);
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t off = align_up(sizeof(cpool__header_t), CACHE_LINE);
    const uint64_t ctl_off = off;
    off += (uint64_t)workers * sizeof(cpool__worker_ctl_t);
    const uint64_t task_off = align_up(off, CACHE_LINE);
    off = task_off + (uint64_t)workers * ring_slots * sizeof(cpool__task_t);
    const uint64_t res_off = align_up(off, CACHE_LINE);
    off = res_off + (uint64_t)workers * ring_slots * sizeof(cpool__completion_t);
    const uint64_t fn_off = align_up(off, CACHE_LINE);
    off = fn_off + (uint64_t)MAX_FUNCTIONS * sizeof(cpool__fn_shared_t);
    const uint64_t cancel_off = align_up(off, CACHE_LINE);
    off = cancel_off + (uint64_t)MAX_JOBS * sizeof(uint32_t);
    const uint64_t arena_off = align_up(off, page);
    arena_bytes = align_up(arena_bytes, page);
    const uint64_t total = arena_off + arena_bytes;

    /* memfd rather than shm_open: a name in /dev/shm exists from shm_open until
     * shm_unlink, and a SIGKILL in between would leave it behind; a memfd has no name
     * and goes away with the last mapping. The fd is closed at once: fork keeps the
     * mapping, and nothing else needs the file. */
    int fd = memfd_create("cpool", MFD_CLOEXEC);
    if (fd < 0) return -errno;
    if (ftruncate(fd, (off_t)total) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    void *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (base == MAP_FAILED) return -e;

    /* Pre-fault the control part once (page faults cost ~2.7 us a page here); the
     * arena is faulted on first use and then reused low-address first. */
#ifdef MADV_POPULATE_WRITE
    madvise(base, arena_off, MADV_POPULATE_WRITE);
#endif

    r->base = base;
    r->bytes = total;
    r->header = base;
    r->ctl = (cpool__worker_ctl_t *)((char *)base + ctl_off);
    r->task_slots = (cpool__task_t *)((char *)base + task_off);
    r->res_slots = (cpool__completion_t *)((char *)base + res_off);
    r->functions = (cpool__fn_shared_t *)((char *)base + fn_off);
    r->cancelled = (_Atomic uint32_t *)((char *)base + cancel_off);
    r->arena = (unsigned char *)base + arena_off;
    r->arena_bytes = arena_bytes;

    cpool__header_t *h = r->header;
    h->magic = REGION_MAGIC;
    h->version = LAYOUT_VERSION;
    h->workers = workers;
    h->ring_slots = ring_slots;
    h->max_functions = MAX_FUNCTIONS;
    h->region_bytes = total;
    h->ctl_off = ctl_off;
    h->task_slots_off = task_off;
    h->res_slots_off = res_off;
    h->functions_off = fn_off;
    h->cancel_off = cancel_off;
    h->arena_off = arena_off;
    h->arena_bytes = arena_bytes;
    h->parent_pid = (uint32_t)getpid();
    return 0;
}

void cpool__region_destroy(cpool__region_t *r) {
    if (r->base) munmap(r->base, r->bytes);
    memset(r, 0, sizeof *r);
}
