/* Multichannel results (asr/channels.h): channel tags, time order, per-channel
 * blocks, and the merged transcript behind text/SRT/VTT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/channels.h"
#include "test.h"

/* A transcript of utterances given as "w:start:end w:start:end|…". */
static ld_transcript *make(const char *spec, double duration)
{
    ld_transcript *t = calloc(1, sizeof *t);
    t->words = calloc(64, sizeof *t->words);
    t->utts = calloc(16, sizeof *t->utts);
    t->duration = duration;
    t->confidence = 0.8;
    strcpy(t->language, "en");
    strcpy(t->model, "general");
    char *s = strdup(spec), *save = NULL;
    for (char *u = strtok_r(s, "|", &save); u; u = strtok_r(NULL, "|", &save)) {
        ld_utterance *ut = &t->utts[t->n_utts++];
        ut->first = t->n_words;
        char *save2 = NULL;
        for (char *w = strtok_r(u, " ", &save2); w; w = strtok_r(NULL, " ", &save2)) {
            char word[32];
            double a, b;
            sscanf(w, "%31[^:]:%lf:%lf", word, &a, &b);
            t->words[t->n_words++] = (ld_word){strdup(word), a, b, 0.8};
            ut->count++;
        }
        ut->start = t->words[ut->first].start;
        ut->end = t->words[t->n_words - 1].end;
    }
    free(s);
    return t;
}

