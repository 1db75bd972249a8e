/* Small file-system helpers. Thread-safe. */
#ifndef LD_UTIL_FS_H
#define LD_UTIL_FS_H

#include <stddef.h>

/* mkdir -p with the given mode for created directories. 0 on success. */
int ld_fs_mkdirs(const char *path, int mode);
/* Reads a whole file (at most max bytes) into a malloc'd, NUL-terminated buffer
 * owned by the caller. NULL on error or when larger than max. */
char *ld_fs_read(const char *path, size_t max, size_t *len);
/* Writes atomically (temp file + fsync + rename) with the given mode. 0 on success. */
int ld_fs_write_atomic(const char *path, const void *data, size_t len, int mode);
/* write(2) until all n bytes are out (retrying EINTR). 0 on success, -1 with errno. */
int ld_fs_write_all(int fd, const void *data, size_t n);
/* Creates and opens a unique file in dir ("dir/prefixXXXXXX"); fills path
 * (size pathsz) and returns the fd, or -1. The caller unlinks it. */
int ld_fs_tempfile(const char *dir, const char *prefix, char *path, size_t pathsz);

#endif
