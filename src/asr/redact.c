/* Redaction (asr/redact.h): rules over the recognizer's lower-case words. The
 * recognizer spells nothing, so every entity is found in its spoken form:
 * numbers as number words, e-mail addresses as "name at host dot com", names
 * after the phrases people introduce themselves or others with. */
#include "asr/redact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "asr/numerals.h"

typedef enum { FIRSTNAME, LASTNAME, PHONENUMBER, SSN, EMAIL, CARD, CVV, EXPIRY, ACCOUNT, NUMBER } label;
static const char *const labels[LD_REDACT_N_LABELS] = {
    "FIRSTNAME",        "LASTNAME",      "PHONENUMBER",      "SSN",           "EMAIL",
    "CREDITCARDNUMBER", "CREDITCARDCVV", "CREDITCARDEXPIRY", "ACCOUNTNUMBER", "NUMBER"};

/* generated/names.c (cmake/names.awk over /usr/share/dict/american-english) */
typedef struct {
    const char *w;
    unsigned char name_only;
} ld_name_entry;
extern const ld_name_entry ld_names[];
extern const size_t ld_names_count;

static int cmp_name(const void *k, const void *e) { return strcmp(k, ((const ld_name_entry *)e)->w); }

bool ld_redact_is_name(const char *word, bool *name_only)
{
    const ld_name_entry *e = bsearch(word, ld_names, ld_names_count, sizeof *ld_names, cmp_name);
    if (name_only)
        *name_only = e && e->name_only;
    return e != NULL;
}

bool ld_redact_is_token(const char *w)
{
    size_t n = strlen(w);
    return n > 4 && w[0] == '[' && w[n - 1] == ']' && strchr(w, '_');
}

static bool in(const char *w, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(w, *set))
            return true;
    return false;
}

/* Whether the phrase (space-separated words) ends just before words[i]. */
static bool cue(const char *const *w, size_t i, const char *phrase)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", phrase);
    char *parts[6];
    size_t k = 0;
    for (char *save = NULL, *s = strtok_r(buf, " ", &save); s && k < 6; s = strtok_r(NULL, " ", &save))
        parts[k++] = s;
    if (k > i)
        return false;
    for (size_t q = 0; q < k; q++)
        if (strcmp(w[i - k + q], parts[q]))
            return false;
    return true;
}

static bool any_cue(const char *const *w, size_t i, const char *const *phrases, size_t within)
{
    for (size_t back = 0; back <= within && back <= i; back++)
        for (const char *const *p = phrases; *p; p++)
            if (cue(w, i - back, *p))
                return true;
    return false;
}

/* Digits spoken in words[a, b): a digit string or numbers (asr/numerals.h);
 * a lone digit word counts as its digit here (inside a run it is one). */
static const char *const digit_words[] = {"zero", "one",   "two",   "three", "four", "five",
                                          "six",  "seven", "eight", "nine",  "oh",   NULL};

/* Whether words[a, b) are read digit by digit, as card numbers are. */
static bool spelled_out(const char *const *w, size_t a, size_t b)
{
    for (size_t i = a; i < b; i++)
        if (!in(w[i], digit_words))
            return false;
    return true;
}

static size_t count_digits(const char *const *w, size_t a, size_t b)
{
    ld_numeral found[32];
    size_t m = ld_numerals_parse(w + a, b - a, found, 32), digits = 0, covered = 0;
    for (size_t q = 0; q < m; q++) {
        digits += strlen(found[q].digits);
        covered += found[q].last - found[q].first + 1;
    }
    if (covered < b - a) /* words the parser left as words: lone digits, "oh"s between cardinals */
        for (size_t i = a; i < b; i++) {
            bool inside = false;
            for (size_t q = 0; q < m; q++)
                inside |= i - a >= found[q].first && i - a <= found[q].last;
            digits += !inside && in(w[i], digit_words);
        }
    return digits;
}

static const char *const exp_cues[] = {"expires", "expiry",        "expiration", "expire", "expiring",
                                       "exp",     "valid through", "valid thru", NULL};

/* The end (exclusive) of the run of number words from a: pauses shorter than
 * the run gap between them, "and" only inside. */
static size_t run_end(const char *const *w, const double *gap, size_t a, size_t stop)
{
    size_t j = a + 1;
    while (j < stop && ld_numerals_word(w[j]) && (!gap || gap[j] < LD_REDACT_RUN_GAP))
        j++;
    while (j > a + 1 && !strcmp(w[j - 1], "and"))
        j--;
    return j;
}

