/* `listend adapt --audio DIR --out PACK`: adapts the acoustic model to an
 * operator's recordings and writes a model pack (asr/packs.h) that
 * `listend serve --models` loads and a request selects with model=NAME.
 *
 * Steps: read clips + transcripts; decode them with listend's own audio path
 * (so 8 kHz / G.711 input is zero-inserted exactly as when serving); put aside
 * a held-out part; cepstra with sphinx_fe and the model's feat.params;
 * Baum-Welch statistics with sphinxtrain's bw (mixture weights rebuilt from the
 * model's sendump, asr/adapt.h); a one-class MLLR transform with mllr_solve
 * (what PocketSphinx applies at run time); the mean cepstrum of the data (kept
 * for information: as the start vector of live CMN for streams it measured no
 * better than the model's own, docs/engine.md); then WER on the held-out part with
 * the model as it is and with the new pack, through the same decoder pool the
 * server uses. External tools: Debian's sphinxtrain, sphinxbase-utils and
 * pocketsphinx packages (scripts/bootstrap.sh installs them). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "asr/adapt.h"
#include "asr/model.h"
#include "asr/packs.h"
#include "asr/pool.h"
#include "audio/denoise.h"
#include "cli/cli.h"
#include "server/opts.h"
#include "util/fs.h"
#include "util/log.h"

#define MIN_ADAPT_S 20.0 /* below this, a 546-parameter transform is mostly noise */
#define MIN_ADAPT_CLIPS 5
#define MAX_WORDS 4096 /* per transcript */
#define MAX_CLIPS 100000

#define BW "/usr/lib/sphinxtrain/bw"
#define MLLR_SOLVE "/usr/lib/sphinxtrain/mllr_solve"
#define SPHINX_FE "/usr/bin/sphinx_fe"
#define MDEF_CONVERT "/usr/bin/pocketsphinx_mdef_convert"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: listend adapt --audio DIR --out PACK [options]\n"
            "\n"
            "Adapts the speech model to your recordings (MLLR with sphinxtrain) and writes a model\n"
            "pack. Serve it with `listend serve --models $(dirname PACK)` and select it per request\n"
            "with model=$(basename PACK).\n"
            "\n"
            "Input: DIR holds clip.wav + clip.txt pairs (any format listend reads, also headerless\n"
            ".raw 16 kHz and .ul/.al 8 kHz G.711 as PBXs record calls; the .txt is\n"
            "what is said), or a TSV manifest (DIR/manifest.tsv or --manifest FILE) with a header\n"
            "naming the columns file and text (or reference_text), and optionally speaker;\n"
            "a relative `file` is found next to the manifest.\n"
            "At least %.0f s of transcribed speech in %d clips is needed beside the held-out part;\n"
            "a few minutes from several speakers is better.\n"
            "\n"
            "options:\n"
            "  --audio DIR        recordings with transcripts (required)\n"
            "  --out PACK         pack folder to write (required); its name is the model name:\n"
            "                     3-31 characters a-z 0-9 _ -, starting with a letter, not auto/general\n"
            "  --manifest FILE    TSV manifest instead of DIR's .txt files\n"
            "  --held-out F       fraction from 0 to 0.5 put aside to measure WER before/after (default\n"
            "                     0.2: every 5th clip; with a manifest speaker column every 5th\n"
            "                     speaker, at least one when there are two or more; 0 = none)\n"
            "  --language CODE    language of the model to adapt (default en; EN, en-US mean en, as\n"
            "                     for serve)\n"
            "  --models DIR       where that language's model lives when not built in (as serve)\n"
            "  --work DIR         keep the intermediate files there (default: a temp dir, removed)\n"
            "  --workers N        decoders for the held-out measurement (default: cores)\n"
            "  --denoise          denoise every clip as the server's noisy route does before\n"
            "                     adapting (for a pack named noisy: docs/engine.md)\n"
            "  -h, --help         this text\n"
            "\n"
            "exit status: 0 pack written, 1 failed (reason on stderr), 2 usage error; stopped by a signal: that\n"
            "signal (the shell shows 128 + its number; nothing is written)\n",
            MIN_ADAPT_S, MIN_ADAPT_CLIPS);
}

typedef struct {
    char *id;      /* unique, file-name safe */
    char *path;    /* audio */
    char *text;    /* transcript as given */
    char *speaker; /* "" when unknown */
    char **words;
    size_t n_words;
    double seconds;
    bool held_out;
    bool usable;    /* every word is in the dictionary */
    bool unaligned; /* bw could not align it to its transcript: no statistics from it */
} clip;

