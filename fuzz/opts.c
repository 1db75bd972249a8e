/* libFuzzer entry: request options as clients send them — a JSON body
 * (ld_opts_set_json) and query/form pairs (ld_opts_set, "key=value" lines) —
 * then the cross-field check. Any crash or sanitizer report is a bug, and so
 * is an accepted value that leaves a string field unterminated or a number
 * outside its documented range. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/opts.h"

static void invariants(const ld_listen_opts *o)
{
    if (!memchr(o->t.language, 0, sizeof o->t.language) || !memchr(o->url, 0, sizeof o->url) ||
        !memchr(o->callback_url, 0, sizeof o->callback_url))
        abort();
    if (o->num_speakers && (o->num_speakers < 1 || o->num_speakers > 32))
        abort();
    if (o->sample_rate && (o->sample_rate < 8000 || o->sample_rate > 192000))
        abort();
    if (o->t.format < LD_FORMAT_JSON || o->t.format > LD_FORMAT_VTT)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ld_listen_opts o;
    ld_error err;

    /* As a JSON body (the server caps it at 1 MiB; -max_len keeps us well under). */
    ld_opts_init(&o);
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (json_is_object(j) && ld_opts_set_json(&o, j, &err) == LD_OK) {
        invariants(&o);
        ld_opts_validate(&o, NULL, &err);
    }
    json_decref(j);

    /* As query/form fields: one "key=value" per line; values may hold NULs
     * in the input, which truncate them exactly as C strings do in MHD. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    ld_opts_init(&o);
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *eq = strchr(line, '=');
        if (eq)
            *eq++ = 0;
        if (ld_opts_set(&o, line, eq, &err) != LD_OK && !err.msg[0])
            abort(); /* every refusal names its reason */
        invariants(&o);
    }
    ld_opts_validate(&o, NULL, &err);
    free(text);
    return 0;
}
