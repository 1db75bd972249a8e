/* Structured logging: one JSON object per line on stderr, fields `timestamp`,
 * `level`, `message` plus any extra fields. Thread-safe. */
#ifndef LD_UTIL_LOG_H
#define LD_UTIL_LOG_H

#include <jansson.h>
#include <stdarg.h>

typedef enum { LD_LOG_DEBUG, LD_LOG_INFO, LD_LOG_WARNING, LD_LOG_ERROR, LD_LOG_CRITICAL } ld_log_level;

void ld_log_set_level(ld_log_level lvl);
int ld_log_enabled(ld_log_level lvl);
/* "debug", "info", "warning"/"warn", "error", "critical" (any case); 0 on success. */
int ld_log_parse_level(const char *s, ld_log_level *out);

void ld_log(ld_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `fields` (may be NULL) is an object whose members are added to the line; stolen. */
void ld_log_fields(ld_log_level lvl, json_t *fields, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A library's printf-style message (libmicrohttpd's external logger has this
 * signature): trailing newline and spaces trimmed, logged at WARNING with the
 * field {"component": component}; `component` is a const char *. */
void ld_log_library(void *component, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif
