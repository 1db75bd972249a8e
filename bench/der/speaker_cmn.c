/* bench/der's per-speaker CMN experiment (issue 14, "per-speaker CMN for the
 * recognizer once speakers are known, if it measures better"; not part of
 * listend). Every clip is decoded three ways with listend's search settings:
 *   batch    as listend decodes a segment: one pass, batch CMN (the clip's own mean);
 *   own      live decoding with the clip's own mean held fixed (the control:
 *            must give batch's words, so only the mean differs below);
 *   speaker  live decoding with the mean of all of its speaker's clips
 *            (frame-weighted), i.e. per-speaker CMN with perfect speaker labels.
 * Run by bench/der/speaker_cmn.py, which builds it and scores the output.
 *
 *   speaker_cmn [-pocketsphinx-option value ...] < LIST
 * LIST: lines "speaker<TAB>audio path" (decoded with listend's own
 * ld_audio_decode_file, so built against build/'s libraries); prints
 * "variant<TAB>path<TAB>words". */
#include <pocketsphinx.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/feat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"

#define MAX_CLIPS 1024
#define CEP 13
#define SLICE 1600 /* live decoding in 100 ms slices, as streams are fed */

typedef struct {
    char spk[64], path[512];
    ld_pcm pcm;       /* 16 kHz mono, as listend decodes the file */
    mfcc_t mean[CEP]; /* batch CMN's mean of the clip */
    int frames;
} clip;

static clip clips[MAX_CLIPS];
static int n_clips;

static void print_hyp(ps_decoder_t *ps, const char *variant, const char *path)
{
    int32 score;
    const char *h = ps_get_hyp(ps, &score);
    printf("%s\t%s\t%s\n", variant, path, h ? h : "");
}

/* Holds live CMN at mean m: set before every slice, with a frame count below
 * the point where PocketSphinx would re-estimate it (CMN_WIN_HWM). */
static void hold_mean(ps_decoder_t *ps, const mfcc_t *m)
{
    cmn_t *cmn = ps_get_feat(ps)->cmn_struct;
    for (int i = 0; i < CEP; i++) {
        cmn->cmn_mean[i] = m[i];
        cmn->sum[i] = m[i] * CMN_WIN;
    }
    cmn->nframe = CMN_WIN;
}

static void decode_live(ps_decoder_t *ps, const clip *c, const mfcc_t *m, const char *variant)
{
    ps_start_stream(ps);
    ps_start_utt(ps);
    for (size_t i = 0; i < c->pcm.n; i += SLICE) {
        hold_mean(ps, m);
        ps_process_raw(ps, c->pcm.samples + i, c->pcm.n - i < SLICE ? c->pcm.n - i : SLICE, FALSE, FALSE);
    }
    ps_end_utt(ps);
    print_hyp(ps, variant, c->path);
}

int main(int argc, char **argv)
{
    const char *M = "/usr/share/pocketsphinx/model/en-us/";
    char hmm[256], lm[256], dict[256];
    snprintf(hmm, sizeof hmm, "%sen-us", M);
    snprintf(lm, sizeof lm, "%sen-us.lm.bin", M);
    snprintf(dict, sizeof dict, "%scmudict-en-us.dict", M);
    /* listend's LD_PS_TUNING (src/asr/engine_ps.h), then the caller's options */
    const char *base[] = {"-hmm",      hmm,    "-lm",        lm,         "-dict", dict, "-fwdflat",        "no",
                          "-maxhmmpf", "3000", "-pl_window", "10",       "-topn", "2",  "-remove_silence", "no",
                          "-dither",   "no",   "-logfn",     "/dev/null"};
    size_t nb = sizeof base / sizeof *base;
    char **args = calloc(nb + (size_t)argc, sizeof *args);
    for (size_t i = 0; i < nb; i++)
        args[i] = (char *)base[i];
    for (int i = 1; i < argc; i++)
        args[nb + (size_t)i - 1] = argv[i];
    cmd_ln_t *cfg = cmd_ln_parse_r(NULL, ps_args(), (int32)(nb + (size_t)argc - 1), args, TRUE);
    ps_decoder_t *ps = cfg ? ps_init(cfg) : NULL;
    if (!ps)
        return 2;
    char line[1024];
    while (fgets(line, sizeof line, stdin) && n_clips < MAX_CLIPS) {
        line[strcspn(line, "\n")] = 0;
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = 0;
        clip *c = &clips[n_clips];
        snprintf(c->spk, sizeof c->spk, "%.63s", line);
        snprintf(c->path, sizeof c->path, "%.511s", tab + 1);
        ld_decode_opts dopts = {0};
        ld_error err;
        if (ld_audio_decode_file(c->path, &dopts, &c->pcm, &err) != LD_OK) {
            fprintf(stderr, "speaker_cmn: %s: %s\n", c->path, err.msg);
            return 1;
        }
        n_clips++;
    }
    for (int i = 0; i < n_clips; i++) {
        clip *c = &clips[i];
        ps_start_stream(ps);
        ps_start_utt(ps);
        ps_process_raw(ps, c->pcm.samples, c->pcm.n, FALSE, TRUE);
        ps_end_utt(ps);
        memcpy(c->mean, ps_get_feat(ps)->cmn_struct->cmn_mean, sizeof c->mean);
        c->frames = ps_get_n_frames(ps);
        print_hyp(ps, "batch", c->path);
    }
    for (int i = 0; i < n_clips; i++) {
        const clip *c = &clips[i];
        decode_live(ps, c, c->mean, "own");
        double sum[CEP] = {0}, n = 0;
        for (int j = 0; j < n_clips; j++)
            if (!strcmp(clips[j].spk, c->spk)) {
                for (int k = 0; k < CEP; k++)
                    sum[k] += (double)clips[j].mean[k] * clips[j].frames;
                n += clips[j].frames;
            }
        mfcc_t m[CEP];
        for (int k = 0; k < CEP; k++)
            m[k] = (mfcc_t)(sum[k] / n);
        decode_live(ps, c, m, "speaker");
    }
    ps_free(ps);
    cmd_ln_free_r(cfg);
    free(args);
    return 0;
}
