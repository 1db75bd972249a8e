/* The pool's model packs (asr/packs.h): loading, picking one per request or
 * stream, and the list clients see in errors. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "asr/model.h"
#include "asr/pool_internal.h"
#include "util/log.h"

#define MAX_PACKS 64

static ld_pack *add(ld_pool *p, const char *name, const char *lang)
{
    for (int i = 0; i < p->n_packs; i++) /* same name, same language: replaced */
        if (!strcmp(p->packs[i].name, name) && !strcmp(p->packs[i].language, lang)) {
            if (p->packs[i].transform && p->engine->transform_free)
                p->engine->transform_free(p->packs[i].transform);
            p->packs[i].transform = NULL;
            return &p->packs[i];
        }
    if (p->n_packs == MAX_PACKS)
        return NULL;
    ld_pack *k = &p->packs[p->n_packs++];
    snprintf(k->name, sizeof k->name, "%s", name);
    snprintf(k->language, sizeof k->language, "%s", lang);
    return k;
}

static int lang_of(ld_pool *p, const char *code)
{
    for (int i = 0; i < p->n_langs; i++)
        if (!strcmp(p->langs[i].code, code))
            return i;
    return -1;
}

static void load_one(ld_pool *p, const char *name, const char *mllr, const float *cmn, const char *lang,
                     const char *where)
{
    ld_error e = {0};
    if (lang_of(p, lang) < 0) {
        ld_log(LD_LOG_ERROR, "model pack '%s' skipped: language '%s' is not served (%s)", name, lang, where);
        return;
    }
    ld_engine_model m = ld_pool_engine_model(p, lang_of(p, lang));
    void *t = p->engine->transform_new ? p->engine->transform_new(&m, mllr, cmn, &e) : NULL;
    if (!t) {
        ld_log(LD_LOG_ERROR, "model pack '%s' skipped: %s (%s)", name,
               p->engine->transform_new ? e.msg : "the engine has no adaptation", where);
        return;
    }
    ld_pack *k = add(p, name, lang);
    if (!k) {
        p->engine->transform_free(t);
        ld_log(LD_LOG_ERROR, "model pack '%s' skipped: more than %d packs (%s)", name, MAX_PACKS, where);
        return;
    }
    k->transform = t;
    ld_log(LD_LOG_INFO, "model pack '%s' (%s) loaded from %s", name, lang, where);
}

/* Whether <models>/name is meant as a pack. Hidden entries, files and two-letter
 * language folders (languages.c) are not; another folder whose name cannot be
 * a pack is said so, or an operator would wonder why model=Name is unknown. */
static bool pack_folder(const char *name, const char *path)
{
    struct stat st;
    if (name[0] == '.' || stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return false;
    if (strlen(name) == 2 && islower((unsigned char)name[0]) && islower((unsigned char)name[1]))
        return false;
    if (ld_pack_name_ok(name))
        return true;
    ld_log(LD_LOG_WARNING,
           "folder '%s' skipped: not a model pack name (3-31 characters a-z 0-9 _ -, starting with a letter, not "
           "auto or general) nor a two-letter language (%s)",
           name, path);
    return false;
}

ld_err ld_pool_load_packs(ld_pool *p, const char *models_dir, ld_error *err)
{
    p->packs = calloc(MAX_PACKS, sizeof *p->packs);
    if (!p->packs)
        return ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
    for (int i = 0; i < p->n_langs; i++)
        add(p, "general", p->langs[i].code);
    /* The built-in transforms fit Debian's en-us model only. */
    int en = lang_of(p, "en");
    for (int b = 0; en >= 0 && ld_model_is_default(p->langs[en].model_dir) && b < ld_packs_builtin_count; b++) {
        json_error_t je;
        json_t *j = json_loads(ld_packs_builtin[b].json, 0, &je);
        json_t *c = j ? json_object_get(j, "cmn_init") : NULL;
        float cmn[13];
        bool cmn_ok = json_array_size(c) == 13;
        for (size_t i = 0; cmn_ok && i < 13; i++)
            cmn[i] = (float)json_number_value(json_array_get(c, i));
        load_one(p, ld_packs_builtin[b].name, ld_packs_builtin[b].mllr, cmn_ok ? cmn : NULL, "en", "(built in)");
        json_decref(j);
    }
    /* noisy: the pool denoises the audio (audio/denoise.h) and decodes it with the
     * model as it is; an adapted transform did not help unseen speakers (docs/engine.md).
     * An operator pack named noisy (listend adapt --denoise) replaces it. */
    for (int i = 0; i < p->n_langs; i++)
        add(p, "noisy", p->langs[i].code);
    if (!models_dir || !*models_dir)
        return LD_OK;
    DIR *d = opendir(models_dir);
    if (!d)
        return LD_OK; /* ld_pool_find_languages already reported it */
    for (struct dirent *e; (e = readdir(d));) {
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/%s", models_dir, e->d_name);
        if (!pack_folder(e->d_name, dir))
            continue;
        char *mllr = NULL, lang[16];
        float cmn[13];
        bool cmn_ok;
        ld_error e2;
        if (ld_pack_read(dir, &mllr, cmn, &cmn_ok, lang, &e2) == LD_OK)
            load_one(p, e->d_name, mllr, cmn_ok ? cmn : NULL, lang, dir);
        else
            ld_log(LD_LOG_ERROR, "model pack '%s' skipped: %s (%s)", e->d_name, e2.msg, dir);
        free(mllr);
    }
    closedir(d);
    return LD_OK;
}

void ld_pool_free_packs(ld_pool *p)
{
    for (int i = 0; p->packs && i < p->n_packs; i++)
        if (p->packs[i].transform)
            p->engine->transform_free(p->packs[i].transform);
    free(p->packs);
    p->packs = NULL;
    p->n_packs = 0;
}

/* Pack names are lower case (ld_pack_name_ok), so any case of one names it.
 * An unknown language (lang < 0) has none. */
static int find(ld_pool *p, int lang, const char *name)
{
    for (int i = 0; lang >= 0 && i < p->n_packs; i++)
        if (!strcmp(p->packs[i].language, p->langs[lang].code) && !strcasecmp(p->packs[i].name, name))
            return i;
    return -1;
}

/* `model` as a client sent it, resolved: a pack's own name first (an operator's
 * "meeting-room" must not become Deepgram's "meeting" alias), then another API's
 * alias; "auto" (any case) or NULL when the audio decides. */
static const char *resolve(ld_pool *p, int lang, const char *model, int *pack)
{
    *pack = model && *model ? find(p, lang, model) : -1;
    if (*pack >= 0)
        return p->packs[*pack].name;
    const char *m = model && *model ? ld_pack_alias(model) : "auto";
    return strcasecmp(m, "auto") ? m : NULL;
}

bool ld_pool_model_is_auto(ld_pool *p, const char *lang, const char *model)
{
    int k;
    return !resolve(p, lang_of(p, lang ? lang : "en"), model, &k);
}

int ld_pool_pack_pick(ld_pool *p, int lang, const char *model, bool narrowband, double snr_db, ld_error *err)
{
    int k = -1;
    const char *m = resolve(p, lang, model, &k);
    if (k >= 0)
        return k;
    if (!m) {
        k = narrowband ? find(p, lang, "telephony") : snr_db < LD_PACK_NOISY_SNR_DB ? find(p, lang, "noisy") : -1;
        if (k < 0)
            k = find(p, lang, "general");
    } else {
        k = find(p, lang, m);
    }
    if (k >= 0)
        return k;
    char list[300] = "auto";
    for (int i = 0; i < p->n_packs; i++)
        if (!strcmp(p->packs[i].language, p->langs[lang].code))
            snprintf(list + strlen(list), sizeof list - strlen(list), ", %s", p->packs[i].name);
    ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                 "Invalid value for parameter 'model': unknown model '%s' for "
                 "language '%s'; available: %s",
                 model, p->langs[lang].code, list);
    return -1;
}