typedef struct {
    clip *v;
    size_t n, cap;
} clips;

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("adapt: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("listend adapt: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* snprintf for paths and names: truncation is checked where it matters (realpath,
 * open), and a vsnprintf wrapper keeps -Wformat-truncation quiet about the rest. */
/* A signal that asked adapt to stop (Ctrl-C, SIGTERM, SIGHUP): the running tool is
 * stopped, the step loops return, the temporary folder is removed, and the signal
 * is raised again so that the exit status says what happened. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig) { interrupted = sig; }

static int check_interrupted(void) { return interrupted ? fail("interrupted") : 0; }

static int strf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int strf(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(dst, n, fmt, ap);
    va_end(ap);
    return r;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

static bool push(clips *c, const char *path, const char *text, const char *speaker)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        clip *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return false;
        c->v = v;
        c->cap = cap;
    }
    clip *k = &c->v[c->n];
    memset(k, 0, sizeof *k);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char id[300];
    strf(id, sizeof id, "c%05zu_", c->n);
    size_t o = strlen(id);
    for (const char *p = base; *p && *p != '.' && o < sizeof id - 1; p++)
        id[o++] = (isalnum((unsigned char)*p) || *p == '-' || *p == '_') ? *p : '_';
    id[o] = 0;
    k->id = strdup(id);
    k->path = strdup(path);
    k->text = strdup(text);
    k->speaker = strdup(speaker ? speaker : "");
    if (!k->id || !k->path || !k->text || !k->speaker)
        return false;
    c->n++;
    return true;
}

static bool is_audio_name(const char *n)
{
    static const char *const ext[] = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".webm"};
    ld_stream_encoding enc;
    int rate;
    if (ld_audio_raw_by_name(n, &enc, &rate)) /* .raw, .ul, .al, … as `listend transcribe` reads them */
        return true;
    size_t l = strlen(n);
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        size_t e = strlen(ext[i]);
        if (l > e && !strcasecmp(n + l - e, ext[i]))
            return true;
    }
    return false;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The entry of `names` that is `base`'s transcript: same stem, ".txt" in any
 * case (UPPER.WAV + UPPER.TXT, as some recorders and Windows tools name them). */
static const char *transcript_of(const char *base, char **names, size_t n)
{
    const char *dot = strrchr(base, '.');
    size_t stem = dot ? (size_t)(dot - base) : strlen(base);
    for (size_t i = 0; i < n; i++)
        if (!strncmp(names[i], base, stem) && !strcasecmp(names[i] + stem, ".txt"))
            return names[i];
    return NULL;
}

static bool is_txt(const char *n)
{
    size_t l = strlen(n);
    return l > 4 && !strcasecmp(n + l - 4, ".txt");
}

/* One audio entry of DIR: its transcript read and pushed; a file that cannot be
 * read is skipped with the reason; a missing transcript is counted in *missing
 * (the first three named in first[]). */
static int read_pair(const char *dir, const char *name, char **names, size_t n, clips *out, size_t *missing,
                     char first[3][256])
{
    char path[PATH_MAX], txt[PATH_MAX];
    strf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    if (stat(path, &st) != 0) { /* e.g. a dangling symlink */
        progress("skipping %s: %s", path, strerror(errno));
        return 0;
    }
    const char *t = transcript_of(name, names, n);
    if (t)
        strf(txt, sizeof txt, "%s/%s", dir, t);
    else {
        strf(txt, sizeof txt, "%s", path);
        char *dot = strrchr(txt, '.');
        strf(dot, sizeof txt - (size_t)(dot - txt), ".txt");
    }
    size_t len;
    char *text = t ? ld_fs_read(txt, 1 << 20, &len) : NULL;
    if (!text) {
        if (*missing < 3)
            strf(first[*missing], sizeof first[0], "%s", txt);
        (*missing)++;
        return 0;
    }
    bool ok = push(out, path, trim(text), NULL);
    free(text);
    return ok ? 0 : fail("out of memory");
}

/* DIR/clip.<audio> + DIR/clip.txt. Missing transcripts are an error naming them;
 * a file with a transcript that is not audio listend reads is skipped with a line
 * (it used to vanish from the count unexplained). */
static int read_pairs(const char *dir, clips *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return fail("--audio %s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **g = realloc(names, cap * sizeof *g);
            if (!g)
                break;
            names = g;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_name);
    size_t missing = 0;
    char first[3][256] = {{0}};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (is_audio_name(names[i]))
            rc = read_pair(dir, names[i], names, n, out, &missing, first);
        else if (!is_txt(names[i]) && transcript_of(names[i], names, n))
            progress(
                "skipping %s/%s: not a supported audio format (wav, mp3, flac, ogg, opus, m4a, webm, raw, "
                "ul, al)",
                dir, names[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc)
        return rc;
    if (missing)
        return fail(
            "%zu audio file(s) have no transcript: %s%s%s%s%s (each clip.wav needs a clip.txt with what is "
            "said, or give a --manifest)",
            missing, first[0], missing > 1 ? ", " : "", first[1], missing > 2 ? ", " : "", first[2]);
    if (!out->n)
        return fail(
            "--audio %s: no audio files (wav, mp3, flac, ogg, opus, m4a, webm, raw, ul, al) with a .txt transcript",
            dir);
    return 0;
}

/* TSV with a header: file + text|reference_text [+ speaker]; paths relative to the manifest. */
static int read_manifest(const char *manifest, clips *out)
{
    FILE *f = fopen(manifest, "r");
    if (!f)
        return fail("manifest %s: %s", manifest, strerror(errno));
    char base[PATH_MAX];
    strf(base, sizeof base, "%s", manifest);
    char *slash = strrchr(base, '/');
    if (slash)
        *slash = 0;
    else
        strf(base, sizeof base, ".");
    char *line = NULL;
    size_t cap = 0;
    int col_file = -1, col_text = -1, col_spk = -1, lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, f) > 0 && !rc) {
        lineno++;
        char *cols[64];
        int nc = 0;
        for (char *s = line, *tab; nc < 64; s = tab + 1) {
            cols[nc++] = s;
            if (!(tab = strchr(s, '\t')))
                break;
            *tab = 0;
        }
        for (int i = 0; i < nc; i++)
            cols[i] = trim(cols[i]);
        if (lineno == 1) {
            for (int i = 0; i < nc; i++) {
                if (!strcmp(cols[i], "file") || !strcmp(cols[i], "path"))
                    col_file = i;
                else if (!strcmp(cols[i], "text") || !strcmp(cols[i], "reference_text") ||
                         !strcmp(cols[i], "transcript"))
                    col_text = i;
                else if (!strcmp(cols[i], "speaker"))
                    col_spk = i;
            }
            if (col_file < 0 || col_text < 0)
                rc = fail("manifest %s: the header must name a `file` and a `text` (or reference_text) column",
                          manifest);
            continue;
        }
        if (nc == 1 && !*cols[0])
            continue;
        if (col_file >= nc || col_text >= nc || !*cols[col_text]) {
            rc = fail("manifest %s line %d: missing transcript", manifest, lineno);
            break;
        }
        char path[PATH_MAX];
        if (cols[col_file][0] == '/')
            strf(path, sizeof path, "%s", cols[col_file]);
        else
            strf(path, sizeof path, "%s/%s", base, cols[col_file]);
        if (!push(out, path, cols[col_text], col_spk >= 0 && col_spk < nc ? cols[col_spk] : NULL))
            rc = fail("out of memory");
        if (out->n > MAX_CLIPS)
            rc = fail("manifest %s: more than %d clips", manifest, MAX_CLIPS);
    }
    free(line);
    fclose(f);
    if (!rc && !out->n)
        rc = fail("manifest %s: no clips", manifest);
    return rc;
}

