#include "util/log.h"
#include "util/err.h"
#include "util/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static ld_log_level min_level = LD_LOG_INFO;
static const char *names[] = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"};

void ld_log_set_level(ld_log_level lvl) { min_level = lvl; }
int ld_log_enabled(ld_log_level lvl) { return lvl >= min_level; }

int ld_log_parse_level(const char *s, ld_log_level *out)
{
    if (!s)
        return -1;
    for (int i = 0; i < 5; i++)
        if (!strcasecmp(s, names[i])) {
            *out = (ld_log_level)i;
            return 0;
        }
    if (!strcasecmp(s, "warn")) {
        *out = LD_LOG_WARNING;
        return 0;
    }
    return -1;
}

static void emit(ld_log_level lvl, json_t *fields, const char *fmt, va_list ap)
{
    if (lvl < min_level) {
        json_decref(fields);
        return;
    }
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    ld_err_utf8_clean(msg);
    char ts[32];
    ld_time_iso8601_ms(ld_time_now_ms(), ts);
    json_t *o = json_object();
    json_object_set_new(o, "timestamp", json_string(ts));
    json_object_set_new(o, "level", json_string(names[lvl]));
    json_object_set_new(o, "message", json_string(msg));
    if (fields)
        json_object_update(o, fields);
    json_decref(fields);
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (line) {
        flockfile(stderr);
        fputs(line, stderr);
        fputc('\n', stderr);
        funlockfile(stderr);
        free(line);
    }
}

void ld_log(ld_log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(lvl, NULL, fmt, ap);
    va_end(ap);
}

void ld_log_fields(ld_log_level lvl, json_t *fields, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(lvl, fields, fmt, ap);
    va_end(ap);
}

void ld_log_library(void *component, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    ld_log_fields(LD_LOG_WARNING, json_pack("{s:s}", "component", (const char *)component), "%s", msg);
}
