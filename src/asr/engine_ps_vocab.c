/* Custom vocabulary on a PocketSphinx decoder (asr/vocab.h, docs/engine.md).
 *
 * Why this shape: in Debian's sphinxbase, adding words to the loaded trie
 * language model (ngram_model_add_word, which ps_add_word calls) corrupts it
 * once such a word is decoded as history a few times (measured: a crash in
 * lm_trie_score after the fifth added word). So the big LM is never changed.
 * Instead a small unigram LM of placeholder words is interpolated with it:
 * "__kw<boost>_<slot>" for every boost 1..10 and slot, with probability
 * 10^ld_vocab_boost_log10(boost). A request's words get a slot each; its
 * dictionary is the model's plus lines giving the placeholders the words'
 * pronunciations (from the dictionary, the operator file, or flite's
 * letter-to-sound rules), plus the word itself for words the dictionary lacks
 * (so a word the big LM knows keeps its context probability). The decoded
 * placeholder is mapped back to the word. Interpolation adds probabilities
 * (weights 1 and 1) and the keyword LM gives every other word probability 0, so
 * a known word's LM score is raised, never lowered.
 *
 * Switching costs one ps_load_dict (dictionary parse + search rebuild, ≈ 0.2–0.3 s, 0.6 s the first time):
 * done only when the wanted list differs from the decoder's current one; a
 * decoder back on the plain list reloads the model's own dictionary with the
 * keyword LM deselected, so its results are exactly those of a fresh decoder. */
#include <pocketsphinx.h>
#include <sphinxbase/ngram_model.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asr/engine_ps.h"
#include "asr/vocab.h"

#define KW_LM_NAME "listend-keywords"

struct ld_ps_vocab {
    ps_decoder_t *ps;
    char dict[1024];      /* the model's dictionary */
    const ld_vocab *base; /* operator's words, for every request (may be NULL) */
    size_t n_slots;       /* placeholders per boost level */
    char main_name[64];   /* the big LM's name in the search's set */
    bool kw_loaded;       /* keyword LM added to the set */
    char *current;        /* request list in effect; NULL = none applied yet */
    char **slot_word;     /* slot -> word, for the list in effect */
    size_t n_slot_word;
    char **added; /* words the model's dictionary lacks, added by the list in effect */
    size_t n_added;
};

static const char *tmp_dir(void)
{
    const char *d = getenv("TMPDIR");
    return d && *d ? d : "/tmp";
}

static void free_words(char **w, size_t n)
{
    for (size_t i = 0; w && i < n; i++)
        free(w[i]);
    free(w);
}

ld_ps_vocab *ld_ps_vocab_new(ps_decoder_t *ps, const char *dict, const ld_vocab *base)
{
    ld_ps_vocab *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->ps = ps;
    snprintf(v->dict, sizeof v->dict, "%s", dict);
    v->base = base && base->n ? base : NULL;
    v->n_slots = LD_VOCAB_MAX_WORDS + (v->base ? v->base->n : 0);
    return v;
}

void ld_ps_vocab_free(ld_ps_vocab *v)
{
    if (!v)
        return;
    free(v->current);
    free_words(v->slot_word, v->n_slot_word);
    free_words(v->added, v->n_added);
    free(v);
}

