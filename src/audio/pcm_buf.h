/* Internal to src/audio/: an append-only PCM sink that keeps at most
 * `spill_samples` in memory and moves anything longer to an unlinked temp file
 * that is mmap'd when finished, so hours of audio never sit in the heap.
 * Not thread-safe (one per decode call). */
#ifndef LD_AUDIO_PCM_BUF_H
#define LD_AUDIO_PCM_BUF_H

#include "audio/audio.h"

typedef struct {
    int16_t *mem;         /* staging buffer (whole result while not spilled) */
    size_t n_mem, cap;    /* samples in mem, capacity */
    size_t total;         /* samples appended so far */
    size_t spill_samples; /* above this, go to a file */
    int fd;               /* spill file, -1 while in memory */
    char dir[256];
} ld_pcm_buf;

void ld_pcm_buf_init(ld_pcm_buf *b, const char *tmp_dir, size_t spill_samples);
/* 0 on success, -1 on allocation / I/O failure. */
int ld_pcm_buf_append(ld_pcm_buf *b, const int16_t *s, size_t n);
/* Moves the result into out (heap or mmap) and resets b. 0 on success. */
int ld_pcm_buf_finish(ld_pcm_buf *b, ld_pcm *out);
void ld_pcm_buf_discard(ld_pcm_buf *b);

#endif
