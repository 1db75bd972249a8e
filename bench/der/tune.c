/* bench/der's parameter search helper (not part of listend): diarizes cached
 * recogniser words again with asr/diarize.c, so trying a setting costs no
 * decode. Built by bench/der/run against build/'s static libraries.
 *
 *   tune AUDIO WORDS.json NUM_SPEAKERS [live]   (LD_DIARIZE_TUNE selects the setting)
 *
 * AUDIO is read with listend's decoder, so an 8 kHz G.711 rendering (run
 * --mulaw) gets the narrowband features the server would use.
 *
 * live: as a stream labels them (ld_diarize_live): the words are cut into
 * finals at pauses of 0.8 s (a stream's default eou_timeout_ms), and each
 * final is labelled once the audio up to 0.8 s after its last word is in.
 *
 * WORDS.json: [[start, end], ...]. Prints one speaker label per line. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/diarize.h"
#include "audio/audio.h"

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5)
        return 2;
    /* listend's own decoder: a G.711 rendering comes out as the server sees it
     * (16 kHz, flagged narrowband, so the features use the telephone band) */
    ld_decode_opts dopts = {0};
    ld_pcm audio;
    ld_error err;
    if (ld_audio_decode_file(argv[1], &dopts, &audio, &err) != LD_OK) {
        fprintf(stderr, "tune: %s: %s\n", argv[1], err.msg);
        return 1;
    }
    const int16_t *pcm = audio.samples;
    size_t n = audio.n;
    json_t *j = json_load_file(argv[2], 0, NULL);
    size_t nw = json_array_size(j);
    ld_word *w = calloc(nw ? nw : 1, sizeof *w);
    for (size_t i = 0; i < nw; i++) {
        w[i].start = json_number_value(json_array_get(json_array_get(j, i), 0));
        w[i].end = json_number_value(json_array_get(json_array_get(j, i), 1));
    }
    int *labels = calloc(nw ? nw : 1, sizeof *labels);
    if (argc == 5) {
        ld_diarize_live *l = ld_diarize_live_new(atoi(argv[3]), audio.narrowband);
        float *conf = calloc(nw ? nw : 1, sizeof *conf);
        size_t fed = 0;
        for (size_t a = 0; a < nw;) {
            size_t b = a + 1;
            while (b < nw && w[b].start - w[b - 1].end < 0.8)
                b++;
            size_t to = (size_t)((w[b - 1].end + 0.8) * 16000);
            if (to > n)
                to = n;
            if (to > fed && !ld_diarize_live_audio(l, pcm + fed, to - fed))
                return 1;
            fed = to > fed ? to : fed;
            if (!ld_diarize_live_label(l, w + a, b - a, labels + a, conf + a))
                return 1;
            a = b;
        }
        for (size_t i = 0; i < nw; i++)
            printf("%d\n", labels[i]);
        return 0;
    }
    size_t nf;
    float *feat = ld_diarize_mfcc(pcm, n, audio.narrowband, &nf);
    int k = ld_diarize_words(feat, nf, w, nw, atoi(argv[3]), NULL, labels);
    if (k < 0)
        return 1;
    for (size_t i = 0; i < nw; i++)
        printf("%d\n", labels[i]);
    return 0;
}
