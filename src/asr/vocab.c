/* Keyword lists, the operator's vocabulary file, and flite letter-to-sound. */
#include "asr/vocab.h"

#include <ctype.h>
#include <errno.h>
#include <flite/flite.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* libflite_cmulex's entry point; its header (cmu_lex.h) is not installed. */
cst_lexicon *cmu_lex_init(void);

#define BAD "Invalid value for parameter 'keywords': "

/* The en-us acoustic model's phones (its mdef, without SIL). */
static const char *const cmu_phones[] = {"AA", "AE", "AH", "AO", "AW", "AY", "B",  "CH", "D",  "DH",
                                         "EH", "ER", "EY", "F",  "G",  "HH", "IH", "IY", "JH", "K",
                                         "L",  "M",  "N",  "NG", "OW", "OY", "P",  "R",  "S",  "SH",
                                         "T",  "TH", "UH", "UW", "V",  "W",  "Y",  "Z",  "ZH"};

static bool is_cmu_phone(const char *p, size_t n)
{
    for (size_t i = 0; i < sizeof cmu_phones / sizeof *cmu_phones; i++)
        if (strlen(cmu_phones[i]) == n && !strncmp(cmu_phones[i], p, n))
            return true;
    return false;
}

bool ld_vocab_valid_pron(const char *phones)
{
    size_t count = 0;
    for (const char *p = phones; *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (!n)
            break;
        if (!is_cmu_phone(p, n))
            return false;
        count++;
        p += n;
    }
    return count > 0;
}

double ld_vocab_boost_log10(int boost) { return -5.0 + 0.4 * (boost - 1); }

/* Word check and lower-casing; returns NULL or a reason. */
static const char *check_word(const char *w, size_t n, char *out)
{
    if (n == 0)
        return "empty word";
    if (n > LD_VOCAB_MAX_WORD_LEN)
        return "longer than 32 letters";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)w[i];
        bool inner_apostrophe = c == '\'' && i > 0 && i + 1 < n && w[i - 1] != '\'';
        if (!(c < 128 && isalpha(c)) && !inner_apostrophe)
            return "only letters (and an apostrophe inside a word) are allowed";
        out[i] = (char)tolower(c);
    }
    out[n] = 0;
    return NULL;
}

/* Boost text -> 1..10 (rounded); -1 when invalid. Plain decimals only (2, 1.5):
 * strtod alone also took 0x5, 1e1, +5 and " 5". */
static int parse_boost(const char *s)
{
    if (!*s || s[strspn(s, "0123456789.")])
        return -1;
    char *end;
    errno = 0;
    double b = strtod(s, &end);
    if (errno || *end || !isfinite(b) || b < 1 || b > LD_VOCAB_MAX_BOOST)
        return -1;
    return (int)lround(b);
}

/* Splits "word[:boost]" into entry e; NULL or the reason. */
static const char *parse_item(const char *item, size_t len, ld_vocab_entry *e)
{
    const char *colon = memchr(item, ':', len);
    size_t wn = colon ? (size_t)(colon - item) : len;
    const char *why = check_word(item, wn, e->word);
    if (why)
        return why;
    e->boost = 1;
    if (colon) {
        char b[32];
        size_t bn = len - wn - 1;
        if (bn >= sizeof b)
            return "the boost must be a number from 1 to 10";
        memcpy(b, colon + 1, bn);
        b[bn] = 0;
        if ((e->boost = parse_boost(b)) < 0)
            return "the boost must be a number from 1 to 10 (lowering a word is not supported)";
    }
    e->pron[0] = 0;
    return NULL;
}

size_t ld_vocab_parse_list(const char *list, ld_vocab_entry *out, size_t max)
{
    size_t n = 0;
    for (const char *p = list; *p && n < max;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        if (!len)
            break;
        if (!parse_item(p, len, &out[n]))
            n++;
        p += len;
    }
    return n;
}

/* Puts entry e into the canonical list, replacing an earlier entry of its word;
 * errors name `param`, the option the client spelt (keywords or keyterm). */
