/* Shared helpers for the audio unit tests: a private temp dir and fixtures
 * made on the fly with the ffmpeg CLI (nothing binary is checked in). */
#ifndef LD_AUDIO_FIXTURE_H
#define LD_AUDIO_FIXTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLIP LD_SHARED_DIR "/eval/real/ps_librivox_sns01_0880.wav" /* 2.99 s, 16 kHz mono */

static char fx_dir[256];

static void fx_cleanup(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx_dir);
    if (fx_dir[0] && system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", fx_dir);
}

__attribute__((unused)) static const char *fx_init(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(fx_dir, sizeof fx_dir, "%s/ld-audio-test-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(fx_dir)) {
        perror("mkdtemp");
        exit(2);
    }
    atexit(fx_cleanup);
    return fx_dir;
}

/* fx_dir + "/" + name, in a rotating static buffer. */
__attribute__((unused)) static const char *fx_path(const char *name)
{
    static char bufs[8][512];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, 512, "%s/%s", fx_dir, name);
    return b;
}

/* Runs an ffmpeg command line (arguments after "ffmpeg"); 0 on success. */
__attribute__((unused)) static int fx_ffmpeg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((unused)) static int fx_ffmpeg(const char *fmt, ...)
{
    char args[2048], cmd[2560];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && ffmpeg -nostdin -hide_banner -loglevel error -y %s", fx_dir, args);
    int r = system(cmd);
    if (r != 0)
        fprintf(stderr, "fixture command failed (%d): %s\n", r, cmd);
    return r;
}

__attribute__((unused)) static unsigned char *fx_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b)
        *len = (size_t)n;
    return b;
}

__attribute__((unused)) static int fx_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) || w != len ? -1 : 0;
}

#endif
