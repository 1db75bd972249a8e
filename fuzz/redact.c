/* libFuzzer entry: redaction (asr/redact.h) over any words — an interim's
 * text (ld_redact_text) and a transcript with pauses taken from the input
 * (the renderer with numerals and punctuation, and the JSON body). Any crash
 * or sanitizer report is a bug, and so is a token whose entity does not lie
 * inside the words, or a body whose redacted_entities miss a token. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "asr/redact.h"
#include "asr/transcript.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 4096)
        return 0;
    unsigned kinds = data[0] & LD_REDACT_ALL, flags = data[1] & 3u;
    char *text = malloc(size - 1);
    memcpy(text, data + 2, size - 2);
    text[size - 2] = 0;
    ld_redactor r = {.kinds = kinds};
    free(ld_redact_text(&r, text));

    ld_word w[256];
    size_t n = 0;
    double t = 0;
    for (char *save = NULL, *s = strtok_r(text, " ", &save); s && n < 256; s = strtok_r(NULL, " ", &save)) {
        double gap = (double)((unsigned char)s[0] % 8) * 0.3; /* pauses from nothing to 2.1 s */
        w[n++] = (ld_word){s, t + gap, t + gap + 0.2, 0.5};
        t += gap + 0.2;
    }
    ld_utterance u = {0, n, 0, t, 0};
    ld_transcript tr = {.words = w, .n_words = n, .utts = &u, .n_utts = n ? 1 : 0, .duration = t};
    size_t k = 0;
    long *origin = NULL;
    ld_word *out = ld_transcript_render_redacted(&tr, flags | (kinds << LD_RENDER_REDACT_SHIFT), &r, &k, &origin);
    size_t tokens = 0;
    for (size_t i = 0; out && i < k; i++)
        if (ld_redact_is_token(out[i].word)) {
            tokens++;
            if (origin[i] < 0 || (size_t)origin[i] >= n || out[i].start > out[i].end)
                abort();
        }
    ld_words_free(out, k);
    free(origin);
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    o.redact = kinds;
    o.numerals = flags & LD_RENDER_NUMERALS;
    json_t *j = ld_transcript_json(&tr, &o, NULL);
    if (kinds && json_array_size(json_object_get(j, "redacted_entities")) != tokens)
        abort();
    json_decref(j);
    free(text);
    return 0;
}
