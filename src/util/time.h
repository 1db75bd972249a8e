/* Clocks, deadlines for timed waits, ISO 8601 / duration parsing. Thread-safe. */
#ifndef LD_UTIL_TIME_H
#define LD_UTIL_TIME_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

int64_t ld_time_now(void);    /* unix seconds (wall clock) */
int64_t ld_time_now_ms(void); /* unix milliseconds (wall clock) */
double ld_time_mono(void);    /* monotonic seconds, for durations and timeouts */
/* The wall-clock instant `ms` milliseconds from now, as pthread_cond_timedwait
 * wants it (condition variables here use the default CLOCK_REALTIME). */
struct timespec ld_time_deadline(int64_t ms);

/* "2024-12-31T23:59:59Z" into out (>= 21 bytes). */
void ld_time_iso8601(int64_t unix_s, char out[21]);
/* "2024-12-31T23:59:59.123Z" into out (>= 25 bytes). */
void ld_time_iso8601_ms(int64_t unix_ms, char out[25]);
/* JSON "2024-12-31T23:59:59Z" for a unix time, null for 0 or less ("never",
 * "not yet"). New reference. */
json_t *ld_time_json(int64_t unix_s);
/* Accepts YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z|±HH:MM]. 0 on success. */
int ld_time_parse_iso8601(const char *s, int64_t *unix_s);
/* "90d", "12h", "30m", "45s", "2w" or plain seconds. 0 on success. */
int ld_time_parse_duration(const char *s, int64_t *seconds);
/* UTC day "YYYY-MM-DD" of a unix time into out (>= 11 bytes). */
void ld_time_utc_day(int64_t unix_s, char out[11]);

#endif
