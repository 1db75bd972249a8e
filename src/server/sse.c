/* Streamed response bodies (sse.h). libmicrohttpd calls a content reader until
 * it ends the body; returning 0 ("nothing yet") is only allowed together with
 * suspending the connection, or MHD polls in a busy loop. So the reader
 * suspends, under the stream's lock, and the producer resumes under the same
 * lock: a push can never slip between "nothing to send" and the suspend. */
#include "server/sse.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct ld_sse {
    pthread_mutex_t mu;
    int refs;
    char *buf; /* pushed, not yet read: buf[off..len) */
    size_t len, off, cap;
    bool ended;
    bool waiting; /* the reader suspended the connection */
    bool closed;  /* the response is gone (sent, or the client left) */
    struct MHD_Connection *conn;
    struct ld_sse *next, *prev; /* attached streams, for ld_sse_end_all */
};

static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static ld_sse *all;
static bool all_ended; /* ld_sse_end_all ran: a stream attached later ends at once */

ld_sse *ld_sse_new(void)
{
    ld_sse *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->refs = 1;
    return s;
}

void ld_sse_unref(ld_sse *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    int left = --s->refs;
    pthread_mutex_unlock(&s->mu);
    if (left)
        return;
    free(s->buf);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Wakes the reader; s->mu held. */
static void wake(ld_sse *s)
{
    if (s->waiting && s->conn && !s->closed) {
        s->waiting = false;
        MHD_resume_connection(s->conn);
    }
}

static void append(ld_sse *s, const char *data, size_t n)
{
    if (s->off == s->len)
        s->off = s->len = 0;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        while (cap < s->len + n)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
}

void ld_sse_push(ld_sse *s, char *event)
{
    if (!event)
        return;
    pthread_mutex_lock(&s->mu);
    if (!s->ended && !s->closed) {
        append(s, event, strlen(event));
        wake(s);
    }
    pthread_mutex_unlock(&s->mu);
    free(event);
}

void ld_sse_end(ld_sse *s)
{
    pthread_mutex_lock(&s->mu);
    s->ended = true;
    wake(s);
    pthread_mutex_unlock(&s->mu);
}

void ld_sse_attach(ld_sse *s, struct MHD_Connection *c)
{
    pthread_mutex_lock(&s->mu);
    s->refs++;
    s->conn = c;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&all_mu);
    s->prev = NULL;
    s->next = all;
    if (all)
        all->prev = s;
    all = s;
    bool late = all_ended;
    pthread_mutex_unlock(&all_mu);
    if (late) /* the daemon is about to stop: never leave this connection suspended */
        ld_sse_end(s);
}

ssize_t ld_sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    ld_sse *s = cls;
    ssize_t r;
    pthread_mutex_lock(&s->mu);
    if (s->off < s->len) {
        size_t n = s->len - s->off < max ? s->len - s->off : max;
        memcpy(buf, s->buf + s->off, n);
        s->off += n;
        r = (ssize_t)n;
    } else if (s->ended) {
        r = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        s->waiting = true;
        MHD_suspend_connection(s->conn);
        r = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

void ld_sse_release(void *cls)
{
    ld_sse *s = cls;
    pthread_mutex_lock(&all_mu);
    if (s->prev)
        s->prev->next = s->next;
    else if (all == s)
        all = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
    pthread_mutex_unlock(&all_mu);
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    s->conn = NULL;
    pthread_mutex_unlock(&s->mu);
    ld_sse_unref(s);
}

void ld_sse_end_all(const char *event)
{
    /* Resume outside all_mu: MHD may release a response (ld_sse_release takes
     * all_mu) while holding the lock that resuming takes. */
    ld_sse **list = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&all_mu);
    all_ended = true;
    for (ld_sse *s = all; s; s = s->next) {
        if (n == cap) {
            size_t c = cap ? cap * 2 : 16;
            ld_sse **l = realloc(list, c * sizeof *l);
            if (!l)
                break;
            list = l;
            cap = c;
        }
        pthread_mutex_lock(&s->mu);
        s->refs++;
        pthread_mutex_unlock(&s->mu);
        list[n++] = s;
    }
    pthread_mutex_unlock(&all_mu);
    for (size_t i = 0; i < n; i++) {
        ld_sse *s = list[i];
        pthread_mutex_lock(&s->mu);
        if (!s->ended && !s->closed && event)
            append(s, event, strlen(event));
        s->ended = true;
        wake(s);
        pthread_mutex_unlock(&s->mu);
        ld_sse_unref(s);
    }
    free(list);
}
