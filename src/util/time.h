/* Clocks and ISO 8601 / duration parsing. Thread-safe. */
#ifndef LD_UTIL_TIME_H
#define LD_UTIL_TIME_H

#include <stdint.h>

int64_t ld_time_now(void);     /* unix seconds (wall clock) */
int64_t ld_time_now_ms(void);  /* unix milliseconds (wall clock) */
double ld_time_mono(void);     /* monotonic seconds, for durations and timeouts */

/* "2024-12-31T23:59:59Z" into out (>= 21 bytes). */
void ld_time_iso8601(int64_t unix_s, char out[21]);
/* "2024-12-31T23:59:59.123Z" into out (>= 25 bytes). */
void ld_time_iso8601_ms(int64_t unix_ms, char out[25]);
/* Accepts YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z|±HH:MM]. 0 on success. */
int ld_time_parse_iso8601(const char *s, int64_t *unix_s);
/* "90d", "12h", "30m", "45s", "2w" or plain seconds. 0 on success. */
int ld_time_parse_duration(const char *s, int64_t *seconds);
/* UTC day "YYYY-MM-DD" of a unix time into out (>= 11 bytes). */
void ld_time_utc_day(int64_t unix_s, char out[11]);

#endif