/* Dictionary words (base forms) present in the model's dictionary, for lookups. */
typedef struct {
    char **w;
    size_t n;
} wordset;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool in_set(const wordset *s, const char *w)
{
    return bsearch(&w, s->w, s->n, sizeof *s->w, cmp_str) != NULL;
}

/* Writes the dictionary lines (with variants) of the words used; marks the
 * clips whose every word is known. */
static int write_dict(const char *dict, const char *out, clips *c, size_t *oov_clips)
{
    wordset used = {0};
    size_t cap = 0;
    for (size_t i = 0; i < c->n; i++)
        for (size_t k = 0; k < c->v[i].n_words; k++) {
            if (used.n == cap) {
                cap = cap ? cap * 2 : 1024;
                char **g = realloc(used.w, cap * sizeof *g);
                if (!g)
                    return fail("out of memory");
                used.w = g;
            }
            used.w[used.n++] = c->v[i].words[k];
        }
    if (used.n)
        qsort(used.w, used.n, sizeof *used.w, cmp_str);
    FILE *in = fopen(dict, "r"), *o = fopen(out, "w");
    if (!in || !o) {
        if (in)
            fclose(in);
        if (o)
            fclose(o);
        free(used.w);
        return fail("cannot read %s or write %s", dict, out);
    }
    wordset found = {0};
    size_t fcap = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, in) > 0) {
        char w[256];
        if (sscanf(line, "%255s", w) != 1)
            continue;
        char *paren = strchr(w, '(');
        if (paren)
            *paren = 0;
        if (!in_set(&used, w))
            continue;
        fputs(line, o);
        if (!paren) {
            if (found.n == fcap) {
                fcap = fcap ? fcap * 2 : 1024;
                char **g = realloc(found.w, fcap * sizeof *g);
                if (!g)
                    break;
                found.w = g;
            }
            found.w[found.n++] = strdup(w);
        }
    }
    free(line);
    fclose(in);
    fclose(o);
    if (found.n)
        qsort(found.w, found.n, sizeof *found.w, cmp_str);
    *oov_clips = 0;
    for (size_t i = 0; i < c->n; i++) {
        clip *k = &c->v[i];
        k->usable = k->n_words > 0;
        const char *missing = NULL;
        for (size_t j = 0; j < k->n_words && k->usable; j++)
            if (!in_set(&found, k->words[j])) {
                k->usable = false;
                missing = k->words[j];
            }
        if (missing && !k->held_out) {
            if (*oov_clips < 5)
                progress("skipping %s: \"%s\" is not in the dictionary", k->path, missing);
            (*oov_clips)++;
        }
    }
    for (size_t i = 0; i < found.n; i++)
        free(found.w[i]);
    free(found.w);
    free(used.w);
    return 0;
}

