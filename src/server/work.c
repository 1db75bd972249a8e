#include "server/work.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct item {
    ld_work_fn fn;
    void *arg;
    struct item *next;
} item;

struct ld_work {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    item *head, *tail;
    int capacity, used; /* used = reserved + queued + running */
    bool stop;
    int n_threads;
    pthread_t *threads;
};

static void *loop(void *arg)
{
    ld_work *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop)
            break;
        item *it = w->head;
        w->head = it->next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        it->fn(it->arg);
        free(it);
        pthread_mutex_lock(&w->mu);
        w->used--;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

ld_work *ld_work_new(int threads, int capacity)
{
    ld_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->capacity = capacity > threads ? capacity : threads;
    w->threads = calloc((size_t)threads, sizeof *w->threads);
    for (int i = 0; w->threads && i < threads; i++) {
        if (pthread_create(&w->threads[i], NULL, loop, w))
            break;
        w->n_threads++;
    }
    if (w->n_threads == 0) {
        ld_work_free(w, NULL);
        return NULL;
    }
    return w;
}

void ld_work_free(ld_work *w, ld_work_fn cancel)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->n_threads; i++)
        pthread_join(w->threads[i], NULL);
    for (item *it = w->head, *next; it; it = next) {
        next = it->next;
        if (cancel)
            cancel(it->arg);
        free(it);
    }
    free(w->threads);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

bool ld_work_reserve(ld_work *w)
{
    pthread_mutex_lock(&w->mu);
    bool ok = !w->stop && w->used < w->capacity;
    if (ok)
        w->used++;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

void ld_work_unreserve(ld_work *w)
{
    pthread_mutex_lock(&w->mu);
    w->used--;
    pthread_mutex_unlock(&w->mu);
}

void ld_work_push(ld_work *w, ld_work_fn fn, void *arg)
{
    item *it = malloc(sizeof *it);
    if (!it) { /* out of memory: run inline rather than lose the request */
        fn(arg);
        ld_work_unreserve(w);
        return;
    }
    it->fn = fn;
    it->arg = arg;
    it->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int ld_work_depth(ld_work *w)
{
    pthread_mutex_lock(&w->mu);
    int n = w->used;
    pthread_mutex_unlock(&w->mu);
    return n;
}
