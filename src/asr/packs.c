/* Model packs: reading pack folders, names and aliases (asr/packs.h). The pool
 * (languages.c, pool.c) owns the loaded list. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "model pack '%s' has no readable mllr_matrix", dir);
    return LD_OK;
}
