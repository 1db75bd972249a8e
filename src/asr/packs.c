/* Model packs: reading pack folders, names and aliases (asr/packs.h). The pool
 * (languages.c, pool.c) owns the loaded list. */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "asr/packs.h"
#include "util/fs.h"

#define MAX_MLLR_BYTES (1 << 20) /* a one-class transform is ≈ 7 KB of text */

bool ld_pack_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 3 || n >= LD_PACK_NAME_MAX || !islower((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) && name[i] != '-' &&
            name[i] != '_')
            return false;
    return strcmp(name, "auto") && strcmp(name, "general");
}

/* Other APIs' model names, so their clients keep working (table-driven; prefix match). */
static const struct {
    const char *prefix, *to;
} aliases[] = {
    {"lightning", "auto"}, {"pulse", "auto"},      {"whisper", "auto"},          {"gpt-4o", "auto"},
    {"nova", "auto"},      {"base", "auto"},       {"enhanced", "auto"},         {"meeting", "auto"},
    {"voicemail", "auto"}, {"finance", "auto"},    {"conversationalai", "auto"}, {"video", "auto"},
    {"medical", "auto"},   {"drivethru", "auto"},  {"automotive", "auto"},       {"atc", "auto"},
    {"flux", "auto"},      {"general", "general"},
};

const char *ld_pack_alias(const char *name)
{
    if (strcasestr(name, "phonecall")) /* Deepgram's telephone models */
        return "telephony";
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (!strncasecmp(name, aliases[i].prefix, strlen(aliases[i].prefix)))
            return aliases[i].to;
    return name;
}

ld_err ld_pack_read(const char *dir, char **mllr_text, float cmn[13], bool *cmn_ok, char language[16],
                    ld_error *err)
{
    *mllr_text = NULL;
    *cmn_ok = false;
    snprintf(language, 16, "en");
    char path[1100];
    snprintf(path, sizeof path, "%s/pack.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    /* optional, but one that is there and broken is refused: its language or
     * CMN would be guessed otherwise */
    if (!j && access(path, F_OK) == 0)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "pack.json: %s (line %d)", je.text, je.line);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "pack.json is not a JSON object");
    }
    if (j) {
        json_t *lang = json_object_get(j, "language"), *c = json_object_get(j, "cmn_init");
        if (json_is_string(lang) && strlen(json_string_value(lang)) < 16)
            snprintf(language, 16, "%s", json_string_value(lang));
        if (json_is_array(c) && json_array_size(c) == 13) {
            *cmn_ok = true;
            for (size_t i = 0; i < 13; i++) {
                json_t *v = json_array_get(c, i);
                *cmn_ok &= json_is_number(v);
                cmn[i] = (float)json_number_value(v);
            }
        }
        json_decref(j);
    }
    snprintf(path, sizeof path, "%s/mllr_matrix", dir);
    size_t len = 0;
    *mllr_text = ld_fs_read(path, MAX_MLLR_BYTES, &len);
    if (!*mllr_text)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "no readable mllr_matrix (at most %d KB)",
                            MAX_MLLR_BYTES >> 10);
    return LD_OK;
}

/* Next number of MLLR text; false at the end or on a token that is not one. */
static bool next_number(const char **p, double *v)
{
    char *end;
    *v = strtod(*p, &end);
    if (end == *p)
        return false;
    *p = end;
    return true;
}

/* A header count: a whole number in [lo, hi]. */
static bool next_count(const char **p, int lo, int hi, int *n)
{
    double v;
    if (!next_number(p, &v) || v != (double)(int)v || v < lo || v > hi)
        return false;
    *n = (int)v;
    return true;
}

/* Stream s's A (len × len), b (len) and h (len): present, finite, h > 0. */
static ld_err check_stream(const char **p, int s, int len, ld_error *err)
{
    static const char *const part[] = {"matrix A", "offset b", "variance scale h"};
    const long count[] = {(long)len * len, len, len};
    for (int k = 0; k < 3; k++)
        for (long i = 0; i < count[k]; i++) {
            double v;
            if (!next_number(p, &v))
                return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                    "mllr_matrix stream %d: %s has %ld of its %ld values", s + 1, part[k], i,
                                    count[k]);
            if (!isfinite(v) || (k == 2 && v <= 0))
                return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "mllr_matrix stream %d: %s holds %g", s + 1,
                                    part[k], v);
        }
    return LD_OK;
}

ld_err ld_pack_check_mllr(const char *text, const ld_mllr_shape *model, ld_error *err)
{
    const char *p = text;
    int classes, streams;
    if (!next_count(&p, 1, 1000, &classes) || !next_count(&p, 1, 1000, &streams))
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "mllr_matrix does not start with its number of classes and of streams");
    if (classes != 1)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "mllr_matrix has %d classes; only one-class transforms can be applied", classes);
    if (model ? streams != model->n_streams : streams > LD_MLLR_MAX_STREAMS)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "mllr_matrix has %d feature streams; the model has %d",
                            streams, model ? model->n_streams : LD_MLLR_MAX_STREAMS);
    for (int s = 0; s < streams; s++) {
        int len;
        /* checked before anything reads the stream: the length sizes its allocation */
        if (!next_count(&p, 1, LD_MLLR_MAX_VECLEN, &len))
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                "mllr_matrix stream %d: no vector length from 1 to %d", s + 1, LD_MLLR_MAX_VECLEN);
        if (model && len != model->veclen[s])
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                "mllr_matrix stream %d has vector length %d; the model's is %d", s + 1, len,
                                model->veclen[s]);
        if (check_stream(&p, s, len, err) != LD_OK)
            return LD_ERR_INVALID_PARAMETER;
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "mllr_matrix has more values than its header says");
    return LD_OK;
}
