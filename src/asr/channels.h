/* Multichannel results (issue 14, `multichannel=true`): each channel of a file
 * is transcribed on its own, and these shape the channels' transcripts into
 * one response (docs/api.md, "Multichannel"): the top level reads like a
 * one-channel answer with every channel's utterances in time order, each word
 * and utterance carrying its `channel`, plus `channels[]` with each channel's
 * own text, words and utterances.
 * Thread-safety: pure functions. Ownership: inputs are borrowed; results are
 * new (json_t references, malloc'd strings, an owned ld_transcript). */
#ifndef LD_ASR_CHANNELS_H
#define LD_ASR_CHANNELS_H

#include <jansson.h>
#include <stddef.h>

#include "asr/transcript.h"

/* The JSON body for n >= 1 channel transcripts (t[c] is channel c). */
json_t *ld_channels_json(ld_transcript *const *t, size_t n, const ld_transcribe_opts *o, const char *request_id);

/* One transcript of all channels: utterances sorted by start (ties: lower
 * channel first), each utterance's words kept together, so text / SRT / VTT
 * read the conversation in order. NULL when out of memory. */
ld_transcript *ld_channels_merge(ld_transcript *const *t, size_t n);

/* text / srt / vtt body of the merged transcript (ld_transcript_render). */
char *ld_channels_render(ld_transcript *const *t, size_t n, const ld_transcribe_opts *o, const char **ctype);

#endif