/* Runs a tool with stdout+stderr appended to `log`; 0 when it exits 0. */
static int run(const char *log, char *const argv[])
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE *f = freopen(log, "a", stdout);
        if (f)
            dup2(fileno(stdout), 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
        else if (interrupted) /* a terminal's Ctrl-C reaches the tool too; a kill of adapt alone does not */
            kill(pid, SIGTERM);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int tool(const char *work, const char *name, char *const argv[])
{
    char log[PATH_MAX];
    strf(log, sizeof log, "%s/%s.log", work, name);
    unlink(log); /* a reused --work folder: the log is read afterwards (mark_unaligned, solve_failed) */
    int rc = run(log, argv);
    if (check_interrupted())
        return 1;
    if (rc != 0)
        return fail("%s failed (exit %d); its log: %s", argv[0], rc, log);
    return 0;
}

static int check_tools(void)
{
    const char *tools[] = {BW, MLLR_SOLVE, SPHINX_FE, MDEF_CONVERT};
    const char *pkgs[] = {"sphinxtrain", "sphinxtrain", "sphinxbase-utils", "pocketsphinx"};
    for (size_t i = 0; i < 4; i++)
        if (access(tools[i], X_OK) != 0)
            return fail("%s is missing: install Debian's %s (scripts/bootstrap.sh does)", tools[i], pkgs[i]);
    return 0;
}

/* Index of the first clip of clip i's speaker. */
static size_t first_of_speaker(const clips *c, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (!strcmp(c->v[j].speaker, c->v[i].speaker))
            return j;
    return i;
}

/* Held-out choice: whole speakers when known (every k-th in order of first
 * appearance, and at least one when there are two or more: with fewer than k
 * speakers every k-th is none, and the measurement silently did not happen),
 * else every k-th clip, k = round(1 / fraction). Deterministic. When nothing
 * could be put aside, *why says so in the user's terms. */
static void choose_held_out(clips *c, double fraction, char *why, size_t whysz)
{
    strf(why, whysz, "--held-out 0");
    if (fraction <= 0)
        return;
    size_t k = (size_t)(1.0 / fraction + 0.5);
    if (k < 2)
        k = 2;
    bool speakers = c->n && c->v[0].speaker[0];
    if (!speakers) {
        for (size_t i = 0; i < c->n; i++)
            c->v[i].held_out = i % k == k - 1;
        if (c->n < k)
            strf(why, whysz, "%zu clips are too few to put one in %zu aside; give more clips", c->n, k);
        return;
    }
    size_t idx = 0, last = 0;
    for (size_t i = 0; i < c->n; i++) {
        size_t first = first_of_speaker(c, i);
        if (first == i) {
            c->v[i].held_out = idx++ % k == k - 1;
            last = i;
        } else {
            c->v[i].held_out = c->v[first].held_out;
        }
    }
    size_t n_spk = idx;
    if (n_spk >= 2 && n_spk < k) /* none was the k-th: the last speaker to appear */
        for (size_t i = 0; i < c->n; i++)
            c->v[i].held_out = !strcmp(c->v[i].speaker, c->v[last].speaker);
    if (n_spk < 2)
        strf(why, whysz,
             "the manifest names one speaker and the held-out part is whole speakers; add speakers, or drop "
             "the speaker column to hold out clips");
}

typedef struct {
    size_t errs, words;
} wer_t;

/* Transcribes the held-out clips with `model` and sums word errors. */
static int measure(ld_pool *pool, clips *c, const char *model, const char *language, wer_t *w)
{
    w->errs = w->words = 0;
    for (size_t i = 0; i < c->n; i++) {
        clip *k = &c->v[i];
        if (check_interrupted())
            return 1;
        if (!k->held_out || !k->n_words)
            continue;
        ld_pcm pcm;
        ld_error err = {0};
        ld_decode_opts d = {0};
        if (ld_audio_decode_named(k->path, &d, &pcm, &err) != LD_OK)
            return fail("%s: %s", k->path, err.msg);
        ld_transcribe_opts o;
        ld_transcribe_opts_default(&o);
        o.punctuate = false;
        strf(o.language, sizeof o.language, "%s", language);
        strf(o.model, sizeof o.model, "%s", model);
        ld_transcript *t = ld_pool_transcribe(pool, &pcm, &o, NULL, NULL, &err);
        ld_pcm_free(&pcm);
        if (!t)
            return fail("transcribing %s: %s", k->path, err.msg);
        char **hyp = calloc(t->n_words ? t->n_words : 1, sizeof *hyp);
        size_t nh = 0;
        for (size_t j = 0; hyp && j < t->n_words; j++)
            nh += ld_adapt_words(t->words[j].word, hyp + nh, t->n_words - nh);
        w->errs += ld_adapt_edits(k->words, k->n_words, hyp, nh);
        w->words += k->n_words;
        for (size_t j = 0; j < nh; j++)
            free(hyp[j]);
        free(hyp);
        ld_transcript_free(t);
    }
    return 0;
}

static int rm_rf(const char *path)
{
    char *argv[] = {"/bin/rm", "-rf", (char *)path, NULL};
    return run("/dev/null", argv);
}

typedef struct {
    const char *audio, *out, *manifest, *language, *models, *work;
    double held_out;
    int workers;
    bool denoise;          /* the noisy route's denoiser on every clip (audio/denoise.h) */
    char no_held_out[200]; /* why nothing is held out (choose_held_out) */
} adapt_args;

/* bw drops a clip whose audio it cannot align to its transcript (a transcript
 * that is not what is said, or much longer than the clip) with a log line
 * 'ERROR: "baum_welch.c", line N: <id> ignored' and carries on: such a clip adds
 * nothing, and with all of them dropped mllr_solve's estimate failed and the
 * pack was the identity. Marks them and names the first few. */
static void mark_unaligned(const char *bw_log, clips *c)
{
    FILE *f = fopen(bw_log, "r");
    char *line = NULL;
    size_t cap = 0, n = 0;
    while (f && getline(&line, &cap, f) > 0) {
        char id[300];
        const char *at = strstr(line, "baum_welch.c");
        const char *colon = at ? strstr(at, ": ") : NULL;
        if (!colon || sscanf(colon + 2, "%299s", id) != 1 || !strstr(colon, " ignored"))
            continue;
        for (size_t i = 0; i < c->n; i++) {
            clip *k = &c->v[i];
            if (k->unaligned || strcmp(k->id, id))
                continue;
            k->unaligned = true;
            if (n++ < 5)
                progress(
                    "skipping %s: bw could not align it to its transcript (is the transcript what is "
                    "said, all of it?)",
                    k->path);
        }
    }
    if (n > 5)
        progress("... %zu clips could not be aligned in all", n);
    free(line);
    if (f)
        fclose(f);
}

/* The adaptation part as bw used it: clips aligned, and their seconds. */
static size_t adapt_part(const clips *c, double *seconds)
{
    size_t n = 0;
    *seconds = 0;
    for (size_t i = 0; i < c->n; i++)
        if (!c->v[i].held_out && c->v[i].usable && !c->v[i].unaligned) {
            n++;
            *seconds += c->v[i].seconds;
        }
    return n;
}

/* mllr_solve exits 0 when its estimate fails ("Estimation of ... failed") and
 * writes the identity: not a pack. */
static bool solve_failed(const char *log)
{
    size_t len;
    char *t = ld_fs_read(log, 64 << 20, &len);
    bool failed = !t || strcasestr(t, "failed");
    free(t);
    return failed;
}

static int adapt(const adapt_args *a, clips *c, const char *work)
{
    ld_error err = {0};
    char model_dir[PATH_MAX];
    strf(model_dir, sizeof model_dir, "%s/%s", a->models ? a->models : "", a->language);
    if (!a->models || access(model_dir, R_OK) != 0) {
        if (strcmp(a->language, "en"))
            return fail("no model for language '%s': give --models DIR with DIR/%s/", a->language, a->language);
        strf(model_dir, sizeof model_dir, "%s", LD_MODEL_DEFAULT_DIR);
    }
    ld_model_files mf;
    if (ld_model_resolve(model_dir, &mf, &err) != LD_OK)
        return fail("%s", err.msg);

    /* 1. audio: listend's own decoding, 16 kHz raw for sphinx_fe */
    progress("reading %zu clips from %s", c->n, a->manifest ? a->manifest : a->audio);
    char raw_dir[PATH_MAX], mfc_dir[PATH_MAX];
    strf(raw_dir, sizeof raw_dir, "%s/raw", work);
    strf(mfc_dir, sizeof mfc_dir, "%s/mfc", work);
    if (ld_fs_mkdirs(raw_dir, 0700) || ld_fs_mkdirs(mfc_dir, 0700))
        return fail("cannot create %s", work);
    size_t narrow = 0;
    for (size_t i = 0; i < c->n; i++) {
        clip *k = &c->v[i];
        if (check_interrupted())
            return 1;
        char *words[MAX_WORDS];
        k->n_words = ld_adapt_words(k->text, words, MAX_WORDS);
        k->words = malloc((k->n_words ? k->n_words : 1) * sizeof *k->words);
        if (!k->words)
            return fail("out of memory");
        memcpy(k->words, words, k->n_words * sizeof *words);
        if (!k->n_words)
            return fail("%s: the transcript is empty", k->path);
        ld_pcm pcm;
        ld_decode_opts d = {0};
        if (ld_audio_decode_named(k->path, &d, &pcm, &err) != LD_OK)
            return fail("%s: %s", k->path, err.msg);
        k->seconds = ld_pcm_seconds(&pcm);
        narrow += pcm.narrowband;
        size_t nonzero = 0;
        for (size_t s = 0; s < pcm.n && !nonzero; s++)
            nonzero += pcm.samples[s] != 0;
        if (k->seconds < 0.1 || !nonzero) {
            ld_pcm_free(&pcm);
            return fail("%s: the audio is empty (%.2f s%s)", k->path, k->seconds, nonzero ? "" : ", all silent");
        }
        if (a->denoise) { /* what the server does to noisy audio before decoding it */
            if (ld_audio_denoise_route(pcm.samples, pcm.n, ld_audio_noise_dbfs(pcm.samples, pcm.n), &err) !=
                LD_OK) {
                ld_pcm_free(&pcm);
                return fail("%s: %s", k->path, err.msg);
            }
        }
        char path[PATH_MAX];
        strf(path, sizeof path, "%s/%s.raw", raw_dir, k->id);
        FILE *f = fopen(path, "wb");
        bool ok = f && fwrite(pcm.samples, 2, pcm.n, f) == pcm.n;
        if (f)
            ok = fclose(f) == 0 && ok;
        ld_pcm_free(&pcm);
        if (!ok)
            return fail("cannot write %s", path);
        if ((i + 1) % 25 == 0 || i + 1 == c->n)
            progress("  decoded %zu/%zu", i + 1, c->n);
    }
    if (narrow)
        progress("%zu of %zu clips are telephone band (<= 8 kHz or G.711): decoded as the server does", narrow,
                 c->n);

    /* 2. dictionary and the adaptation part */
    char dict[PATH_MAX];
    strf(dict, sizeof dict, "%s/adapt.dict", work);
    size_t oov = 0;
    if (write_dict(mf.dict, dict, c, &oov))
        return 1;
    double adapt_s = 0, held_s = 0;
    size_t n_adapt = 0, n_held = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].held_out) {
            held_s += c->v[i].seconds;
            n_held++;
        } else if (c->v[i].usable) {
            adapt_s += c->v[i].seconds;
            n_adapt++;
        }
    }
    if (oov > 5)
        progress("... %zu clips skipped in all for words not in the dictionary", oov);
    progress("adaptation part: %zu clips, %.1f s; held-out part: %zu clips, %.1f s", n_adapt, adapt_s, n_held,
             held_s);
    if (adapt_s < MIN_ADAPT_S || n_adapt < MIN_ADAPT_CLIPS)
        return fail(
            "too little data: %.1f s in %zu usable clips for adaptation; at least %.0f s in %d clips are "
            "needed (a few minutes from several speakers is better)%s",
            adapt_s, n_adapt, MIN_ADAPT_S, MIN_ADAPT_CLIPS,
            n_held ? "; --held-out 0 uses every clip, without a before/after measurement" : "");

    char ctl[PATH_MAX], lsn[PATH_MAX];
    strf(ctl, sizeof ctl, "%s/adapt.fileids", work);
    strf(lsn, sizeof lsn, "%s/adapt.transcription", work);
    FILE *fc = fopen(ctl, "w"), *fl = fopen(lsn, "w");
    if (!fc || !fl) {
        if (fc)
            fclose(fc);
        if (fl)
            fclose(fl);
        return fail("cannot write in %s", work);
    }
    for (size_t i = 0; i < c->n; i++) {
        clip *k = &c->v[i];
        if (k->held_out || !k->usable)
            continue;
        fprintf(fc, "%s\n", k->id);
        fputs("<s>", fl);
        for (size_t j = 0; j < k->n_words; j++)
            fprintf(fl, " %s", k->words[j]);
        fprintf(fl, " </s> (%s)\n", k->id);
    }
    fclose(fc);
    fclose(fl);

    /* 3. the model as bw wants it */
    char hmm[PATH_MAX], p_mdef[PATH_MAX], p_mixw[PATH_MAX], src[PATH_MAX], featp[PATH_MAX];
    strf(hmm, sizeof hmm, "%s/model", work);
    if (ld_fs_mkdirs(hmm, 0700))
        return fail("cannot create %s", hmm);
    strf(p_mdef, sizeof p_mdef, "%s/mdef.txt", hmm);
    strf(p_mixw, sizeof p_mixw, "%s/mixture_weights", hmm);
    strf(src, sizeof src, "%s/sendump", mf.acoustic);
    strf(featp, sizeof featp, "%s/feat.params", mf.acoustic);
    progress("preparing the model (mixture weights from sendump, text mdef)");
    if (ld_adapt_write_mixw(src, p_mixw, &err) != LD_OK)
        return fail("%s (only semi-continuous/PTM models with a sendump can be adapted)", err.msg);
    char mdef_in[PATH_MAX];
    strf(mdef_in, sizeof mdef_in, "%s/mdef", mf.acoustic);
    char *conv[] = {MDEF_CONVERT, "-text", mdef_in, p_mdef, NULL};
    if (tool(work, "mdef_convert", conv))
        return 1;

    /* 4. cepstra with the model's own front-end settings */
    progress("computing cepstra (sphinx_fe)");
    char *fe[] = {SPHINX_FE, "-argfile",        featp, "-samprate", "16000", "-c",  ctl,    "-di", raw_dir,
                  "-do",     mfc_dir,           "-ei", "raw",       "-eo",   "mfc", "-raw", "yes", "-dither",
                  "no",      "-remove_silence", "no",  NULL};
    if (tool(work, "sphinx_fe", fe))
        return 1;

    /* 5. Baum-Welch statistics, 6. the transform */
    progress("collecting statistics (sphinxtrain bw)");
    char acc[PATH_MAX], means[PATH_MAX], vars[PATH_MAX], tmat[PATH_MAX], noise[PATH_MAX], mllr[PATH_MAX];
    strf(acc, sizeof acc, "%s/acc", work);
    strf(means, sizeof means, "%s/means", mf.acoustic);
    strf(vars, sizeof vars, "%s/variances", mf.acoustic);
    strf(tmat, sizeof tmat, "%s/transition_matrices", mf.acoustic);
    strf(noise, sizeof noise, "%s/noisedict", mf.acoustic);
    strf(mllr, sizeof mllr, "%s/mllr_matrix", work);
    if (ld_fs_mkdirs(acc, 0700))
        return fail("cannot create %s", acc);
    char *bw[] = {BW,
                  "-moddeffn",
                  p_mdef,
                  "-ts2cbfn",
                  ".ptm.",
                  "-meanfn",
                  means,
                  "-varfn",
                  vars,
                  "-mixwfn",
                  p_mixw,
                  "-tmatfn",
                  tmat,
                  "-feat",
                  "1s_c_d_dd",
                  "-svspec",
                  "0-12/13-25/26-38",
                  "-cmn",
                  "batch",
                  "-agc",
                  "none",
                  "-varnorm",
                  "no",
                  "-dictfn",
                  dict,
                  "-fdictfn",
                  noise,
                  "-ctlfn",
                  ctl,
                  "-lsnfn",
                  lsn,
                  "-accumdir",
                  acc,
                  "-cepdir",
                  mfc_dir,
                  "-cepext",
                  "mfc",
                  "-timing",
                  "no",
                  NULL};
    if (tool(work, "bw", bw))
        return 1;
    char bw_log[PATH_MAX];
    strf(bw_log, sizeof bw_log, "%s/bw.log", work);
    mark_unaligned(bw_log, c);
    size_t n_used = adapt_part(c, &adapt_s);
    if (n_used < n_adapt) {
        progress("adaptation part as aligned: %zu of %zu clips, %.1f s", n_used, n_adapt, adapt_s);
        if (adapt_s < MIN_ADAPT_S || n_used < MIN_ADAPT_CLIPS)
            return fail(
                "too little aligned data: bw could align %zu of the %zu clips (%.1f s); at least %.0f s in "
                "%d clips are needed. Check that each transcript is what its clip says",
                n_used, n_adapt, adapt_s, MIN_ADAPT_S, MIN_ADAPT_CLIPS);
        n_adapt = n_used;
    }
    double cmn[13] = {0};
    size_t frames = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].held_out || !c->v[i].usable || c->v[i].unaligned)
            continue;
        char path[PATH_MAX];
        strf(path, sizeof path, "%s/%s.mfc", mfc_dir, c->v[i].id);
        if (ld_adapt_mfc_sum(path, cmn, &frames, &err) != LD_OK)
            return fail("%s", err.msg);
    }
    progress("estimating the MLLR transform (sphinxtrain mllr_solve) from %zu frames", frames);
    char *solve[] = {MLLR_SOLVE, "-meanfn", means, "-varfn", vars, "-outmllrfn", mllr, "-accumdir", acc, NULL};
    if (tool(work, "mllr_solve", solve))
        return 1;
    char solve_log[PATH_MAX];
    strf(solve_log, sizeof solve_log, "%s/mllr_solve.log", work);
    if (solve_failed(solve_log))
        return fail("%s could not estimate a transform from these clips; its log: %s", MLLR_SOLVE, solve_log);

    /* 7. the pack: staged as <work>/models/<name> for the measurement, written to --out
     * only when complete (an interrupted run leaves no half pack that serve would load) */
    const char *name = strrchr(a->out, '/') ? strrchr(a->out, '/') + 1 : a->out;
    char models[PATH_MAX], stage[PATH_MAX], dst[PATH_MAX];
    strf(models, sizeof models, "%s/models", work);
    strf(stage, sizeof stage, "%s/%s", models, name);
    strf(dst, sizeof dst, "%s/mllr_matrix", stage);
    size_t len;
    char *mtext = ld_fs_read(mllr, 1 << 20, &len);
    if (!mtext || ld_fs_mkdirs(stage, 0700) || ld_fs_write_atomic(dst, mtext, len, 0644)) {
        free(mtext);
        return fail("cannot write %s", dst);
    }
    json_t *cm = json_array();
    for (int i = 0; i < 13; i++) /* 2 decimals: stable across machines, far finer than CMN needs */
        json_array_append_new(
            cm,
            json_real(frames ? (double)(long)(cmn[i] / (double)frames * 100.0 + (cmn[i] >= 0 ? 0.5 : -0.5)) / 100.0
                             : 0.0));
    json_t *pack = json_pack("{s:s, s:s, s:s, s:o, s:{s:i, s:f}}", "name", name, "language", a->language, "kind",
                             "mllr", "mean_cepstrum", cm, "adaptation", "clips", (int)n_adapt, "seconds",
                             (double)(long)(adapt_s * 10 + 0.5) / 10);

    /* 8. held-out WER before/after, through the server's pool */
    if (n_held) {
        progress("measuring WER on the held-out part (%zu clips), general model and the new pack", n_held);
        if (a->models) { /* the language folder too, when not built in */
            char lang_link[PATH_MAX], real_lang[PATH_MAX];
            strf(lang_link, sizeof lang_link, "%s/%s", models, a->language);
            if (realpath(model_dir, real_lang) && strcmp(model_dir, LD_MODEL_DEFAULT_DIR))
                (void)!symlink(real_lang, lang_link);
        }
        ld_pool_config pc = {.workers = a->workers, .models_dir = models};
        ld_pool *pool = ld_pool_new(&pc, &err);
        if (!pool) {
            json_decref(pack);
            return fail("%s", err.msg);
        }
        wer_t before, after;
        int rc = measure(pool, c, "general", a->language, &before);
        if (!rc)
            rc = measure(pool, c, name, a->language, &after);
        ld_pool_free(pool);
        if (rc) {
            json_decref(pack);
            return rc;
        }
        double wb = before.words ? 100.0 * (double)before.errs / (double)before.words : 0;
        double wa = after.words ? 100.0 * (double)after.errs / (double)after.words : 0;
        printf("held-out WER: before %.1f %% (%zu/%zu words), after %.1f %% (%zu/%zu)\n", wb, before.errs,
               before.words, wa, after.errs, after.words);
        json_object_set_new(pack, "held_out",
                            json_pack("{s:i, s:i, s:f, s:f}", "clips", (int)n_held, "words", (int)before.words,
                                      "wer_before", wb, "wer_after", wa));
    } else {
        printf("held-out WER: not measured (%s)\n", a->no_held_out);
    }
    char *js = json_dumps(pack, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(pack);
    if (check_interrupted()) {
        free(js), free(mtext);
        return 1;
    }
    strf(dst, sizeof dst, "%s/mllr_matrix", a->out);
    bool ok = js && !ld_fs_mkdirs(a->out, 0755) && !ld_fs_write_atomic(dst, mtext, len, 0644);
    if (ok) { /* pack.json last: its presence says the pack is whole */
        strf(dst, sizeof dst, "%s/pack.json", a->out);
        ok = !ld_fs_write_atomic(dst, js, strlen(js), 0644);
    }
    free(js), free(mtext);
    if (!ok)
        return fail("cannot write %s: %s", dst, strerror(errno));
    char parent[PATH_MAX];
    strf(parent, sizeof parent, "%s", a->out);
    char *sl = strrchr(parent, '/');
    if (sl)
        *sl = 0;
    else
        strf(parent, sizeof parent, ".");
    printf(
        "model pack written to %s\n  serve it:  listend serve --models %s\n  use it:    model=%s (query "
        "parameter or form field)\n",
        a->out, parent, name);
    return 0;
}

