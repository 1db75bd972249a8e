/* Spoken numbers as digits (asr/numerals.h): a run of number words is either
 * a digit string (every word 0-9 or "oh": read digit by digit, as phone,
 * account and zip numbers are) or a sequence of cardinals, each parsed with
 * the usual total/current scheme; a word that cannot continue the current
 * cardinal ("twenty one twenty two") starts the next one. */
#include "asr/numerals.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef enum { K_UNIT, K_TEEN, K_TENS, K_HUNDRED, K_SCALE, K_OH, K_AND, K_NONE } kind;

static const struct {
    const char *w;
    kind k;
    int64_t v;
} lexicon[] = {
    {"zero", K_UNIT, 0},
    {"one", K_UNIT, 1},
    {"two", K_UNIT, 2},
    {"three", K_UNIT, 3},
    {"four", K_UNIT, 4},
    {"five", K_UNIT, 5},
    {"six", K_UNIT, 6},
    {"seven", K_UNIT, 7},
    {"eight", K_UNIT, 8},
    {"nine", K_UNIT, 9},
    {"ten", K_TEEN, 10},
    {"eleven", K_TEEN, 11},
    {"twelve", K_TEEN, 12},
    {"thirteen", K_TEEN, 13},
    {"fourteen", K_TEEN, 14},
    {"fifteen", K_TEEN, 15},
    {"sixteen", K_TEEN, 16},
    {"seventeen", K_TEEN, 17},
    {"eighteen", K_TEEN, 18},
    {"nineteen", K_TEEN, 19},
    {"twenty", K_TENS, 20},
    {"thirty", K_TENS, 30},
    {"forty", K_TENS, 40},
    {"fifty", K_TENS, 50},
    {"sixty", K_TENS, 60},
    {"seventy", K_TENS, 70},
    {"eighty", K_TENS, 80},
    {"ninety", K_TENS, 90},
    {"hundred", K_HUNDRED, 100},
    {"thousand", K_SCALE, 1000},
    {"million", K_SCALE, 1000000},
    {"billion", K_SCALE, 1000000000},
    {"oh", K_OH, 0},
    {"and", K_AND, 0},
};

static kind lookup(const char *w, int64_t *v)
{
    *v = 0;
    for (size_t i = 0; i < sizeof lexicon / sizeof *lexicon; i++)
        if (!strcmp(w, lexicon[i].w)) {
            *v = lexicon[i].v;
            return lexicon[i].k;
        }
    return K_NONE;
}

bool ld_numerals_word(const char *w)
{
    int64_t v;
    return lookup(w, &v) != K_NONE;
}

static size_t emit(ld_numeral *out, size_t k, size_t max, size_t first, size_t last, int64_t value)
{
    if (k < max) {
        out[k] = (ld_numeral){.first = first, .last = last};
        snprintf(out[k].digits, sizeof out[k].digits, "%lld", (long long)value);
    }
    return k + 1;
}

/* Cardinals in words [a, b) (no "oh"); returns the new count. */
static size_t cardinals(const char *const *w, size_t a, size_t b, ld_numeral *out, size_t k, size_t max)
{
    int64_t total = 0, cur = 0, last_scale = INT64_MAX;
    kind last = K_NONE;
    size_t first = a, end = a; /* the number in progress: [first, end) */
    bool open = false;
    for (size_t i = a; i <= b; i++) {
        int64_t v = 0;
        kind kd = i < b ? lookup(w[i], &v) : K_NONE;
        bool fits = open && kd != K_NONE;
        if (kd == K_AND) /* "one hundred and five": only right after hundred/thousand, before a number */
            fits = open && (last == K_HUNDRED || last == K_SCALE) && i + 1 < b && lookup(w[i + 1], &v) <= K_TENS;
        else if (kd == K_UNIT)
            fits = open && cur % 10 == 0 && last != K_UNIT && last != K_TEEN;
        else if (kd == K_TEEN || kd == K_TENS)
            fits = open && cur % 100 == 0 && last != K_UNIT && last != K_TEEN && last != K_TENS;
        else if (kd == K_HUNDRED)
            fits = open && cur > 0 && cur < 100;
        else if (kd == K_SCALE)
            fits = open && v < last_scale && (cur > 0 || total == 0);
        if (open && !fits) {                           /* the number ends before word i */
            if (!(end - first == 1 && last == K_UNIT)) /* a lone digit word stays a word */
                k = emit(out, k, max, first, end - 1, total + cur);
            open = false;
        }
        if (i == b)
            break;
        if (kd == K_AND && !fits)
            continue;
        if (!open) {
            if (kd == K_AND || kd == K_HUNDRED || kd == K_SCALE) { /* no number starts with these */
                last = K_NONE;
                continue;
            }
            open = true, first = i, total = cur = 0, last_scale = INT64_MAX;
        }
        end = i + 1;
        if (kd == K_UNIT || kd == K_TEEN || kd == K_TENS)
            cur += v;
        else if (kd == K_HUNDRED)
            cur *= 100;
        else if (kd == K_SCALE)
            total += cur * v, cur = 0, last_scale = v;
        if (kd != K_AND)
            last = kd;
    }
    return k;
}

size_t ld_numerals_parse(const char *const *w, size_t n, ld_numeral *out, size_t max)
{
    size_t digits = 0, ohs = 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        kind kd = lookup(w[i], &v);
        digits += kd == K_UNIT;
        ohs += kd == K_OH;
    }
    if (digits + ohs == n && n >= 2 && digits >= 1 && n < sizeof out->digits) { /* read digit by digit */
        if (!max)
            return 1;
        out[0] = (ld_numeral){.first = 0, .last = n - 1};
        for (size_t i = 0; i < n; i++) {
            lookup(w[i], &v);
            out[0].digits[i] = (char)('0' + v);
        }
        out[0].digits[n] = 0;
        return 1;
    }
    size_t k = 0, a = 0; /* otherwise cardinals between the "oh"s, which stay words */
    for (size_t i = 0; i <= n; i++)
        if (i == n || lookup(w[i], &v) == K_OH) {
            k = cardinals(w, a, i, out, k, max);
            a = i + 1;
        }
    return k;
}