static int lang_index_live(ld_pool *p, const char *code)
{
    int i = lang_of(p, code ? code : "en");
    return i >= 0 && p->langs[i].live > 0 ? i : -1;
}

bool ld_pool_check_model(ld_pool *p, const char *lang, const char *model, ld_error *err)
{
    int l = lang_index_live(p, lang);
    return l < 0 ||
           ld_pool_pack_pick(p, l, model, false, 99.0, err) >= 0; /* unknown language: reported elsewhere */
}

json_t *ld_pool_models(ld_pool *p, const char *lang)
{
    json_t *a = json_array();
    json_array_append_new(a, json_string("auto"));
    for (int i = 0; i < p->n_packs; i++)
        if (!lang || !strcmp(p->packs[i].language, lang))
            json_array_append_new(a, json_string(p->packs[i].name));
    return a;
}

ld_err ld_pool_stream_use_keywords(ld_pool *p, ld_stream_decoder *sd, const char *keywords, ld_error *err)
{
    (void)p;
    if (!sd->ops->decoder_vocab)
        return keywords && *keywords ? ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                                    "Invalid parameter 'keywords': not supported by this engine")
                                     : LD_OK;
    return sd->ops->decoder_vocab(sd->dec, keywords ? keywords : "", err);
}

/* The pack a stream decoder would use (index), or -1 with err set. */
static int stream_pick(ld_pool *p, const ld_stream_decoder *sd, const char *model, bool narrowband, double snr_db,
                       ld_error *err)
{
    int l = lang_of(p, sd->language);
    if (l < 0) {
        ld_error_set(err, LD_ERR_INTERNAL, "stream decoder of an unknown language");
        return -1;
    }
    /* the stream's own threshold, on the scale of the upload's */
    double as_upload = snr_db + (LD_PACK_NOISY_SNR_DB - LD_PACK_NOISY_SNR_DB_STREAM);
    return ld_pool_pack_pick(p, l, model, narrowband, as_upload, err);
}

const char *ld_pool_stream_pick_model(ld_pool *p, const ld_stream_decoder *sd, const char *model, bool narrowband,
                                      double snr_db, ld_error *err)
{
    int k = stream_pick(p, sd, model, narrowband, snr_db, err);
    return k < 0 ? NULL : p->packs[k].name;
}

ld_err ld_pool_stream_use_model(ld_pool *p, ld_stream_decoder *sd, const char *model, bool narrowband,
                                double snr_db, ld_error *err)
{
    int k = stream_pick(p, sd, model, narrowband, snr_db, err);
    if (k < 0)
        return err->code;
    if (sd->ops->decoder_use && sd->ops->decoder_use(sd->dec, p->packs[k].transform, err) != LD_OK)
        return err->code;
    snprintf(sd->model, sizeof sd->model, "%s", p->packs[k].name);
    return LD_OK;
}
