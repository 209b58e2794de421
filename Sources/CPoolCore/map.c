/* The calls that start work: cpool_map and cpool_apply (which wait), cpool_map_start
 * and cpool_submit (which return a job). Each enters the pool, creates one job from
 * its arguments, and leaves. The blocking calls stay "in" the pool while they wait,
 * so that cpool_destroy on another thread ends their job and waits for them instead
 * of freeing under them. */
#include <errno.h>
#include <stddef.h>

#include "job.h"

/* Starts the job; with wait, waits for it, reads a single task's status, and frees it. */
static int run(cpool_pool_t *h, const cpool__job_request_t *rq, cpool_job_t **job_out,
               cpool_status_t *status) {
    cpool__pool_t *p;
    int rc = cpool__pool_enter(h, &p);
    if (rc) return rc;
    cpool_job_t *job;
    rc = cpool__job_create(p, rq, &job);
    if (rc == 0 && job_out) {
        *job_out = job;
    } else if (rc == 0) {
        rc = cpool_job_wait(job, 0);
        if (status) cpool_job_status(job, status);
        cpool_job_free(job);
    }
    cpool__pool_leave(p);
    return rc;
}

static cpool__job_request_t map_request(cpool_fn_t fn, const void *in, size_t in_stride,
                                        void *out, size_t out_stride, size_t count,
                                        size_t chunk_items, cpool_status_t *statuses) {
    return (cpool__job_request_t){fn, in, in_stride, out, out_stride, count, chunk_items,
                                  statuses, 0, 0};
}

static cpool__job_request_t task_request(cpool_fn_t fn, const void *args, size_t args_bytes,
                                         void *result, size_t result_bytes, uint64_t timeout_ns) {
    return (cpool__job_request_t){fn, args, args_bytes, result, result_bytes, 1, 1, NULL,
                                  timeout_ns, 1};
}

int cpool_map_start(cpool_pool_t *h, cpool_fn_t fn, const void *in, size_t in_stride_bytes,
                    void *out, size_t out_stride_bytes, size_t count, size_t chunk_items,
                    cpool_status_t *statuses, cpool_job_t **job) {
    if (!job) return -EINVAL;
    const cpool__job_request_t rq = map_request(fn, in, in_stride_bytes, out, out_stride_bytes,
                                                count, chunk_items, statuses);
    return run(h, &rq, job, NULL);
}

int cpool_map(cpool_pool_t *h, cpool_fn_t fn, const void *in, size_t in_stride_bytes,
              void *out, size_t out_stride_bytes, size_t count, size_t chunk_items,
              cpool_status_t *statuses) {
    const cpool__job_request_t rq = map_request(fn, in, in_stride_bytes, out, out_stride_bytes,
                                                count, chunk_items, statuses);
    return run(h, &rq, NULL, NULL);
}

int cpool_submit(cpool_pool_t *h, cpool_fn_t fn, const void *args, size_t args_bytes,
                 void *result, size_t result_bytes, uint64_t timeout_ns, cpool_job_t **job) {
    if (!job) return -EINVAL;
    const cpool__job_request_t rq = task_request(fn, args, args_bytes, result, result_bytes, timeout_ns);
    return run(h, &rq, job, NULL);
}

int cpool_apply(cpool_pool_t *h, cpool_fn_t fn, const void *args, size_t args_bytes,
                void *result, size_t result_bytes, uint64_t timeout_ns, cpool_status_t *status) {
    const cpool__job_request_t rq = task_request(fn, args, args_bytes, result, result_bytes, timeout_ns);
    return run(h, &rq, NULL, status);
}