/* Adds the placeholder LM to the decoder's LM set (once). */
static ld_err load_kw_lm(ld_ps_vocab *v, ld_error *err)
{
    if (v->kw_loaded)
        return LD_OK;
    ngram_model_t *set = ps_get_lm(v->ps, "_default");
    if (!set)
        return ld_error_set(err, LD_ERR_INTERNAL, "keywords: the decoder has no language model");
    ngram_model_set_iter_t *it = ngram_model_set_iter(set);
    const char *name = NULL;
    if (it) {
        ngram_model_set_iter_model(it, &name);
        ngram_model_set_iter_free(it);
    }
    if (!name)
        return ld_error_set(err, LD_ERR_INTERNAL, "keywords: the decoder's language model is not a set");
    snprintf(v->main_name, sizeof v->main_name, "%s", name);

    char path[1100];
    snprintf(path, sizeof path, "%s/listend-kwlm-XXXXXX", tmp_dir());
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return ld_error_set(err, LD_ERR_INTERNAL, "keywords: cannot write a temporary file in %s", tmp_dir());
    }
    fprintf(f, "\\data\\\nngram 1=%zu\n\n\\1-grams:\n", v->n_slots * LD_VOCAB_MAX_BOOST);
    for (int b = 1; b <= LD_VOCAB_MAX_BOOST; b++)
        for (size_t s = 0; s < v->n_slots; s++)
            fprintf(f, "%.4f __kw%d_%zu\n", ld_vocab_boost_log10(b), b, s);
    fprintf(f, "\n\\end\\\n");
    bool ok = fclose(f) == 0;
    cmd_ln_t *cfg = ps_get_config(v->ps);
    ngram_model_t *kw = ok ? ngram_model_read(cfg, path, NGRAM_ARPA, ps_get_logmath(v->ps)) : NULL;
    unlink(path);
    if (!kw)
        return ld_error_set(err, LD_ERR_INTERNAL, "keywords: cannot build the keyword language model");
    /* the set scores each model with that model's weights */
    ngram_model_apply_weights(kw, cmd_ln_float32_r(cfg, "-lw"), cmd_ln_float32_r(cfg, "-wip"));
    if (!ngram_model_set_add(set, kw, KW_LM_NAME, 1.0f, FALSE)) {
        ngram_model_free(kw);
        return ld_error_set(err, LD_ERR_INTERNAL, "keywords: cannot add the keyword language model");
    }
    ngram_model_set_select(set, v->main_name);
    v->kw_loaded = true;
    return LD_OK;
}

static bool in_list(char *const *w, size_t n, const char *word)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(w[i], word))
            return true;
    return false;
}

/* The model dictionary's pronunciations of `word` ("word", "word(2)", …), one
 * per line into prons (malloc'd), or NULL when the model's dictionary lacks it. */
static char *known_prons(ld_ps_vocab *v, const char *word)
{
    if (in_list(v->added, v->n_added, word))
        return NULL; /* in the dictionary only because the current list added it */
    char *out = NULL;
    size_t len = 0;
    for (int alt = 1; alt <= 9; alt++) {
        char key[LD_VOCAB_MAX_WORD_LEN + 8];
        if (alt == 1)
            snprintf(key, sizeof key, "%s", word);
        else
            snprintf(key, sizeof key, "%s(%d)", word, alt);
        char *p = ps_lookup_word(v->ps, key);
        if (!p)
            break;
        size_t n = strlen(p);
        char *no = realloc(out, len + n + 2);
        if (no) {
            out = no;
            memcpy(out + len, p, n);
            out[len + n] = '\n';
            out[len + n + 1] = 0;
            len += n + 1;
        }
        free(p);
    }
    return out;
}

static bool copy_file(const char *from, FILE *to)
{
    FILE *f = fopen(from, "rb");
    if (!f)
        return false;
    char buf[65536];
    size_t n;
    bool ok = true;
    while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0)
        ok = fwrite(buf, 1, n, to) == n;
    fclose(f);
    return ok;
}

/* Back to the model as it is: the keyword LM deselected, its own dictionary. */
static ld_err use_plain(ld_ps_vocab *v, ld_error *err)
{
    if (v->kw_loaded)
        ngram_model_set_select(ps_get_lm(v->ps, "_default"), v->main_name);
    free_words(v->slot_word, v->n_slot_word);
    free_words(v->added, v->n_added);
    v->slot_word = v->added = NULL;
    v->n_slot_word = v->n_added = 0;
    free(v->current);
    v->current = NULL;
    if (ps_load_dict(v->ps, v->dict, NULL, NULL) < 0)
        return ld_error_set(err, LD_ERR_INTERNAL, "keywords: cannot reload the dictionary %s", v->dict);
    v->current = strdup("");
    return LD_OK;
}

