/* Languages served by the pool: "en" from Debian's model, plus one per
 * sub-folder of --models named by its ISO 639-1 code (layout in asr/model.h).
 * A folder that does not resolve is skipped with an error in the log, so one
 * broken extra language does not take the server down. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/model.h"
#include "asr/pool_internal.h"
#include "util/log.h"

static bool iso639_1(const char *s)
{
    return islower((unsigned char)s[0]) && islower((unsigned char)s[1]) && !s[2];
}

static int cmp_lang(const void *a, const void *b)
{
    return strcmp(((const ld_pool_lang *)a)->code, ((const ld_pool_lang *)b)->code);
}

ld_err ld_pool_find_languages(ld_pool *p, const char *models_dir, ld_error *err)
{
    p->langs = calloc(LD_POOL_MAX_LANGS, sizeof *p->langs);
    if (!p->langs)
        return ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
    p->n_langs = 0;
    bool have_en = false;
    if (models_dir && *models_dir) {
        DIR *d = opendir(models_dir);
        if (!d)
            return ld_error_set(err, LD_ERR_INTERNAL, "models folder '%s' cannot be read", models_dir);
        for (struct dirent *e; (e = readdir(d)) && p->n_langs < LD_POOL_MAX_LANGS;) {
            if (!iso639_1(e->d_name))
                continue;
            ld_pool_lang *l = &p->langs[p->n_langs];
            memcpy(l->code, e->d_name, 3); /* two letters + NUL (iso639_1) */
            snprintf(l->model_dir, sizeof l->model_dir, "%s/%s", models_dir, e->d_name);
            ld_model_files f;
            ld_error e2;
            if (ld_model_resolve(l->model_dir, &f, &e2) != LD_OK) {
                ld_log(LD_LOG_ERROR, "language '%s' skipped: %s", l->code, e2.msg);
                continue;
            }
            have_en |= !strcmp(l->code, "en");
            p->n_langs++;
        }
        closedir(d);
    }
    if (!have_en && p->n_langs < LD_POOL_MAX_LANGS) {
        ld_pool_lang *l = &p->langs[p->n_langs++];
        snprintf(l->code, sizeof l->code, "en");
        snprintf(l->model_dir, sizeof l->model_dir, "%s", LD_MODEL_DEFAULT_DIR);
    }
    qsort(p->langs, (size_t)p->n_langs, sizeof *p->langs, cmp_lang);
    return LD_OK;
}
