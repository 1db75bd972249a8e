/* A throwaway redis-server on a free loopback port for the Redis backend's unit
 * tests (header-only, like audio_fixture.h): redis_start() forks it (killed with
 * the test if the test dies) and waits until it answers; redis_stop() kills it. */
#ifndef LD_TEST_REDIS_FIXTURE_H
#define LD_TEST_REDIS_FIXTURE_H

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int port;
static pid_t redis_pid;
static char url[64];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &len))
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static bool redis_start(void)
{
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    redis_pid = fork();
    if (redis_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);       /* never outlive a crashed test */
        if (!freopen("/dev/null", "w", stdout)) /* redis-server's banner and warnings */
            _exit(127);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly",
               "no", "--daemonize", "no", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) { /* up to 5 s */
        redisContext *c = redisConnect("127.0.0.1", port);
        bool ok = c && !c->err;
        if (c)
            redisFree(c);
        if (ok)
            return true;
        usleep(50 * 1000);
    }
    return false;
}

static void redis_stop(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
    }
}

#endif
