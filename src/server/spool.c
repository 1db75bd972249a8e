#include "server/spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/fs.h"

struct ld_spool {
    char dir[1024];
    size_t mem_limit;
    uint8_t *mem;
    size_t len, cap;
    int fd; /* -1 while in memory */
    char path[1100];
    uint64_t size;
    void *map;
    size_t map_len;
};

ld_spool *ld_spool_new(const char *dir, size_t mem_limit)
{
    ld_spool *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->mem_limit = mem_limit;
    s->fd = -1;
    return s;
}

void ld_spool_free(ld_spool *s)
{
    if (!s)
        return;
    if (s->map)
        munmap(s->map, s->map_len);
    if (s->fd >= 0) {
        close(s->fd);
        unlink(s->path); /* ENOENT when a job took the file: fine */
    }
    free(s->mem);
    free(s);
}

static int spill(ld_spool *s)
{
    s->fd = ld_fs_tempfile(s->dir, "up_", s->path, sizeof s->path);
    if (s->fd < 0)
        return -1;
    if (s->len && ld_fs_write_all(s->fd, s->mem, s->len))
        return -1;
    free(s->mem);
    s->mem = NULL;
    s->len = s->cap = 0;
    return 0;
}

int ld_spool_write(ld_spool *s, const void *data, size_t n)
{
    if (!n)
        return 0;
    if (s->fd < 0 && s->len + n > s->mem_limit && spill(s))
        return -1;
    if (s->fd >= 0) {
        if (ld_fs_write_all(s->fd, data, n))
            return -1;
    } else {
        if (s->len + n > s->cap) {
            size_t cap = s->cap ? s->cap : 16384;
            while (cap < s->len + n)
                cap *= 2;
            uint8_t *m = realloc(s->mem, cap);
            if (!m)
                return -1;
            s->mem = m;
            s->cap = cap;
        }
        memcpy(s->mem + s->len, data, n);
        s->len += n;
    }
    s->size += n;
    return 0;
}

uint64_t ld_spool_size(const ld_spool *s) { return s->size; }

const char *ld_spool_path(ld_spool *s)
{
    if (s->fd < 0 && spill(s))
        return NULL;
    return s->path;
}

const uint8_t *ld_spool_mem(const ld_spool *s, size_t *len)
{
    if (s->fd >= 0)
        return NULL;
    *len = s->len;
    return s->mem ? s->mem : (const uint8_t *)"";
}

const uint8_t *ld_spool_map(ld_spool *s, size_t *len)
{
    if (s->fd < 0)
        return ld_spool_mem(s, len);
    if (!s->map) {
        if (s->size == 0) {
            *len = 0;
            return (const uint8_t *)"";
        }
        void *m = mmap(NULL, (size_t)s->size, PROT_READ, MAP_PRIVATE, s->fd, 0);
        if (m == MAP_FAILED)
            return NULL;
        s->map = m;
        s->map_len = (size_t)s->size;
    }
    *len = s->map_len;
    return s->map;
}
