/* A transcript and its renderings (the JSON body of docs/api.md, "Response 200
 * (format=json)"; text, SRT, VTT), plus the options that shape it. Thread-safety: pure functions. Ownership: an
 * ld_transcript is owned by whoever holds it; ld_transcript_free releases it. */
#ifndef LD_ASR_TRANSCRIPT_H
#define LD_ASR_TRANSCRIPT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "asr/vocab.h"

typedef enum { LD_FORMAT_JSON, LD_FORMAT_TEXT, LD_FORMAT_SRT, LD_FORMAT_VTT } ld_format;

/* "json", "text", "srt", "vtt": the names options and requests use. */
const char *ld_format_name(ld_format f);
/* Case-insensitive; 0 on success, -1 for another name. */
int ld_format_parse(const char *name, ld_format *out);

typedef struct {
    char language[16];                /* ISO 639-1, default "en" */
    bool punctuate;                   /* default true */
    bool numerals;                    /* spoken numbers as digits (asr/numerals.h), default false */
    bool timestamps;                  /* include `words` in JSON */
    bool multichannel;                /* each channel transcribed on its own (asr/channels.h) */
    ld_format format;                 /* default JSON */
    char model[32];                   /* `model` option (asr/packs.h); "" or "auto" = by the audio */
    bool diarize;                     /* label speakers (asr/diarize.h) */
    int num_speakers;                 /* with diarize: 0 = estimate, else 1..LD_DIARIZE_MAX_SPEAKERS */
    char keywords[LD_VOCAB_TEXT_MAX]; /* `keywords`: canonical list (asr/vocab.h), "" = none */
    unsigned redact;                  /* LD_REDACT_* kinds (asr/redact.h), 0 = none */
    bool profanity_filter;            /* swear words as "****" (asr/redact.h), default false */
} ld_transcribe_opts;

void ld_transcribe_opts_default(ld_transcribe_opts *o);

typedef struct {
    char *word;        /* owned */
    double start, end; /* seconds from the start of the audio */
    double confidence; /* 0..1 */
} ld_word;

typedef struct {
    size_t first, count; /* range into words[] */
    double start, end;
    int speaker; /* when diarized (ld_transcript.speakers) */
} ld_utterance;

typedef struct {
    ld_word *words; /* recognised words in order (no punctuation entries) */
    size_t n_words;
    ld_utterance *utts; /* silence-delimited segments */
    size_t n_utts;
    double duration;   /* seconds of audio */
    double confidence; /* overall, from word confidences */
    char language[16];
    char model[32]; /* pack that decoded it ("general", "telephony", …); "" = not reported */
    int *speakers;  /* diarized: speaker of each word (0..n_speakers-1); NULL = not diarized */
    int n_speakers;
    bool separate_utts; /* utterances are different voices that may overlap (merged channels,
                           asr/channels.h): a subtitle cue never spans two, and each ends its sentence */
} ld_transcript;

void ld_transcript_free(ld_transcript *t);

/* Rendering flags: LD_RENDER_PUNCTUATE (a bool `punctuate` passes as it),
 * LD_RENDER_NUMERALS, LD_RENDER_PROFANITY and the LD_REDACT_* kinds
 * (asr/redact.h) shifted by LD_RENDER_REDACT_SHIFT. */
#define LD_RENDER_PUNCTUATE 1u
#define LD_RENDER_NUMERALS 2u
#define LD_RENDER_PROFANITY 4u
#define LD_RENDER_REDACT_SHIFT 8
/* The flags of a request's options (anything with punctuate, numerals,
 * profanity_filter and redact). */
#define LD_RENDER_FLAGS(o)                                                                     \
    (((o)->punctuate ? LD_RENDER_PUNCTUATE : 0u) | ((o)->numerals ? LD_RENDER_NUMERALS : 0u) | \
     ((o)->profanity_filter ? LD_RENDER_PROFANITY : 0u) | ((unsigned)(o)->redact << LD_RENDER_REDACT_SHIFT))

/* Rendered word list: with LD_RENDER_PUNCTUATE, sentence case + "I" + "," / "."
 * entries (start == end, confidence 1.0) placed by pause length; with
 * LD_RENDER_NUMERALS spoken numbers become one entry of digits spanning their
 * words (asr/numerals.h); with LD_RENDER_PROFANITY a listed swear word is
 * "****" (asr/redact.h). Returns a new array the caller frees with
 * ld_words_free. */
ld_word *ld_transcript_render_words(const ld_transcript *t, unsigned flags, size_t *n);
/* render_words plus, per entry, the index of its source word (-1 for
 * punctuation); *origin is malloc'd and owned by the caller. With redaction
 * flags, an entity's words become one entry, its token ("[PHONENUMBER_1]"). */
ld_word *ld_transcript_render_ex(const ld_transcript *t, unsigned flags, size_t *n, long **origin);
/* render_ex with redaction tokens numbered by (and advancing) *r, whose kinds
 * replace the flags' ones: a stream's finals share one. r may be NULL. */
struct ld_redactor_s;
ld_word *ld_transcript_render_redacted(const ld_transcript *t, unsigned flags, struct ld_redactor_s *r, size_t *n,
                                       long **origin);
void ld_words_free(ld_word *w, size_t n);
/* A copy of t whose entities (LD_REDACT_* kinds, asr/redact.h) are already one
 * word each, their token, with utterances and speakers kept: for renderings
 * that merge transcripts (multichannel subtitles), so each channel is redacted
 * on its own words. NULL when memory is short. Caller frees with ld_transcript_free. */
ld_transcript *ld_transcript_redact_copy(const ld_transcript *t, unsigned kinds);

/* A punctuation entry of the word lists ("." "," "?" "!", a word of its own in
 * JSON `words` and stream finals, at the end of the word it follows). NULL-safe. */
bool ld_word_is_punct(const char *w);
/* Words [from, to) of any list joined as text: a space before each word but
 * not before punctuation entries; word(items, i) gives word i. malloc'd, NULL
 * when out of memory. */
char *ld_words_join_by(const void *items, size_t from, size_t to, const char *(*word)(const void *items, size_t i));

/* The JSON body: request_id, text, confidence, duration, language, words (when
 * timestamps), utterances. New reference. */
json_t *ld_transcript_json(const ld_transcript *t, const ld_transcribe_opts *o, const char *request_id);
/* text / srt / vtt bodies; malloc'd, caller frees. Subtitle lines ≤ 42 chars, ≤ 2 lines per cue. */
char *ld_transcript_text(const ld_transcript *t, const ld_transcribe_opts *o);
char *ld_transcript_srt(const ld_transcript *t, const ld_transcribe_opts *o);
char *ld_transcript_vtt(const ld_transcript *t, const ld_transcribe_opts *o);
/* The text / srt / vtt body for o->format (malloc'd) and, when ctype is not
 * NULL, its Content-Type. NULL for LD_FORMAT_JSON: every caller shapes its JSON
 * itself (compatibility schemas, the CLI's layout) from ld_transcript_json. */
char *ld_transcript_render(const ld_transcript *t, const ld_transcribe_opts *o, const char **ctype);

#endif