static int classify_number(unsigned kinds, const char *const *w, size_t a, size_t b)
{
    size_t digits = count_digits(w, a, b);
    static const char *const cvv_cues[] = {"cvv",
                                           "cvc",
                                           "c v v",
                                           "security code",
                                           "verification code",
                                           "card verification",
                                           "three digit code",
                                           "code on the back",
                                           NULL};
    static const char *const ssn_cues[] = {"social security", "social", "ssn", "s s n", NULL};
    bool pci = kinds & LD_REDACT_PCI, pii = kinds & LD_REDACT_PII, ssn = pii || (kinds & LD_REDACT_SSN);
    if (pci && digits >= 3 && digits <= 4 && any_cue(w, a, cvv_cues, 3))
        return CVV;
    if (pci && digits >= 3 && digits <= 6 && any_cue(w, a, exp_cues, 3))
        return EXPIRY;
    if (ssn && (digits == 9 || digits == 4) && any_cue(w, a, ssn_cues, 4))
        return SSN;
    if (pci && digits >= 12 && digits <= 19)
        return CARD;
    if (ssn && digits == 9)
        return SSN;
    if (pii && digits >= 7)
        return digits <= 15 ? PHONENUMBER : ACCOUNT;
    /* a card read in groups: in a stream each group may be a final of its own
     * (a pause ends an utterance), so any group read digit by digit is hidden */
    if (pci && digits >= 4 && spelled_out(w, a, b))
        return CARD;
    if ((kinds & LD_REDACT_NUMBERS) && digits >= 3)
        return NUMBER;
    return -1;
}

static void take(ld_redaction *out, size_t *k, size_t max, size_t first, size_t last, int lab)
{
    if (*k >= max)
        return;
    out[*k] = (ld_redaction){.first = first, .last = last, .label = lab};
    (*k)++;
}

/* "<user> at <host> dot <tld>": the e-mail ending at words[i] ("dot", tld at i+1),
 * starting at lo or later (after the previous one). */
static bool email_at(const char *const *w, size_t n, size_t lo, size_t i, size_t *first, size_t *last)
{
    static const char *const tlds[] = {"com", "org",  "net", "edu", "gov", "io", "co", "us",
                                       "uk",  "info", "biz", "me",  "ai",  "ca", "de", NULL};
    static const char *const joins[] = {"dot", "underscore", "dash", "hyphen", NULL};
    /* where an address starts when its "at" was not heard as such ("had", "that"): after these */
    static const char *const before[] = {"to",    "is",   "email",   "mail",  "address", "me",   "us",
                                         "write", "send", "contact", "reach", "was",     "it's", NULL};
    if (strcmp(w[i], "dot") || i + 1 >= n || !in(w[i + 1], tlds) || i <= lo)
        return false;
    size_t at = i, s;
    while (at > lo && i - at < 8 && strcmp(w[at], "at"))
        at--;
    if (!strcmp(w[at], "at") && at > lo) {
        s = at - 1; /* the user part: word (join word)* */
        while (s >= lo + 2 && in(w[s - 1], joins))
            s -= 2;
    } else { /* back to the word that introduces it, at most 6 words */
        s = i - 1;
        while (s > lo && i - s < 6 && !in(w[s - 1], before))
            s--;
    }
    size_t e = i + 1; /* "dot co dot uk" */
    while (e + 2 < n && !strcmp(w[e + 1], "dot") && in(w[e + 2], tlds))
        e += 2;
    *first = s, *last = e;
    return true;
}

/* A first name (and a last name after it) introduced at words[i]. */
static size_t name_at(const char *const *w, size_t n, size_t i, size_t *last)
{
    /* strong cues name whoever follows; weak ones ("this is", "i'm") are common
     * before ordinary words too, so they need a word that is only a name */
    static const char *const strong[] = {"my name is", "name's", "names",  "call me",   "named",
                                         "mister",     "mr",     "missus", "mrs",       "miss",
                                         "ms",         "doctor", "dr",     "professor", NULL};
    static const char *const weak[] = {"this is",       "i'm",        "i am",    "it's",      "hi",
                                       "hello",         "hey",        "thanks",  "thank you", "dear",
                                       "speaking with", "talking to", "ask for", NULL};
    bool only;
    if (strlen(w[i]) < 3 || !ld_redact_is_name(w[i], &only))
        return 0;
    if (!any_cue(w, i, strong, 0) && !(only && any_cue(w, i, weak, 0)))
        return 0;
    *last = i;
    if (i + 1 < n && strlen(w[i + 1]) >= 3 && ld_redact_is_name(w[i + 1], NULL))
        *last = i + 1;
    return 1;
}

static int by_first(const void *a, const void *b)
{
    size_t x = ((const ld_redaction *)a)->first, y = ((const ld_redaction *)b)->first;
    return (x > y) - (x < y);
}

