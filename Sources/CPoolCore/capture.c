/* Captured worker output: pipes, read by the supervisor, cut into lines. A line is
 * handed on whole when it ends; one longer than LINE_MAX_BYTES goes in pieces of that
 * size, so a worker that never writes a newline cannot make the parent hold unbounded
 * memory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"

#define LINE_MAX_BYTES (64u << 10)

typedef struct stream_state {
    int fd;                 /* read end, -1 when none */
    size_t held;            /* bytes of an unfinished line in buf */
    char buf[LINE_MAX_BYTES];
} stream_state_t;

struct cpool__capture {
    uint32_t workers;
    stream_state_t s[][CAPTURE_STREAMS]; /* [workers] */
};

static int capturing(const cpool__pool_t *p) { return p->capture != NULL; }

int cpool__capture_init(cpool__pool_t *p) {
    if (!(p->opts.flags & CPOOL_OPTION_CAPTURE_OUTPUT)) return 0;
    p->capture = calloc(1, sizeof *p->capture + p->workers * sizeof(p->capture->s[0]));
    if (!p->capture) return -ENOMEM;
    p->capture->workers = p->workers;
    for (uint32_t w = 0; w < p->workers; w++)
        for (int k = 0; k < CAPTURE_STREAMS; k++) p->capture->s[w][k].fd = -1;
    return 0;
}

void cpool__capture_free(cpool__pool_t *p) {
    free(p->capture);
    p->capture = NULL;
}

int cpool__capture_prepare(cpool__pool_t *p, cpool__capture_pipes_t *pipes) {
    for (int k = 0; k < CAPTURE_STREAMS; k++) pipes->read_end[k] = pipes->write_end[k] = -1;
    if (!capturing(p)) return 0;
    for (int k = 0; k < CAPTURE_STREAMS; k++) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            int e = errno;
            cpool__capture_abandon(pipes);
            return -e;
        }
        pipes->read_end[k] = fds[0];
        pipes->write_end[k] = fds[1];
    }
    return 0;
}

void cpool__capture_abandon(cpool__capture_pipes_t *pipes) {
    for (int k = 0; k < CAPTURE_STREAMS; k++) {
        if (pipes->read_end[k] >= 0) close(pipes->read_end[k]);
        if (pipes->write_end[k] >= 0) close(pipes->write_end[k]);
        pipes->read_end[k] = pipes->write_end[k] = -1;
    }
}

void cpool__capture_enter_child(const cpool__capture_pipes_t *pipes) {
    for (int k = 0; k < CAPTURE_STREAMS; k++) {
        if (pipes->write_end[k] < 0) continue;
        dup2(pipes->write_end[k], STDOUT_FILENO + k); /* the copy is not close-on-exec */
        close(pipes->write_end[k]);
        close(pipes->read_end[k]);
    }
}

void cpool__capture_adopt(cpool__pool_t *p, uint32_t w, cpool__capture_pipes_t *pipes) {
    if (!capturing(p)) return;
    for (int k = 0; k < CAPTURE_STREAMS; k++) {
        close(pipes->write_end[k]);
        fcntl(pipes->read_end[k], F_SETFL, O_NONBLOCK);
        p->capture->s[w][k].fd = pipes->read_end[k];
        p->capture->s[w][k].held = 0;
    }
}

nfds_t cpool__capture_watch(cpool__pool_t *p, struct pollfd *fds, uint32_t *slot_of) {
    if (!capturing(p)) return 0;
    nfds_t n = 0;
    for (uint32_t w = 0; w < p->workers; w++)
        for (int k = 0; k < CAPTURE_STREAMS; k++) {
            if (p->capture->s[w][k].fd < 0) continue;
            slot_of[n] = CAPTURE_ENTRY;
            fds[n++] = (struct pollfd){p->capture->s[w][k].fd, POLLIN, 0};
        }
    return n;
}

static void hand_on(cpool__pool_t *p, uint32_t w, int k, const char *line, size_t n) {
    p->opts.on_output(w, STDOUT_FILENO + k, line, n, p->opts.output_ctx);
}

/* Reads what the pipe holds now. Returns 0 at the end of the stream (every writer
 * gone), 1 otherwise. */
static int drain(cpool__pool_t *p, uint32_t w, int k) {
    stream_state_t *s = &p->capture->s[w][k];
    for (;;) {
        ssize_t got = read(s->fd, s->buf + s->held, LINE_MAX_BYTES - s->held);
        if (got < 0) return errno == EINTR ? drain(p, w, k) : errno == EAGAIN ? 1 : 0;
        if (got == 0) return 0;
        size_t end = s->held + (size_t)got, start = 0;
        for (size_t i = s->held; i < end; i++) {
            if (s->buf[i] != '\n') continue;
            hand_on(p, w, k, s->buf + start, i - start);
            start = i + 1;
        }
        if (start == 0 && end == LINE_MAX_BYTES) { /* a line that fills the buffer */
            hand_on(p, w, k, s->buf, end);
            start = end;
        }
        memmove(s->buf, s->buf + start, end - start);
        s->held = end - start;
    }
}

void cpool__capture_read(cpool__pool_t *p, const struct pollfd *fds, const uint32_t *slot_of,
                         nfds_t n) {
    if (!capturing(p)) return;
    for (nfds_t i = 0; i < n; i++) {
        if (slot_of[i] != CAPTURE_ENTRY || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        for (uint32_t w = 0; w < p->workers; w++)
            for (int k = 0; k < CAPTURE_STREAMS; k++)
                if (p->capture->s[w][k].fd == fds[i].fd && !drain(p, w, k)) {
                    /* The end of the stream before the process is gone: it closed its
                     * stdout. Keep the state; capture_finish hands on the rest. */
                    close(p->capture->s[w][k].fd);
                    p->capture->s[w][k].fd = -1;
                }
    }
}

void cpool__capture_finish(cpool__pool_t *p, uint32_t w) {
    if (!capturing(p)) return;
    for (int k = 0; k < CAPTURE_STREAMS; k++) {
        stream_state_t *s = &p->capture->s[w][k];
        if (s->fd >= 0) {
            /* Everything the process wrote is in the pipe by now; a process it forked
             * may still hold the write end, so read what is there, not to the end. */
            drain(p, w, k);
            close(s->fd);
            s->fd = -1;
        }
        if (s->held) hand_on(p, w, k, s->buf, s->held);
        s->held = 0;
    }
}
