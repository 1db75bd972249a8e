#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ld_fs_mkdirs(const char *path, int mode)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, (mode_t)mode) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, (mode_t)mode) && errno != EEXIST)
        return -1;
    return 0;
}

char *ld_fs_read(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) || (size_t)st.st_size > max) {
        close(fd);
        return NULL;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = malloc(n + 1);
    while (buf && got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            free(buf);
            buf = NULL;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (!buf)
        return NULL;
    buf[got] = '\0';
    if (len)
        *len = got;
    return buf;
}

int ld_fs_write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int ld_fs_write_atomic(const char *path, const void *data, size_t len, int mode)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path) >= (int)sizeof tmp)
        return -1;
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -1;
    fchmod(fd, (mode_t)mode);
    if (ld_fs_write_all(fd, data, len)) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    /* close even when fsync fails, or the descriptor leaks */
    int failed = fsync(fd) != 0;
    failed |= close(fd) != 0;
    if (failed || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int ld_fs_tempfile(const char *dir, const char *prefix, char *path, size_t pathsz)
{
    if (snprintf(path, pathsz, "%s/%sXXXXXX", dir, prefix) >= (int)pathsz)
        return -1;
    return mkostemp(path, O_CLOEXEC);
}
