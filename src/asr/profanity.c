/* Profanity masking (asr/redact.h): a sorted list looked up per word. The list
 * is the swear words and slurs of the engine's dictionary (cmudict-en-us),
 * found by their stems and kept only where the word has no innocent reading. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "asr/redact.h"

/* sorted (strcmp), lower case */
static const char *const words[] = {
    "asshole",        "assholes",      "bitch",         "bitches",    "bitching",       "bitchy",    "bullshit",
    "bullshitter",    "bullshitting",  "cunt",          "dickhead",   "dipshit",        "faggot",    "fuck",
    "fuck's",         "fucked",        "fucked-up",     "fucker",     "fuckers",        "fuckin",    "fucking",
    "fucks",          "goddam",        "goddammit",     "goddamn",    "goddamned",      "horseshit", "motherfucker",
    "motherfucker's", "motherfuckers", "motherfucking", "nigger",     "nigger's",       "niggers",   "shit",
    "shit's",         "shithead",      "shithole",      "shitload",   "shits",          "shitstorm", "shitting",
    "shitty",         "slut",          "sluts",         "slutty",     "son-of-a-bitch", "twat",      "twats",
    "wanker",         "wankers",       "whore",         "whorehouse", "whores",
};

static int cmp(const void *k, const void *e) { return strcasecmp(k, *(const char *const *)e); }

bool ld_profanity_is(const char *word)
{
    return word && *word && bsearch(word, words, sizeof words / sizeof *words, sizeof *words, cmp);
}

void ld_profanity_mask(char *word)
{
    for (char *c = word; c && *c && *c != '\''; c++) /* "fuck's": the possessive stays */
        if (isalpha((unsigned char)*c))
            *c = '*';
}

void ld_profanity_mask_text(char *text)
{
    for (char *s = text; s && *s;) {
        size_t n = strcspn(s, " ");
        char save = s[n];
        s[n] = 0;
        if (ld_profanity_is(s))
            ld_profanity_mask(s);
        s[n] = save;
        s += n + (save != 0);
    }
}
