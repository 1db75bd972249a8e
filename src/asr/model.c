/* Finds the three files of a model folder (layout in model.h). */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "asr/model.h"

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Sorted-first match so the choice does not depend on readdir order. */
static void keep_first(char *dst, size_t dstsz, const char *dir, const char *name)
{
    char path[1024];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return;
    if (!*dst || strcmp(path, dst) < 0)
        snprintf(dst, dstsz, "%s", path);
}

ld_err ld_model_resolve(const char *dir, ld_model_files *f, ld_error *err)
{
    memset(f, 0, sizeof *f);
    DIR *d = opendir(dir);
    if (!d)
        return ld_error_set(err, LD_ERR_INTERNAL, "model folder '%s' cannot be read", dir);
    bool named_acoustic = false;
    for (struct dirent *e; (e = readdir(d));) {
        const char *n = e->d_name;
        if (n[0] == '.')
            continue;
        char path[1024];
        struct stat st;
        if ((size_t)snprintf(path, sizeof path, "%s/%s/mdef", dir, n) < sizeof path && stat(path, &st) == 0 &&
            !named_acoustic) {
            named_acoustic = !strcmp(n, "acoustic");
            if (named_acoustic)
                f->acoustic[0] = 0;
            keep_first(f->acoustic, sizeof f->acoustic, dir, n);
        } else if ((ends_with(n, ".lm.bin") || ends_with(n, ".lm") || ends_with(n, ".lm.DMP")) &&
                   !strstr(n, "-phone")) {
            keep_first(f->lm, sizeof f->lm, dir, n);
        } else if (ends_with(n, ".dict")) {
            keep_first(f->dict, sizeof f->dict, dir, n);
        }
    }
    closedir(d);
    const char *missing = !f->acoustic[0] ? "an acoustic model folder (acoustic/ with mdef)"
                          : !f->lm[0]     ? "a language model (*.lm.bin or *.lm)"
                          : !f->dict[0]   ? "a dictionary (*.dict)"
                                          : NULL;
    if (missing)
        return ld_error_set(err, LD_ERR_INTERNAL, "model folder '%s' lacks %s", dir, missing);
    return LD_OK;
}

bool ld_model_is_default(const char *dir)
{
    char a[PATH_MAX], b[PATH_MAX];
    return realpath(dir, a) && realpath(LD_MODEL_DEFAULT_DIR, b) && !strcmp(a, b);
}
