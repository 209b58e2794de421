#define _GNU_SOURCE
#include <string.h>

#include "cpool.h"

const char *cpool_strerror(int code) {
    switch (code) {
    case 0: return "success";
    case CPOOL_E_CLOSED: return "the pool is closed, terminated or destroyed";
    case CPOOL_E_UNKNOWN_FUNCTION: return "no function is registered with that id or name";
    case CPOOL_E_SIGNATURE: return "the signature does not parse or is not supported";
    case CPOOL_E_TOO_LARGE: return "the payload is larger than the pool's arena can hold";
    case CPOOL_E_EXISTS: return "a function with that name is already registered";
    case CPOOL_E_SYMBOL: return "the library or the symbol could not be loaded";
    case CPOOL_E_CRASHED: return "the worker died while running the task";
    case CPOOL_E_TASK_TIMEOUT: return "the task ran past its timeout and its worker was killed";
    case CPOOL_E_CANCELLED: return "the task was cancelled";
    case CPOOL_E_TASK_FAILED: return "some tasks failed; their statuses say which and why";
    case CPOOL_E_FUNCTION_ERROR: return "the function reported an error";
    case CPOOL_E_WORKER_INIT: return "the worker init hook kept failing; the pool is broken";
    case CPOOL_E_NOT_IN_WORKER:
        return "the function cannot be found in the worker: registered after the workers "
               "started and not in a shared object they can load, or not defined by name "
               "in the spawned worker's program (define it before cpool_serve_if_spawned)";
    case CPOOL_E_SIZE: return "argument or result size does not match the function's signature";
    case CPOOL_E_FULL: return "a fixed-size table of the pool (functions or jobs) is full";
    case CPOOL_E_SPAWN:
        return "spawned workers kept failing to start: the program must call "
               "cpool_serve_if_spawned() first in main(); the pool is broken";
    case CPOOL_E_START_METHOD: return "not possible with the pool's start method";
    }
    /* strerrordesc_np: a static string, unlike strerror (thread-safe, never formatted). */
    const char *s = (code < 0 && code > -4096) ? strerrordesc_np(-code) : NULL;
    return s ? s : "unknown error code";
}