static ld_err insert(char *list, size_t listsz, const ld_vocab_entry *e, const char *param, ld_error *err)
{
    ld_vocab_entry *cur = malloc(LD_VOCAB_MAX_WORDS * sizeof *cur);
    if (!cur)
        return ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
    size_t n = ld_vocab_parse_list(list, cur, LD_VOCAB_MAX_WORDS), k = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(cur[i].word, e->word))
            cur[k++] = cur[i];
    ld_err rc = LD_OK;
    if (k >= LD_VOCAB_MAX_WORDS) {
        rc = ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                          "Invalid value for parameter '%s': '%s': more than %d keywords", param, e->word,
                          LD_VOCAB_MAX_WORDS);
    } else {
        cur[k++] = *e;
        char *tmp = malloc(listsz);
        size_t off = 0;
        for (size_t i = 0; tmp && i < k && rc == LD_OK; i++) {
            int w = snprintf(tmp + off, listsz - off, "%s%s:%d", i ? " " : "", cur[i].word, cur[i].boost);
            if (w < 0 || (size_t)w >= listsz - off)
                rc = ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                  "Invalid value for parameter '%s': '%s': the keyword list is too long", param,
                                  e->word);
            else
                off += (size_t)w;
        }
        if (!tmp)
            rc = ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        else if (rc == LD_OK)
            memcpy(list, tmp, off + 1);
        free(tmp);
    }
    free(cur);
    return rc;
}

ld_err ld_vocab_add_item(char *list, size_t listsz, const char *item, ld_error *err)
{
    while (*item == ' ')
        item++;
    size_t len = strlen(item);
    while (len && item[len - 1] == ' ')
        len--;
    /* a phrase ("new york:3"): every word with the one boost after the colon;
     * all words are checked before any is added */
    const char *colon = memchr(item, ':', len);
    size_t pn = colon ? (size_t)(colon - item) : len;
    const char *boost = colon ? colon : item + len;
    size_t bn = (size_t)(item + len - boost);
    for (int pass = 0; pass < 2; pass++) {
        size_t off = 0, words = 0;
        for (;;) {
            while (off < pn && item[off] == ' ')
                off++;
            size_t wn = 0;
            while (off + wn < pn && item[off + wn] != ' ')
                wn++;
            if (!wn && words)
                break;
            char one[LD_VOCAB_MAX_WORD_LEN + 40];
            snprintf(one, sizeof one, "%.*s%.*s",
                     (int)(wn <= LD_VOCAB_MAX_WORD_LEN ? wn : LD_VOCAB_MAX_WORD_LEN + 1), item + off,
                     (int)(bn < 32 ? bn : 32), boost);
            ld_vocab_entry e;
            const char *why = parse_item(one, strlen(one), &e);
            if (why)
                return ld_error_set(err, LD_ERR_INVALID_PARAMETER, BAD "'%.*s': %s", (int)(len > 40 ? 40 : len),
                                    item, why);
            ld_err rc = pass ? insert(list, listsz, &e, "keywords", err) : LD_OK;
            if (rc)
                return rc;
            words++;
            off += wn;
        }
    }
    return LD_OK;
}

/* Characters of a key-term token: letters, digits, apostrophes and any
 * non-ASCII byte (so "café" stays one token, and is skipped, not cut). */
static bool term_char(char c) { return isalnum((unsigned char)c) || c == '\'' || (unsigned char)c >= 128; }

ld_err ld_vocab_add_term(char *list, size_t listsz, const char *phrase, ld_error *err)
{
    for (const char *p = phrase; *p;) {
        while (*p && !term_char(*p))
            p++;
        size_t n = 0;
        while (p[n] && term_char(p[n]))
            n++;
        size_t s = 0; /* quotes around a word are not part of it */
        while (s < n && p[s] == '\'')
            s++;
        size_t e = n;
        while (e > s && p[e - 1] == '\'')
            e--;
        char w[LD_VOCAB_MAX_WORD_LEN + 1];
        ld_vocab_entry ent;
        bool letters = e > s && e - s <= LD_VOCAB_MAX_WORD_LEN;
        for (size_t i = s; letters && i < e; i++)
            letters = !isdigit((unsigned char)p[i]);
        if (letters) { /* a token with digits ("4o", "911") is no dictionary word: skipped */
            snprintf(w, sizeof w, "%.*s", (int)(e - s), p + s);
            if (!parse_item(w, strlen(w), &ent)) {
                ld_err rc = insert(list, listsz, &ent, "keyterm", err);
                if (rc)
                    return rc;
            }
        }
        p += n;
    }
    if (!*phrase)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Invalid value for parameter 'keyterm': empty key term");
    return LD_OK;
}

ld_err ld_vocab_add_items(char *list, size_t listsz, const char *value, ld_error *err)
{
    if (!strchr(value, ','))
        return ld_vocab_add_item(list, listsz, value, err);
    for (const char *p = value;; p++) {
        size_t n = strcspn(p, ",");
        char item[LD_VOCAB_MAX_WORD_LEN + 40];
        snprintf(item, sizeof item, "%.*s", (int)(n < sizeof item ? n : sizeof item - 1), p);
        ld_err rc = ld_vocab_add_item(list, listsz, item, err);
        if (rc)
            return rc;
        p += n;
        if (!*p)
            return LD_OK;
    }
}