int ld_cli_adapt_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"audio", required_argument, 0, 'a'},
        {"out", required_argument, 0, 'o'},
        {"manifest", required_argument, 0, 'M'},
        {"held-out", required_argument, 0, 'H'},
        {"language", required_argument, 0, 'l'},
        {"models", required_argument, 0, 'm'},
        {"work", required_argument, 0, 'W'},
        {"workers", required_argument, 0, 'w'},
        {"denoise", no_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    adapt_args a = {.language = "en", .held_out = 0.2};
    char language[16];
    optind = 1;
    for (int ch; (ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1;) {
        char *end;
        switch (ch) {
        case 'a': a.audio = optarg; break;
        case 'o': a.out = optarg; break;
        case 'M': a.manifest = optarg; break;
        case 'l': /* as serve and requests take it: EN, en-US, en_US.UTF-8 -> en */
            ld_opts_language(optarg, language, sizeof language);
            a.language = language;
            break;
        case 'm': a.models = optarg; break;
        case 'W': a.work = optarg; break;
        case 'd': a.denoise = true; break;
        case 'H':
            a.held_out = strtod(optarg, &end);
            if (end == optarg || *end || !(a.held_out >= 0 && a.held_out <= 0.5)) { /* NaN fails both */
                fprintf(stderr, "listend adapt: --held-out must be a fraction from 0 to 0.5\n");
                return 2;
            }
            break;
        case 'w':
            a.workers = (int)strtol(optarg, &end, 10);
            if (*end || a.workers < 1 || a.workers > 64) {
                fprintf(stderr, "listend adapt: --workers must be a number from 1 to 64\n");
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if ((!a.audio && !a.manifest) || !a.out || optind < argc) {
        fprintf(stderr, "listend adapt: --audio DIR (or --manifest FILE) and --out PACK are required\n\n");
        usage(stderr);
        return 2;
    }
    char outbuf[PATH_MAX];
    strf(outbuf, sizeof outbuf, "%s", a.out);
    size_t ol = strlen(outbuf);
    while (ol > 1 && outbuf[ol - 1] == '/')
        outbuf[--ol] = 0;
    a.out = outbuf;
    const char *name = strrchr(a.out, '/') ? strrchr(a.out, '/') + 1 : a.out;
    if (!ld_pack_name_ok(name)) {
        fprintf(stderr,
                "listend adapt: --out %s: the folder name is the model name and must be 3-31 characters "
                "[a-z0-9_-] starting with a letter, not auto or general\n",
                a.out);
        return 2;
    }
    struct stat st;
    int bad = !a.models ? 0 : stat(a.models, &st) != 0 ? errno : !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
    if (bad) { /* serve refuses it too; here it fell back to the built-in model unsaid */
        fprintf(stderr, "listend adapt: --models %s: %s\n", a.models, strerror(bad));
        return 2;
    }
    ld_log_set_level(LD_LOG_WARNING);
    if (check_tools())
        return 1;

    clips c = {0};
    char manifest[PATH_MAX] = "";
    if (a.manifest)
        strf(manifest, sizeof manifest, "%s", a.manifest);
    else if (strf(manifest, sizeof manifest, "%s/manifest.tsv", a.audio) > 0 && access(manifest, R_OK) != 0)
        manifest[0] = 0;
    int rc = manifest[0] ? read_manifest(manifest, &c) : read_pairs(a.audio, &c);
    if (!rc) {
        choose_held_out(&c, a.held_out, a.no_held_out, sizeof a.no_held_out);
        char work[PATH_MAX];
        bool temp = !a.work;
        if (temp) {
            const char *tmp = getenv("TMPDIR");
            strf(work, sizeof work, "%s/listend-adapt-XXXXXX", tmp && *tmp ? tmp : "/tmp");
            if (!mkdtemp(work))
                rc = fail("cannot create a temporary folder: %s", strerror(errno));
        } else {
            strf(work, sizeof work, "%s", a.work);
            if (ld_fs_mkdirs(work, 0700))
                rc = fail("cannot create %s", work);
        }
        if (!rc) {
            a.manifest = manifest[0] ? manifest : NULL;
            struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waitpid returns */
            sigemptyset(&sa.sa_mask);
            sigaction(SIGINT, &sa, NULL), sigaction(SIGTERM, &sa, NULL), sigaction(SIGHUP, &sa, NULL);
            rc = adapt(&a, &c, work);
            if (temp)
                rm_rf(work);
        }
    }
    for (size_t i = 0; i < c.n; i++) {
        for (size_t j = 0; j < c.v[i].n_words; j++)
            free(c.v[i].words[j]);
        free(c.v[i].words);
        free(c.v[i].id), free(c.v[i].path), free(c.v[i].text), free(c.v[i].speaker);
    }
    free(c.v);
    if (interrupted) {
        signal(interrupted, SIG_DFL);
        raise(interrupted);
    }
    return rc;
}
