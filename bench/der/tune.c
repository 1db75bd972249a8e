/* bench/der's parameter search helper (not part of listend): diarizes cached
 * recogniser words again with asr/diarize.c, so trying a setting costs no
 * decode. Built by bench/der/run against build/'s static libraries.
 *
 *   tune WAV WORDS.json NUM_SPEAKERS   (LD_DIARIZE_TUNE selects the setting)
 *
 * WORDS.json: [[start, end], ...]. Prints one speaker label per line. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/diarize.h"

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return 1;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 44, SEEK_SET); /* make_set.py writes plain 44-byte headers */
    size_t n = (size_t)(len - 44) / 2;
    int16_t *pcm = malloc(n * 2);
    if (!pcm || fread(pcm, 2, n, f) != n)
        return 1;
    fclose(f);
    json_t *j = json_load_file(argv[2], 0, NULL);
    size_t nw = json_array_size(j);
    ld_word *w = calloc(nw ? nw : 1, sizeof *w);
    for (size_t i = 0; i < nw; i++) {
        w[i].start = json_number_value(json_array_get(json_array_get(j, i), 0));
        w[i].end = json_number_value(json_array_get(json_array_get(j, i), 1));
    }
    size_t nf;
    float *feat = ld_diarize_mfcc(pcm, n, false, &nf);
    int *labels = calloc(nw ? nw : 1, sizeof *labels);
    int k = ld_diarize_words(feat, nf, w, nw, atoi(argv[3]), NULL, labels);
    if (k < 0)
        return 1;
    for (size_t i = 0; i < nw; i++)
        printf("%d\n", labels[i]);
    return 0;
}