static const char *str(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static void test_json(void)
{
    ld_transcript *t[2] = {make("hello:0.5:0.9 there:0.9:1.3|bye:6.0:6.4", 7.0),
                           make("yes:2.0:2.3 sir:2.3:2.8", 5.0)};
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    o.timestamps = true;
    o.multichannel = true;
    json_t *j = ld_channels_json(t, 2, &o, "req_1");
    CHECK(j != NULL);
    CHECK_STR(str(j, "request_id"), "req_1");
    CHECK_STR(str(j, "text"), "Hello there. Yes sir. Bye.");
    CHECK_NEAR(json_number_value(json_object_get(j, "duration")), 7.0, 1e-9);
    CHECK_STR(str(j, "model"), "general");
    json_t *utts = json_object_get(j, "utterances");
    CHECK(json_array_size(utts) == 3);
    int want_ch[3] = {0, 1, 0};
    for (size_t i = 0; i < 3; i++)
        CHECK(json_integer_value(json_object_get(json_array_get(utts, i), "channel")) == want_ch[i]);
    /* words by time, each tagged; the period stays after "there" */
    json_t *words = json_object_get(j, "words");
    const char *order[] = {"Hello", "there", ".", "Yes", "sir", ".", "Bye", "."};
    int wch[] = {0, 0, 0, 1, 1, 1, 0, 0};
    CHECK(json_array_size(words) == 8);
    for (size_t i = 0; i < 8 && i < json_array_size(words); i++) {
        CHECK_STR(str(json_array_get(words, i), "word"), order[i]);
        CHECK(json_integer_value(json_object_get(json_array_get(words, i), "channel")) == wch[i]);
    }
    json_t *chans = json_object_get(j, "channels");
    CHECK(json_array_size(chans) == 2);
    CHECK_STR(str(json_array_get(chans, 0), "text"), "Hello there. Bye.");
    CHECK_STR(str(json_array_get(chans, 1), "text"), "Yes sir.");
    CHECK(json_integer_value(json_object_get(json_array_get(chans, 1), "channel")) == 1);
    CHECK(json_array_size(json_object_get(json_array_get(chans, 1), "words")) == 3);
    json_decref(j);
    /* without timestamps: no words anywhere */
    o.timestamps = false;
    j = ld_channels_json(t, 2, &o, NULL);
    CHECK(!json_object_get(j, "words") &&
          !json_object_get(json_array_get(json_object_get(j, "channels"), 0), "words"));
    CHECK(!json_object_get(j, "request_id"));
    json_decref(j);

    /* merged transcript: utterances in time order, words kept together */
    ld_transcript *m = ld_channels_merge(t, 2);
    CHECK(m && m->n_utts == 3 && m->n_words == 5);
    CHECK_STR(m->words[2].word, "yes");
    CHECK(m->utts[1].first == 2 && m->utts[1].count == 2);
    CHECK_NEAR(m->duration, 7.0, 1e-9);
    ld_transcript_free(m);
    o.format = LD_FORMAT_TEXT;
    const char *ctype = NULL;
    char *text = ld_channels_render(t, 2, &o, &ctype);
    CHECK(text && !strcmp(text, "Hello there. Yes sir. Bye.\n"));
    CHECK(ctype && !strncmp(ctype, "text/plain", 10));
    free(text);
    o.format = LD_FORMAT_SRT;
    text = ld_channels_render(t, 2, &o, &ctype);
    CHECK(text && strstr(text, "-->") && strstr(text, "Yes"));
    free(text);
    ld_transcript_free(t[0]);
    ld_transcript_free(t[1]);
}

/* SRT of a call: a cue never holds both sides' words, also where one side
 * talks over the other or answers within the pause that would join a cue. */
static void test_subtitles_keep_voices_apart(void)
{
    ld_transcript *t[2] = {make("one:0.0:0.4 two:0.4:0.8 three:0.8:1.2 four:1.2:1.6", 3.0),
                           make("over:0.5:0.9 me:0.9:1.3|quick:1.9:2.2 reply:2.2:2.5", 3.0)};
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    o.punctuate = false;
    o.format = LD_FORMAT_SRT;
    char *srt = ld_channels_render(t, 2, &o, NULL);
    CHECK(srt && strstr(srt, "\none two three four\n") && strstr(srt, "\nover me\n") &&
          strstr(srt, "\nquick reply\n"));
    free(srt);
    ld_transcript *m = ld_channels_merge(t, 2);
    m->separate_utts = false; /* a mono transcript's cues may span its utterances, as before */
    srt = ld_transcript_srt(m, &o);
    CHECK(srt && strstr(srt, "four over me quick"));
    free(srt);
    ld_transcript_free(m);
    ld_transcript_free(t[0]);
    ld_transcript_free(t[1]);
}

/* Both sides talk at once, each in one utterance long enough for several
 * cues: the cues come out by start time across channels (WebVTT wants
 * non-decreasing starts), not one side's cues all before the other's. */
static void test_subtitle_cues_in_time_order(void)
{
    char a[1024] = "", b[1024] = "";
    for (int i = 0; i < 20; i++) { /* 20 words, 0.5 s each: 10 s, over 7 s (LD_SUB_MAX_CUE_S) */
        char w[64];
        snprintf(w, sizeof w, "%sleft:%.2f:%.2f", i ? " " : "", 0.1 + i * 0.5, 0.1 + i * 0.5 + 0.45);
        strcat(a, w);
        snprintf(w, sizeof w, "%sright:%.2f:%.2f", i ? " " : "", 0.3 + i * 0.5, 0.3 + i * 0.5 + 0.45);
        strcat(b, w);
    }
    ld_transcript *t[2] = {make(a, 11.0), make(b, 11.0)};
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    for (int vtt = 0; vtt < 2; vtt++) {
        o.format = vtt ? LD_FORMAT_VTT : LD_FORMAT_SRT;
        char *s = ld_channels_render(t, 2, &o, NULL);
        CHECK(s != NULL);
        double prev = -1;
        int cues = 0, no = 0;
        for (const char *p = s; p && (p = strstr(p, " --> ")); p += 5) {
            const char *l = p - 12; /* HH:MM:SS,mmm before the arrow */
            int hh, mm, ss, ms;
            CHECK(sscanf(l, "%d:%d:%d%*c%d", &hh, &mm, &ss, &ms) == 4);
            double start = hh * 3600 + mm * 60 + ss + ms / 1000.0;
            CHECK(start >= prev);
            prev = start;
            cues++;
        }
        CHECK(cues >= 4); /* each side cut in two at least */
        /* SRT numbers the cues as written: 1, 2, 3, … */
        for (const char *p = s; !vtt && p && *p; no++) {
            int k = 0;
            CHECK(sscanf(p, "%d", &k) == 1 && k == no + 1);
            p = strstr(p, "\n\n");
            p = p ? p + 2 : NULL;
        }
        CHECK(vtt || no == cues);
        free(s);
    }
    ld_transcript_free(t[0]);
    ld_transcript_free(t[1]);
}

static void test_empty_channel(void)
{
    ld_transcript *t[2] = {make("go:0.1:0.4", 2.0), calloc(1, sizeof(ld_transcript))};
    t[1]->duration = 2.0;
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    o.timestamps = true;
    json_t *j = ld_channels_json(t, 2, &o, NULL);
    CHECK_STR(str(j, "text"), "Go.");
    CHECK_STR(str(json_array_get(json_object_get(j, "channels"), 1), "text"), "");
    CHECK(json_array_size(json_object_get(json_array_get(json_object_get(j, "channels"), 1), "utterances")) == 0);
    json_decref(j);
    ld_transcript_free(t[0]);
    ld_transcript_free(t[1]);
}

int main(void)
{
    test_subtitles_keep_voices_apart();
    test_json();
    test_empty_channel();
    test_subtitle_cues_in_time_order();
    TEST_MAIN_END();
}