size_t ld_redact_find(ld_redactor *r, const char *const *words, const double *gap0, size_t n0, ld_redaction *out,
                      size_t max)
{
    size_t k = 0, first, last;
    unsigned kinds = r->kinds;
    /* a stream's final: the previous final's last words go in front, as context */
    size_t c = r->stream ? r->n_carry : 0, n = c + n0;
    const char **w = malloc((n + 1) * sizeof *w);
    double *gap = malloc((n + 1) * sizeof *gap);
    ld_redaction *all = malloc((n + 1) * sizeof *all);
    if (!w || !gap || !all) {
        free(w);
        free(gap);
        free(all);
        return LD_REDACT_FAILED;
    }
    for (size_t i = 0; i < n; i++) {
        w[i] = i < c ? r->carry[i] : words[i - c];
        gap[i] = i < c || !gap0 ? 0 : gap0[i - c];
    }
    /* digits the recognizer wrote as their homophones ("nine five to six", "one for
     * six"): read as digits between two digits, where nothing else fits */
    static const char *const homo[][2] = {{"to", "two"},  {"too", "two"},   {"for", "four"}, {"fore", "four"},
                                          {"won", "one"}, {"ate", "eight"}, {"o", "oh"}};
    for (size_t i = 1; i + 1 < n; i++)
        for (size_t h = 0; h < sizeof homo / sizeof *homo; h++)
            if (!strcmp(w[i], homo[h][0]) && in(w[i - 1], digit_words) &&
                (in(w[i + 1], digit_words) ||
                 (i + 2 < n && in(w[i + 2], digit_words) && (!strcmp(w[i + 1], "to") || !strcmp(w[i + 1], "for")))))
                w[i] = homo[h][1];
    /* e-mail addresses first: the words of one may be numbers or names too */
    for (size_t i = 0, lo = 0; (kinds & LD_REDACT_PII) && i < n && k <= n; i++)
        if (email_at(w, n, lo, i, &first, &last)) {
            take(all, &k, n + 1, first, last, EMAIL);
            i = last;
            lo = last + 1;
        }
    size_t emails = k, e = 0;
    for (size_t i = 0; i < n && k <= n;) {
        while (e < emails && all[e].last < i)
            e++;
        if (e < emails && all[e].first <= i) {
            i = all[e].last + 1;
            continue;
        }
        size_t stop = e < emails ? all[e].first : n; /* nothing else reaches into an e-mail */
        /* an expiry date whose first word was misheard ("expires all for twenty six"):
         * from the word after the cue, when a number of 2 or more digits follows */
        size_t from = i;
        bool expiry = false;
        if ((kinds & LD_REDACT_PCI) && i > 0 && in(w[i - 1], exp_cues) && !ld_numerals_word(w[i]))
            for (size_t q = i + 1; q < stop && q <= i + 2 && !expiry; q++)
                if (ld_numerals_word(w[q]) && strcmp(w[q], "and") &&
                    count_digits(w, q, run_end(w, gap, q, stop)) >= 2)
                    from = q, expiry = true;
        /* a run of number words, pauses shorter than the run gap between them;
         * "and" only inside */
        if (ld_numerals_word(w[from]) && strcmp(w[from], "and")) {
            size_t j = run_end(w, gap, from, stop);
            int lab = expiry ? EXPIRY : classify_number(kinds, w, from, j);
            /* interims (their words still change) and a stream's finals (a pause
             * of the eou timeout splits a number read in groups into finals of its
             * own) hide shorter digit runs: 2 and 3 digits read one by one, and at
             * a final's end any 2 (the rest may come in the next final) */
            size_t short_run = r->open_end || (r->stream && j == n) ? 2 : r->stream ? 3 : 0;
            if (lab < 0 && short_run && j - from >= short_run && spelled_out(w, from, j) &&
                (kinds & (LD_REDACT_PCI | LD_REDACT_PII | LD_REDACT_SSN)))
                lab = kinds & LD_REDACT_PCI ? CARD : kinds & LD_REDACT_PII ? PHONENUMBER : SSN;
            if (lab >= 0) {
                take(all, &k, n + 1, i, j - 1, lab);
                i = j;
                continue;
            }
        }
        if ((kinds & LD_REDACT_PII) && name_at(w, stop, i, &last)) {
            take(all, &k, n + 1, i, i, FIRSTNAME);
            if (last > i)
                take(all, &k, n + 1, last, last, LASTNAME);
            i = last + 1;
            continue;
        }
        i++;
    }
    qsort(all, k, sizeof *all, by_first);
    /* what lies in the carried words was sent with the previous final; an entity
     * reaching into this one is hidden from its first word here. Tokens are
     * numbered in order of what this call gives out. */
    size_t m = 0;
    for (size_t q = 0; q < k && m < max; q++) {
        if (all[q].last < c)
            continue;
        ld_redaction x = all[q];
        if (x.first < c && r->carry_label) /* the rest of what the previous final hid: same kind ("[CARD] …") */
            x.label = r->carry_label - 1;
        x.first = x.first < c ? 0 : x.first - c;
        x.last -= c;
        if (m && x.first <= out[m - 1].last) /* never overlapping (kept as found) */
            continue;
        snprintf(x.token, sizeof x.token, "[%s_%u]", labels[x.label], ++r->seen[x.label]);
        out[m++] = x;
    }
    if (r->stream && !r->open_end && n) { /* a final: its last words are the next one's context */
        size_t keep = n < LD_REDACT_CARRY ? n : LD_REDACT_CARRY;
        char tmp[LD_REDACT_CARRY][32] = {{0}};
        for (size_t q = 0; q < keep; q++)
            snprintf(tmp[q], sizeof tmp[q], "%s", w[n - keep + q]);
        memcpy(r->carry, tmp, sizeof tmp);
        r->n_carry = keep;
        r->carry_label = m && out[m - 1].last == n0 - 1 ? out[m - 1].label + 1 : 0;
    }
    free(w);
    free(gap);
    free(all);
    return m;
}

