/* Loaded (LD_PRELOAD) only into the process scripts/valgrind.sh runs under
 * memcheck; never part of listend.
 *
 * FFmpeg's libavcodec pulls in libjxl, which pulls in Highway (libhwy.so.1).
 * A constructor of libhwy calls hwy::platform::TimerResolution() before
 * main(), and that executes RDTSCP. Valgrind 3.19 (Debian bookworm) cannot
 * emulate RDTSCP on some hosts (seen on AMD EPYC guests: "unhandled
 * instruction bytes: 0xF 0x1 0xF9", SIGILL before main), so the server could
 * not even start under memcheck there. The timer only serves Highway's
 * nanobenchmark, which nothing in listend uses; this wrapper (valgrind's
 * function-wrapping mechanism, matched by soname + symbol) answers it without
 * touching the TSC and says so in the valgrind log. */
#include <stdint.h>
#include <valgrind/valgrind.h>

uint64_t I_WRAP_SONAME_FNNAME_ZU(libhwyZdsoZd1, _ZN3hwy8platform15TimerResolutionEv)(void);
uint64_t I_WRAP_SONAME_FNNAME_ZU(libhwyZdsoZd1, _ZN3hwy8platform15TimerResolutionEv)(void)
{
    VALGRIND_PRINTF("listend-valgrind: hwy::platform::TimerResolution answered without RDTSCP\n");
    return 1;
}
