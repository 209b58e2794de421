/* See cpool_mpi.h. */
#include "cpool_mpi.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

struct cpool_mpi_send {
    MPI_Request request;
};

int cpool_mpi_init(int *rank, int *size, char *host, size_t host_bytes) {
    int provided = MPI_THREAD_SINGLE;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return rc;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided < MPI_THREAD_SERIALIZED) return CPOOL_MPI_E_THREADS;
    if ((rc = MPI_Comm_rank(MPI_COMM_WORLD, rank)) != MPI_SUCCESS) return rc;
    if ((rc = MPI_Comm_size(MPI_COMM_WORLD, size)) != MPI_SUCCESS) return rc;
    char name[MPI_MAX_PROCESSOR_NAME];
    int length = 0;
    if ((rc = MPI_Get_processor_name(name, &length)) != MPI_SUCCESS) return rc;
    if (host_bytes > 0) {
        size_t n = (size_t)length < host_bytes - 1 ? (size_t)length : host_bytes - 1;
        memcpy(host, name, n);
        host[n] = '\0';
    }
    return 0;
}

int cpool_mpi_send(int dest, int tag, const void *bytes, size_t count, cpool_mpi_send_t **send) {
    if (count > INT_MAX) return CPOOL_MPI_E_TOO_LARGE;
    cpool_mpi_send_t *s = malloc(sizeof *s);
    if (!s) return MPI_ERR_NO_MEM;
    int rc = MPI_Isend(bytes, (int)count, MPI_BYTE, dest, tag, MPI_COMM_WORLD, &s->request);
    if (rc != MPI_SUCCESS) {
        free(s);
        return rc;
    }
    *send = s;
    return 0;
}

int cpool_mpi_test(cpool_mpi_send_t *send, int *done) {
    int flag = 0;
    int rc = MPI_Test(&send->request, &flag, MPI_STATUS_IGNORE);
    *done = flag;
    if (rc == MPI_SUCCESS && flag) free(send);
    return rc;
}

int cpool_mpi_poll(int *source, int *tag, size_t *count) {
    int flag = 0;
    MPI_Status status;
    int rc = MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status);
    if (rc != MPI_SUCCESS) return -rc;
    if (!flag) return 0;
    int n = 0;
    MPI_Get_count(&status, MPI_BYTE, &n);
    *source = status.MPI_SOURCE;
    *tag = status.MPI_TAG;
    *count = (size_t)n;
    return 1;
}

int cpool_mpi_receive(int source, int tag, void *bytes, size_t count) {
    if (count > INT_MAX) return CPOOL_MPI_E_TOO_LARGE;
    return MPI_Recv(bytes, (int)count, MPI_BYTE, source, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

int cpool_mpi_finalize(void) { return MPI_Finalize(); }

void cpool_mpi_abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    abort(); /* MPI_Abort does not return; should it, the rank ends all the same */
}

void cpool_mpi_error_text(int code, char *text, size_t bytes) {
    if (bytes == 0) return;
    if (code == CPOOL_MPI_E_THREADS) {
        snprintf(text, bytes, "%s", "the MPI library does not offer MPI_THREAD_SERIALIZED");
        return;
    }
    if (code == CPOOL_MPI_E_TOO_LARGE) {
        snprintf(text, bytes, "%s", "a message over 2 GiB");
        return;
    }
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(code, s, &n) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", code);
    snprintf(text, bytes, "%s", s);
}
