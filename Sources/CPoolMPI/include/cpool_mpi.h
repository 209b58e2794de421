/* The MPI calls of SwiftPoolMPI as plain C functions: Swift cannot see Open MPI's
 * handle macros (MPI_COMM_WORLD, MPI_BYTE). Every message is bytes on MPI_COMM_WORLD.
 * After cpool_mpi_init, one thread at a time calls MPI (MPI_THREAD_SERIALIZED): in
 * SwiftPoolMPI, each rank's communication thread. Functions return 0 or an MPI error
 * code (cpool_mpi_error_text names it) unless they say otherwise; errors return, they
 * never abort the job (MPI_ERRORS_RETURN). */
#ifndef CPOOL_MPI_H
#define CPOOL_MPI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The shim's own error codes, beside MPI's (which are positive). */
enum {
    CPOOL_MPI_E_THREADS = -1,   /* the library offers less than MPI_THREAD_SERIALIZED */
    CPOOL_MPI_E_TOO_LARGE = -2, /* a message over INT_MAX bytes */
};

/* Starts MPI (MPI_Init_thread asking for MPI_THREAD_SERIALIZED) and reports this
 * process's rank, the number of ranks, and the host name MPI gives it. Returns 0, an
 * MPI error code, or CPOOL_MPI_E_THREADS. */
int cpool_mpi_init(int *rank, int *size, char *host, size_t host_bytes);

/* A send in flight, until cpool_mpi_test reports it done. */
typedef struct cpool_mpi_send cpool_mpi_send_t;

/* Starts sending `count` bytes to rank `dest` with `tag`; the bytes must stay valid and
 * unchanged until the send is done. Returns 0, an MPI error code, or CPOOL_MPI_E_TOO_LARGE. */
int cpool_mpi_send(int dest, int tag, const void *bytes, size_t count, cpool_mpi_send_t **send);

/* Sets *done to 1 when the send has finished, and then frees it. */
int cpool_mpi_test(cpool_mpi_send_t *send, int *done);

/* Whether a message waits (MPI_Iprobe, any source, any tag): 1 with its source, tag
 * and size in bytes, 0 when none does, or a negative MPI error code. */
int cpool_mpi_poll(int *source, int *tag, size_t *count);

/* Receives the message cpool_mpi_poll announced into `bytes` (`count` bytes). */
int cpool_mpi_receive(int source, int tag, void *bytes, size_t count);

/* Ends MPI normally: every rank calls it once, after its last message. */
int cpool_mpi_finalize(void);

/* Ends every rank of the job (MPI_Abort): for a job that lost a rank, whose
 * finalization would wait for it forever. Does not return. */
void cpool_mpi_abort(int code);

/* The text of an MPI error code or of the shim's own into `text`. */
void cpool_mpi_error_text(int code, char *text, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