ld_err ld_ps_vocab_use(ld_ps_vocab *v, const char *keywords, ld_error *err)
{
    if (!keywords)
        keywords = "";
    if (v->current && !strcmp(v->current, keywords))
        return LD_OK;
    if (!v->current && !*keywords && !v->base)
        return LD_OK; /* a fresh decoder is already plain */

    ld_vocab_entry *req = calloc(LD_VOCAB_MAX_WORDS, sizeof *req);
    size_t n_req = req ? ld_vocab_parse_list(keywords, req, LD_VOCAB_MAX_WORDS) : 0;
    size_t n_base = v->base ? v->base->n : 0;
    if (!req || (n_req == 0 && n_base == 0)) {
        free(req);
        return req ? use_plain(v, err) : ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
    }
    ld_err rc = load_kw_lm(v, err);
    char path[1100];
    snprintf(path, sizeof path, "%s/listend-dict-XXXXXX", tmp_dir());
    int fd = rc == LD_OK ? mkstemp(path) : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (rc == LD_OK && !f) {
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        rc = ld_error_set(err, LD_ERR_INTERNAL, "keywords: cannot write a temporary file in %s", tmp_dir());
    }
    char **slot_word = calloc(n_base + n_req, sizeof *slot_word);
    char **added = calloc(n_base + n_req, sizeof *added);
    size_t n_added = 0;
    if (rc == LD_OK && (!slot_word || !added))
        rc = ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
    bool ok = rc == LD_OK && copy_file(v->dict, f);
    for (size_t i = 0; ok && i < n_base + n_req; i++) {
        const ld_vocab_entry *e = i < n_base ? &v->base->e[i] : &req[i - n_base];
        char lts[LD_VOCAB_PRON_MAX];
        char *prons = known_prons(v, e->word);
        bool known = prons != NULL; /* then the word itself is in the dictionary already */
        if (e->pron[0]) {           /* the operator's pronunciation wins */
            free(prons);
            prons = strdup(e->pron);
        } else if (!prons && ld_vocab_lts(e->word, lts, sizeof lts))
            prons = strdup(lts);
        if (!prons)
            continue; /* no pronunciation at all: the word cannot be decoded */
        slot_word[i] = strdup(e->word);
        if (!known && !in_list(added, n_added, e->word)) { /* the word itself, for the big LM */
            fprintf(f, "%s %.*s\n", e->word, (int)strcspn(prons, "\n"), prons);
            added[n_added++] = strdup(e->word);
        }
        int alt = 1;
        for (char *p = prons; *p; alt++) {
            size_t n = strcspn(p, "\n");
            if (alt == 1)
                fprintf(f, "__kw%d_%zu %.*s\n", e->boost, i, (int)n, p);
            else
                fprintf(f, "__kw%d_%zu(%d) %.*s\n", e->boost, i, alt, (int)n, p);
            p += n + (p[n] == '\n');
        }
        free(prons);
    }
    if (f && fclose(f) != 0)
        ok = false;
    if (rc == LD_OK && !ok)
        rc = ld_error_set(err, LD_ERR_INTERNAL, "keywords: cannot write the request's dictionary");
    if (rc == LD_OK) {
        static const float weights[2] = {1.0f, 1.0f};
        const char *names[2] = {v->main_name, KW_LM_NAME};
        ngram_model_set_interp(ps_get_lm(v->ps, "_default"), names, weights);
        if (ps_load_dict(v->ps, path, NULL, NULL) < 0)
            rc = ld_error_set(err, LD_ERR_INTERNAL, "keywords: the speech engine refused the dictionary");
    }
    if (f)
        unlink(path);
    free(req);
    if (rc != LD_OK) {
        free_words(slot_word, n_base + n_req);
        free_words(added, n_added);
        ld_error keep = err ? *err : (ld_error){0};
        use_plain(v, NULL); /* never leave a half-switched decoder */
        if (err)
            *err = keep;
        return rc;
    }
    free_words(v->slot_word, v->n_slot_word);
    free_words(v->added, v->n_added);
    v->slot_word = slot_word;
    v->n_slot_word = n_base + n_req;
    v->added = added;
    v->n_added = n_added;
    free(v->current);
    v->current = strdup(keywords);
    return LD_OK;
}

const char *ld_ps_vocab_word(const ld_ps_vocab *v, const char *decoded)
{
    int boost;
    size_t slot;
    if (!v || strncmp(decoded, "__kw", 4) || sscanf(decoded + 4, "%d_%zu", &boost, &slot) != 2)
        return NULL;
    return slot < v->n_slot_word ? v->slot_word[slot] : NULL;
}
