/* Errors: one enum for the whole program, mapped 1:1 to an HTTP status and the
 * UPPER_SNAKE `code` of the JSON envelope. Functions that can fail return ld_err
 * and, when given one, fill an ld_error with a human message for the client.
 * Thread-safe: everything here is pure. */
#ifndef LD_UTIL_ERR_H
#define LD_UTIL_ERR_H

#include <jansson.h>
#include <stdarg.h>

typedef enum {
    LD_OK = 0,
    LD_ERR_MISSING_PARAMETER,    /* 400 */
    LD_ERR_INVALID_PARAMETER,    /* 400 */
    LD_ERR_INVALID_AUDIO,        /* 400 */
    LD_ERR_URL_FETCH_FAILED,     /* 400 */
    LD_ERR_UNSUPPORTED_LANGUAGE, /* 400 */
    LD_ERR_INVALID_LICENSE,      /* 401 */
    LD_ERR_LICENSE_EXPIRED,      /* 403 */
    LD_ERR_QUOTA_EXCEEDED,       /* 403 */
    LD_ERR_NOT_FOUND,            /* 404 */
    LD_ERR_METHOD_NOT_ALLOWED,   /* 405 */
    LD_ERR_REQUEST_TIMEOUT,      /* 408 */
    LD_ERR_UNSUPPORTED_FORMAT,   /* 415 */
    LD_ERR_FILE_TOO_LARGE,       /* 422 */
    LD_ERR_AUDIO_TOO_LONG,       /* 422 */
    LD_ERR_RATE_LIMITED,         /* 429 */
    LD_ERR_INTERNAL,             /* 500 */
    LD_ERR_SERVICE_UNAVAILABLE,  /* 503 */
    LD_ERR__COUNT
} ld_err;

/* An error with its client-facing message. `msg` is always NUL-terminated. */
typedef struct {
    ld_err code;
    char msg[256];
} ld_error;

/* Replaces each byte of an invalid UTF-8 sequence in s with '?', in place.
 * Client text (a query value, a path) goes into JSON strings, which jansson
 * refuses unless they are UTF-8: json_string() returns NULL and the member is
 * silently lost. ld_error_set applies it to every message. */
void ld_err_utf8_clean(char *s);

int ld_err_status(ld_err e);                  /* HTTP status, 200 for LD_OK */
const char *ld_err_code(ld_err e);            /* "INVALID_PARAMETER"; static string */
const char *ld_err_default_message(ld_err e); /* "Invalid license key"; static string */
ld_err ld_err_parse(const char *code);        /* ld_err_code's inverse; LD_ERR_INTERNAL when unknown */

/* Sets err (if non-NULL) and returns e, so callers can `return ld_error_set(...)`.
 * A NULL fmt uses the default message. */
ld_err ld_error_set(ld_error *err, ld_err e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
ld_err ld_error_vset(ld_error *err, ld_err e, const char *fmt, va_list ap);

/* The one JSON error envelope: {"error": err->msg (or the default message),
 * "code": ld_err_code(err->code), "request_id" (when non-empty), ...extra}.
 * HTTP error bodies and failed jobs' stored errors are built here. `extra`
 * (may be NULL) is stolen; its "error" and "code" members are ignored.
 * New reference. */
json_t *ld_error_json(const ld_error *err, const char *request_id, json_t *extra);

#endif
