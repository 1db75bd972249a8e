#include "audio/pcm_buf.h"
#include "util/fs.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* priv_ of an mmap-backed ld_pcm; heap-backed ones have priv_ == NULL. */
typedef struct {
    size_t map_len;
} pcm_map;

void ld_pcm_free(ld_pcm *pcm)
{
    if (!pcm)
        return;
    if (pcm->priv_) {
        pcm_map *m = pcm->priv_;
        if (pcm->samples)
            munmap(pcm->samples, m->map_len);
        free(m);
    } else {
        free(pcm->samples);
    }
    pcm->samples = NULL;
    pcm->n = 0;
    pcm->priv_ = NULL;
}

void ld_pcm_buf_init(ld_pcm_buf *b, const char *tmp_dir, size_t spill_samples)
{
    memset(b, 0, sizeof *b);
    b->fd = -1;
    b->spill_samples = spill_samples ? spill_samples : 1;
    if (!tmp_dir || !*tmp_dir)
        tmp_dir = getenv("TMPDIR");
    snprintf(b->dir, sizeof b->dir, "%s", tmp_dir && *tmp_dir ? tmp_dir : "/tmp");
}

/* Opens the spill file (unlinked at once: it disappears with the last
 * reference, even if we crash) and flushes the staging buffer into it. */
static int spill(ld_pcm_buf *b)
{
    if (b->fd < 0) {
        char path[512];
        b->fd = ld_fs_tempfile(b->dir, "listend-pcm-", path, sizeof path);
        if (b->fd < 0) {
            ld_log(LD_LOG_ERROR, "cannot create PCM spill file in %s: %s", b->dir, strerror(errno));
            return -1;
        }
        unlink(path);
    }
    if (ld_fs_write_all(b->fd, b->mem, b->n_mem * sizeof(int16_t))) {
        ld_log(LD_LOG_ERROR, "cannot write PCM spill file: %s", strerror(errno));
        return -1;
    }
    b->n_mem = 0;
    return 0;
}

int ld_pcm_buf_append(ld_pcm_buf *b, const int16_t *s, size_t n)
{
    while (n) {
        if (b->n_mem == b->cap) {
            if (b->cap >= b->spill_samples) {
                if (spill(b))
                    return -1;
            } else {
                size_t cap = b->cap ? b->cap * 2 : 16384;
                if (cap > b->spill_samples)
                    cap = b->spill_samples;
                int16_t *m = realloc(b->mem, cap * sizeof *m);
                if (!m)
                    return -1;
                b->mem = m;
                b->cap = cap;
            }
        }
        size_t k = b->cap - b->n_mem;
        if (k > n)
            k = n;
        memcpy(b->mem + b->n_mem, s, k * sizeof *s);
        b->n_mem += k;
        b->total += k;
        s += k;
        n -= k;
    }
    return 0;
}

void ld_pcm_buf_discard(ld_pcm_buf *b)
{
    free(b->mem);
    if (b->fd >= 0)
        close(b->fd);
    ld_pcm_buf_init(b, b->dir, b->spill_samples);
}

int ld_pcm_buf_finish(ld_pcm_buf *b, ld_pcm *out)
{
    memset(out, 0, sizeof *out);
    if (b->fd < 0) {
        /* Shrink to fit; a failed shrink keeps the larger block. */
        int16_t *m = b->total ? realloc(b->mem, b->total * sizeof *m) : NULL;
        if (!m) {
            m = b->mem;
            if (!b->total) {
                free(m);
                m = NULL;
            }
        }
        out->samples = m;
        out->n = b->total;
        b->mem = NULL;
        ld_pcm_buf_discard(b);
        return 0;
    }
    if (b->n_mem && spill(b)) {
        ld_pcm_buf_discard(b);
        return -1;
    }
    size_t len = b->total * sizeof(int16_t);
    pcm_map *pm = malloc(sizeof *pm);
    /* MAP_SHARED: pages come from the page cache, never from anonymous memory. */
    void *p = pm ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0) : MAP_FAILED;
    if (p == MAP_FAILED) {
        ld_log(LD_LOG_ERROR, "cannot mmap PCM spill file: %s", strerror(errno));
        free(pm);
        ld_pcm_buf_discard(b);
        return -1;
    }
    madvise(p, len, MADV_SEQUENTIAL);
    pm->map_len = len;
    out->samples = p;
    out->n = b->total;
    out->priv_ = pm;
    ld_pcm_buf_discard(b); /* closing the fd keeps the mapping */
    return 0;
}