ld_err ld_vocab_load_file(const char *path, ld_vocab *v, ld_error *err)
{
    v->e = NULL;
    v->n = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return ld_error_set(err, LD_ERR_INTERNAL, "--vocabulary: cannot open %s: %s", path, strerror(errno));
    /* fopen opens a directory too, and reading it then gives no lines at all:
     * the server started with no vocabulary and no word about it */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return ld_error_set(err, LD_ERR_INTERNAL, "--vocabulary %s is a directory: give the file of words", path);
    }
    char line[1024];
    int lineno = 0;
    ld_err rc = LD_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        char *p = line;
        if (lineno == 1 && !strncmp(p, "\xEF\xBB\xBF", 3)) /* a UTF-8 BOM, as Windows editors save */
            p += 3;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            continue;
        for (char *q = p; *q; q++)
            if (*q == '\t')
                *q = ' ';
        size_t wl = strcspn(p, " ");
        ld_vocab_entry e;
        const char *why = parse_item(p, wl, &e);
        const char *pron = p + wl;
        while (*pron == ' ')
            pron++;
        if (!why && *pron) {
            if (strlen(pron) >= sizeof e.pron || !ld_vocab_valid_pron(pron))
                why = "the pronunciation must be CMU phones such as \"K UW B ER N EH T IY Z\"";
            else
                snprintf(e.pron, sizeof e.pron, "%s", pron);
        }
        if (!why && v->n >= LD_VOCAB_MAX_FILE_WORDS)
            why = "more than 5000 words";
        if (why) {
            rc = ld_error_set(err, LD_ERR_INTERNAL, "--vocabulary %s line %d ('%.40s'): %s", path, lineno, p, why);
            break;
        }
        ld_vocab_entry *ne = realloc(v->e, (v->n + 1) * sizeof *ne);
        if (!ne) {
            rc = ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
            break;
        }
        v->e = ne;
        size_t i = 0; /* a word listed twice: the later line wins */
        while (i < v->n && strcmp(v->e[i].word, e.word))
            i++;
        v->e[i] = e;
        if (i == v->n)
            v->n++;
    }
    if (rc == LD_OK && ferror(f))
        rc = ld_error_set(err, LD_ERR_INTERNAL, "--vocabulary: cannot read %s: %s", path, strerror(errno));
    fclose(f);
    if (rc != LD_OK)
        ld_vocab_free(v);
    return rc;
}

void ld_vocab_free(ld_vocab *v)
{
    free(v->e);
    v->e = NULL;
    v->n = 0;
}

const char *ld_vocab_flite_phone(const char *flite, char *buf, size_t bufsz)
{
    size_t n = strcspn(flite, "0123456789"); /* stress digits */
    if (n == 0 || n >= bufsz || !strcmp(flite, "pau"))
        return NULL;
    if (n == 2 && !strncmp(flite, "ax", 2)) /* schwa: the model has no AX */
        return snprintf(buf, bufsz, "AH"), buf;
    if (n == 3 && !strncmp(flite, "axr", 3))
        return snprintf(buf, bufsz, "ER"), buf;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)toupper((unsigned char)flite[i]);
    buf[n] = 0;
    return is_cmu_phone(buf, n) ? buf : NULL;
}

static pthread_mutex_t lts_mu = PTHREAD_MUTEX_INITIALIZER;
static cst_lexicon *lts_lex;

bool ld_vocab_lts(const char *word, char *out, size_t outsz)
{
    char w[LD_VOCAB_MAX_WORD_LEN + 1];
    size_t n = 0;
    for (const char *p = word; *p && n < sizeof w - 1; p++)
        if (isalpha((unsigned char)*p)) /* "o'neil": flite's rules want letters */
            w[n++] = (char)tolower((unsigned char)*p);
    w[n] = 0;
    if (!n || outsz == 0)
        return false;
    out[0] = 0;
    size_t off = 0;
    bool ok = true;
    pthread_mutex_lock(&lts_mu); /* flite's lexicon is not documented as thread-safe */
    if (!lts_lex)
        lts_lex = cmu_lex_init();
    cst_val *phones = lts_lex ? lex_lookup(lts_lex, w, NULL, NULL) : NULL;
    for (const cst_val *p = phones; p && ok; p = val_cdr(p)) {
        char buf[8];
        const char *ph = ld_vocab_flite_phone(val_string(val_car(p)), buf, sizeof buf);
        if (!ph)
            continue;
        int k = snprintf(out + off, outsz - off, "%s%s", off ? " " : "", ph);
        ok = k > 0 && (size_t)k < outsz - off;
        off += ok ? (size_t)k : 0;
    }
    if (phones)
        delete_val(phones);
    pthread_mutex_unlock(&lts_mu);
    return ok && off > 0;
}
