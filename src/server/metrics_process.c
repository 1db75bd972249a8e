/* The standard process_* metrics (as Prometheus client libraries name them),
 * read from /proc/self at every scrape. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "server/metrics.h"

static struct {
    ld_metric *cpu, *rss, *vsize, *fds, *max_fds, *start;
} fam;

/* Seconds since the epoch at boot, for the start time (ticks since boot). */
static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "btime ", 6)) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

static void read_stat(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may contain spaces */
    if (!p)
        return;
    /* Fields from 3 (state) on; utime 14, stime 15, starttime 22, vsize 23, rss 24. */
    double v[25] = {0};
    int field = 3;
    for (char *save = NULL, *tok = strtok_r(p + 2, " ", &save); tok && field <= 24;
         tok = strtok_r(NULL, " ", &save), field++)
        v[field] = strtod(tok, NULL);
    double tick = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
    if (tick <= 0)
        return;
    ld_metric_set(fam.cpu, NULL, (v[14] + v[15]) / tick);
    ld_metric_set(fam.vsize, NULL, v[23]);
    ld_metric_set(fam.rss, NULL, v[24] * page);
    static double start;
    if (!start)
        start = boot_time() + v[22] / tick;
    ld_metric_set(fam.start, NULL, start);
}

static void read_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    ld_metric_set(fam.fds, NULL, n - 1); /* not the directory being read */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl))
        ld_metric_set(fam.max_fds, NULL, rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
}

static void on_scrape(void *ud)
{
    (void)ud;
    read_stat();
    read_fds();
}

static ld_metric *reg(ld_metrics *r, const char *name, const char *help, ld_metric_type t)
{
    return ld_metrics_register(r, &(ld_metric_desc){.name = name, .help = help, .type = t});
}

void ld_srv_metrics_process_init(ld_metrics *r)
{
    fam.cpu = reg(r, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                  LD_METRIC_COUNTER);
    fam.rss = reg(r, "process_resident_memory_bytes", "Resident memory size in bytes.", LD_METRIC_GAUGE);
    fam.vsize = reg(r, "process_virtual_memory_bytes", "Virtual memory size in bytes.", LD_METRIC_GAUGE);
    fam.fds = reg(r, "process_open_fds", "Number of open file descriptors.", LD_METRIC_GAUGE);
    fam.max_fds = reg(r, "process_max_fds", "Maximum number of open file descriptors.", LD_METRIC_GAUGE);
    fam.start = reg(r, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                    LD_METRIC_GAUGE);
    static int hooked;
    if (!hooked++)
        ld_metrics_on_render(r, on_scrape, NULL);
}
