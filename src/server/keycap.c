/* Per-key unit counts: a small open list, because the keys holding a unit at
 * once are at most the resource's size (a few dozen). */
#include "server/keycap.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct holder {
    char key_id[32];
    int n;
    struct holder *next;
} holder;

struct ld_keycap {
    pthread_mutex_t mu;
    int per_key;
    holder *head;
};

ld_keycap *ld_keycap_new(int per_key)
{
    ld_keycap *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->per_key = per_key < 1 ? 1 : per_key;
    return c;
}

void ld_keycap_free(ld_keycap *c)
{
    if (!c)
        return;
    for (holder *h = c->head, *next; h; h = next) {
        next = h->next;
        free(h);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int ld_keycap_limit(const ld_keycap *c) { return c->per_key; }

bool ld_keycap_take(ld_keycap *c, const char *key_id)
{
    pthread_mutex_lock(&c->mu);
    holder *h = c->head;
    while (h && strcmp(h->key_id, key_id))
        h = h->next;
    bool ok = true;
    if (!h) {
        h = calloc(1, sizeof *h);
        if (h) {
            strncpy(h->key_id, key_id, sizeof h->key_id - 1);
            h->next = c->head;
            c->head = h;
        }
    }
    if (!h || h->n >= c->per_key)
        ok = false;
    else
        h->n++;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

void ld_keycap_give(ld_keycap *c, const char *key_id)
{
    pthread_mutex_lock(&c->mu);
    for (holder **p = &c->head; *p; p = &(*p)->next) {
        if (strcmp((*p)->key_id, key_id))
            continue;
        holder *h = *p;
        if (--h->n <= 0) { /* forget keys holding nothing: the list stays short */
            *p = h->next;
            free(h);
        }
        break;
    }
    pthread_mutex_unlock(&c->mu);
}