char *ld_redact_text(const ld_redactor *r, const char *text)
{
    char *copy = strdup(text ? text : "");
    size_t cap = 16, n = 0;
    char **w = calloc(cap, sizeof *w);
    if (!copy || !w) {
        free(copy);
        free(w);
        return NULL;
    }
    for (char *save = NULL, *s = strtok_r(copy, " ", &save); s; s = strtok_r(NULL, " ", &save)) {
        if (n == cap) {
            char **g = realloc(w, (cap *= 2) * sizeof *w);
            if (!g) {
                free(copy);
                free(w);
                return NULL;
            }
            w = g;
        }
        for (char *c = s; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        w[n++] = s;
    }
    ld_redactor scratch = *r;
    scratch.open_end = true;
    ld_redaction *red = malloc((n + 1) * sizeof *red);
    size_t m = red ? ld_redact_find(&scratch, (const char *const *)w, NULL, n, red, n + 1) : LD_REDACT_FAILED;
    if (m == LD_REDACT_FAILED) { /* nothing rather than the words unredacted */
        free(red);
        free(w);
        free(copy);
        return NULL;
    }
    size_t len = strlen(text ? text : "") + 32 * m + 1;
    char *out = malloc(len), *o = out;
    for (size_t i = 0, q = 0; out && i < n; i++) {
        const char *piece = w[i];
        while (q < m && red[q].last < i)
            q++;
        if (q < m && red[q].first <= i) {
            piece = red[q].token;
            i = red[q++].last;
        }
        o += snprintf(o, len - (size_t)(o - out), "%s%s", o == out ? "" : " ", piece);
    }
    if (out)
        *o = 0;
    free(red);
    free(w);
    free(copy);
    return out;
}

const ld_redact_option ld_redact_options[] = {
    {"redact_pii", LD_REDACT_PII}, {"redact_pci", LD_REDACT_PCI}, {NULL, 0}};

static const struct {
    const char *name;
    unsigned kinds;
} kind_names[] = {{"pci", LD_REDACT_PCI},         {"pii", LD_REDACT_PII},      {"ssn", LD_REDACT_SSN},
                  {"numbers", LD_REDACT_NUMBERS}, {"true", LD_REDACT_NUMBERS}, {"false", 0}};

void ld_redact_list(unsigned kinds, char out[32])
{
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < 4; i++) /* the first four: one bit each */
        if (kinds & kind_names[i].kinds)
            n += (size_t)snprintf(out + n, 32 - n, "%s%s", n ? "," : "", kind_names[i].name);
}

ld_err ld_redact_parse(const char *value, unsigned *kinds, ld_error *err)
{
    const char *v = value ? value : "";
    do {
        size_t len = strcspn(v, ",");
        bool known = false;
        for (size_t i = 0; i < sizeof kind_names / sizeof *kind_names; i++)
            if (len == strlen(kind_names[i].name) && !strncasecmp(v, kind_names[i].name, len)) {
                *kinds |= kind_names[i].kinds;
                known = true;
            }
        if (!known)
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                "Invalid value for parameter 'redact': '%.*s' (available: pci, pii, ssn, numbers, "
                                "true, false)",
                                (int)(len > 40 ? 40 : len), v);
        v += len + (v[len] == ',');
    } while (*v);
    return LD_OK;
}
