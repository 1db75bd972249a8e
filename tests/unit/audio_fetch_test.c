/* URL fetch against a tiny HTTP server forked by the test (loopback only):
 * SSRF refusal and allow_private, redirect limit, size caps, HTTP errors,
 * timeouts; the address policy table; SigV4 against AWS's published example;
 * s3:// through an operator endpoint (MinIO-style path addressing). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "audio/audio.h"
#include "audio/s3.h"
#include "audio_fixture.h"
#include "test.h"

static int port;
static pid_t server_pid;

static void send_all(int c, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(c, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void reply(int c, const char *status, const char *extra, const char *body, size_t n, bool length)
{
    char h[512];
    int hl = length ? snprintf(h, sizeof h, "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
                               status, extra, n)
                    : snprintf(h, sizeof h, "HTTP/1.1 %s\r\n%sConnection: close\r\n\r\n", status, extra);
    send_all(c, h, (size_t)hl);
    send_all(c, body, n);
}

static void handle(int c)
{
    char req[8192];
    size_t got = 0;
    while (got < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
        ssize_t r = recv(c, req + got, sizeof req - 1 - got, 0);
        if (r <= 0)
            return;
        got += (size_t)r;
        req[got] = '\0';
    }
    char path[1024] = "";
    sscanf(req, "GET %1023s", path);
    static char big[2 * 1024 * 1024];
    memset(big, 'b', sizeof big);
    int n;
    char loc[256];
    if (!strcmp(path, "/ok"))
        reply(c, "200 OK", "", big, 1000, true);
    else if (!strcmp(path, "/big"))
        reply(c, "200 OK", "", big, sizeof big, true);
    else if (!strcmp(path, "/bigchunked"))
        reply(c, "200 OK", "", big, sizeof big, false);
    else if (sscanf(path, "/redir/%d", &n) == 1 && n > 0) {
        snprintf(loc, sizeof loc, "Location: /redir/%d\r\n", n - 1);
        reply(c, "302 Found", loc, "", 0, true);
    } else if (!strcmp(path, "/redir/0"))
        reply(c, "200 OK", "", big, 10, true);
    else if (!strcmp(path, "/toftp"))
        reply(c, "302 Found", "Location: ftp://127.0.0.1/x\r\n", "", 0, true);
    else if (!strcmp(path, "/slow")) {
        sleep(3);
        reply(c, "200 OK", "", big, 10, true);
    } else if (!strncmp(path, "/echo-bucket/", 13))
        reply(c, "200 OK", "", req, got, true); /* the request itself, for checking */
    else
        reply(c, "404 Not Found", "", "nope", 4, true);
}

static void start_server(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16) ||
        getsockname(s, (struct sockaddr *)&a, &al)) {
        perror("test server");
        exit(2);
    }
    port = ntohs(a.sin_port);
    server_pid = fork();
    if (server_pid == 0) {
        signal(SIGCHLD, SIG_IGN); /* one child per connection, reaped by the kernel */
        for (;;) {
            int c = accept(s, NULL, NULL);
            if (c < 0)
                continue;
            if (fork() == 0) {
                handle(c);
                close(c);
                _exit(0);
            }
            close(c);
        }
    }
    close(s);
}

static void stop_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
}

/* Fetches path from the test server into a fresh temp file. */
static ld_err get(const char *path, ld_fetch_opts o, size_t *bytes, ld_error *err, size_t *file_size)
{
    char url[256];
    snprintf(url, sizeof url, path[0] == '/' ? "http://127.0.0.1:%d%s" : "%.0d%s", path[0] == '/' ? port : 0, path);
    FILE *f = tmpfile();
    memset(err, 0, sizeof *err);
    ld_err e = ld_audio_fetch(url, &o, fileno(f), bytes, err);
    fseek(f, 0, SEEK_END);
    if (file_size)
        *file_size = (size_t)ftell(f);
    fclose(f);
    return e;
}

static bool always(void *ud)
{
    (void)ud;
    return true;
}

static void test_fetch(void)
{
    ld_error err;
    size_t bytes = 0, fsize = 0;
    ld_fetch_opts priv = {.allow_private = true};

    CHECK(get("/ok", (ld_fetch_opts){0}, &bytes, &err, &fsize) == LD_ERR_URL_FETCH_FAILED);
    fprintf(stderr, "refused: %s\n", err.msg);
    CHECK(strstr(err.msg, "refused address 127.0.0.1 (loopback)") != NULL);
    CHECK(fsize == 0 && bytes == 0);
    char url[128];
    snprintf(url, sizeof url, "http://localhost:%d/ok", port);
    CHECK(get(url, (ld_fetch_opts){0}, &bytes, &err, NULL) == LD_ERR_URL_FETCH_FAILED);
    CHECK(strstr(err.msg, "refused address") != NULL);

    CHECK(get("/ok", priv, &bytes, &err, &fsize) == LD_OK);
    CHECK(bytes == 1000 && fsize == 1000);

    CHECK(get("/redir/5", priv, &bytes, &err, &fsize) == LD_OK && bytes == 10);
    CHECK(get("/redir/6", priv, &bytes, &err, NULL) == LD_ERR_URL_FETCH_FAILED);
    CHECK(strstr(err.msg, "too many redirects (limit 5)") != NULL);
    ld_fetch_opts two = {.allow_private = true, .max_redirects = 2};
    CHECK(get("/redir/2", two, &bytes, &err, NULL) == LD_OK);
    CHECK(get("/redir/3", two, &bytes, &err, NULL) == LD_ERR_URL_FETCH_FAILED);
    CHECK(get("/toftp", priv, &bytes, &err, NULL) == LD_ERR_URL_FETCH_FAILED);
    fprintf(stderr, "redirect to ftp: %s\n", err.msg);

    ld_fetch_opts capped = {.allow_private = true, .max_bytes = 100000};
    CHECK(get("/big", capped, &bytes, &err, &fsize) == LD_ERR_FILE_TOO_LARGE);
    CHECK(fsize <= 100000);
    CHECK(get("/bigchunked", capped, &bytes, &err, &fsize) == LD_ERR_FILE_TOO_LARGE);
    CHECK(fsize <= 100000);
    fprintf(stderr, "cap: %s\n", err.msg);
    CHECK(get("/ok", capped, &bytes, &err, NULL) == LD_OK);

    CHECK(get("/missing", priv, &bytes, &err, NULL) == LD_ERR_URL_FETCH_FAILED);
    CHECK(strstr(err.msg, "HTTP 404 from 127.0.0.1") != NULL);

    ld_fetch_opts quick = {.allow_private = true, .total_timeout_ms = 1000};
    CHECK(get("/slow", quick, &bytes, &err, NULL) == LD_ERR_URL_FETCH_FAILED);
    CHECK(strstr(err.msg, "timed out after 1 s") != NULL);
    fprintf(stderr, "timeout: %s\n", err.msg);
    /* No byte for the low-speed window: ended long before the overall limit, and said so. */
    ld_fetch_opts lowspeed = {.allow_private = true, .low_speed_bytes = 1024, .low_speed_time_s = 1};
    CHECK(get("/slow", lowspeed, &bytes, &err, NULL) == LD_ERR_URL_FETCH_FAILED);
    CHECK(strstr(err.msg, "sent less than 1024 bytes/s for 1 s") != NULL);
    fprintf(stderr, "low speed: %s\n", err.msg);
    ld_fetch_opts aborted = {.allow_private = true, .abort = always, .abort_ud = NULL};
    CHECK(get("/slow", aborted, &bytes, &err, NULL) == LD_ERR_URL_FETCH_FAILED);
    CHECK(strstr(err.msg, "cancelled") != NULL);

    CHECK(get("ftp://127.0.0.1/x", priv, &bytes, &err, NULL) == LD_ERR_URL_FETCH_FAILED);
    CHECK(strstr(err.msg, "only http, https and s3") != NULL);
    CHECK(get("file:///etc/passwd", priv, &bytes, &err, NULL) == LD_ERR_URL_FETCH_FAILED);
    CHECK(get("", priv, &bytes, &err, NULL) == LD_ERR_URL_FETCH_FAILED);
}

static void test_policy(void)
{
    static const struct {
        const char *ip, *why; /* why == NULL: allowed */
    } t[] = {
        {"8.8.8.8", NULL},
        {"93.184.216.34", NULL},
        {"2606:4700:4700::1111", NULL},
        {"127.0.0.1", "loopback"},
        {"127.255.0.9", "loopback"},
        {"::1", "loopback"},
        {"10.1.2.3", "private network"},
        {"172.16.0.1", "private network"},
        {"172.31.255.255", "private network"},
        {"172.32.0.1", NULL},
        {"192.168.1.1", "private network"},
        {"fd12:3456::1", "private network"},
        {"fc00::1", "private network"},
        {"169.254.169.254", "cloud metadata"},
        {"fd00:ec2::254", "cloud metadata"},
        {"169.254.1.1", "link-local"},
        {"fe80::1", "link-local"},
        {"100.64.0.1", "carrier-grade NAT"},
        {"100.127.255.255", "carrier-grade NAT"},
        {"100.128.0.1", NULL},
        {"0.0.0.0", "unspecified"},
        {"::", "unspecified"},
        {"224.0.0.1", "multicast"},
        {"ff02::1", "multicast"},
        {"255.255.255.255", "reserved"},
        {"::ffff:127.0.0.1", "loopback"},
        {"::ffff:10.0.0.1", "private network"},
        {"::ffff:169.254.169.254", "cloud metadata"},
        {"::ffff:8.8.8.8", NULL},
        {"64:ff9b::a00:1", "private network"}, /* NAT64 of 10.0.0.1 */
        {"2002:7f00:1::", "loopback"},         /* 6to4 of 127.0.0.1 */
        {"2001:db8::1", "reserved"},
        {"not-an-ip", "invalid address"},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        const char *got = ld_audio_ip_refusal(t[i].ip);
        bool ok = t[i].why ? got && !strcmp(got, t[i].why) : got == NULL;
        if (!ok)
            fprintf(stderr, "%s: got %s, want %s\n", t[i].ip, got ? got : "allowed",
                    t[i].why ? t[i].why : "allowed");
        CHECK(ok);
    }
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.0.0.1", &a.sin_addr);
    CHECK(ld_audio_addr_is_private((struct sockaddr *)&a));
    inet_pton(AF_INET, "1.1.1.1", &a.sin_addr);
    CHECK(!ld_audio_addr_is_private((struct sockaddr *)&a));

    ld_error err;
    CHECK(ld_audio_check_url("http://127.0.0.1/hook", false, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(err.msg, "loopback") != NULL);
    CHECK(ld_audio_check_url("http://localhost:9/hook", false, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_audio_check_url("http://[::ffff:127.0.0.1]/", false, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_audio_check_url("http://0x7f.1/", false, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_audio_check_url("https://169.254.169.254/latest/meta-data", false, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(err.msg, "cloud metadata") != NULL);
    CHECK(ld_audio_check_url("http://8.8.8.8/hook", false, &err) == LD_OK); /* numeric: no DNS query */
    CHECK(ld_audio_check_url("https://[2606:4700:4700::1111]:8443/x", false, &err) == LD_OK);
    CHECK(ld_audio_check_url("http://127.0.0.1/hook", true, &err) == LD_OK);
    CHECK(ld_audio_check_url("ftp://8.8.8.8/x", true, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_audio_check_url("http://", true, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_audio_check_url(NULL, true, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_audio_check_url("s3://my-bucket/a.wav", false, &err) == LD_OK);
    CHECK(ld_audio_check_url("s3://my-bucket", false, &err) == LD_ERR_INVALID_PARAMETER);
}

static void test_sigv4(void)
{
    /* AWS S3 docs, "Signature Calculations for the Authorization Header",
     * example "GET Object". */
    ld_sigv4_header h[] = {
        {"x-amz-date", "20130524T000000Z"},
        {"range", "bytes=0-9"},
        {"host", "examplebucket.s3.amazonaws.com"},
        {"x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    };
    char auth[512];
    CHECK(ld_audio_sigv4_authorization("GET", "/test.txt", "", h, 4,
                                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                                       "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                       "us-east-1", "s3", "20130524T000000Z", auth, sizeof auth) == 0);
    CHECK_STR(auth,
              "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
              "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    CHECK(ld_audio_sigv4_authorization("GET", "/test.txt", "", h, 4, "x", "AK", "SK", "us-east-1", "s3",
                                       "20130524T000000Z", auth, 20) == -1);
}

static void test_s3(void)
{
    ld_s3_request r;
    ld_error err;
    unsetenv("AWS_ENDPOINT_URL_S3");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_S3_ENDPOINT");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_DEFAULT_REGION");
    setenv("AWS_REGION", "eu-west-1", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    CHECK(ld_s3_prepare_at("s3://my-bucket/dir/a b+c.wav", 1369353600, &r, &err) == LD_OK);
    CHECK_STR(r.url, "https://my-bucket.s3.eu-west-1.amazonaws.com/dir/a%20b%2Bc.wav");
    CHECK(!r.custom_endpoint);
    bool has_auth = false, has_date = false;
    for (struct curl_slist *l = r.headers; l; l = l->next) {
        has_auth |= !strncmp(l->data, "Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/20130524/eu-west-1/s3/",
                             74);
        has_date |= !strcmp(l->data, "x-amz-date: 20130524T000000Z");
    }
    CHECK(has_auth && has_date);
    ld_s3_free(&r);
    CHECK(ld_s3_prepare_at("s3://my.dotted.bucket/k", 0, &r, &err) == LD_OK);
    CHECK_STR(r.url, "https://s3.eu-west-1.amazonaws.com/my.dotted.bucket/k");
    ld_s3_free(&r);
    CHECK(ld_s3_prepare_at("s3://bucket-only", 0, &r, &err) == LD_ERR_URL_FETCH_FAILED);
    CHECK(ld_s3_prepare_at("s3://bucket/", 0, &r, &err) == LD_ERR_URL_FETCH_FAILED);
    CHECK(ld_s3_prepare_at("s3://a/key", 0, &r, &err) == LD_ERR_URL_FETCH_FAILED); /* bucket too short */

    /* Through an operator endpoint on loopback: allowed (trusted config), path style, signed. */
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);
    setenv("AWS_ENDPOINT_URL", ep, 1);
    setenv("AWS_SESSION_TOKEN", "TOKEN123", 1);
    FILE *f = tmpfile();
    size_t bytes = 0;
    ld_err e = ld_audio_fetch("s3://echo-bucket/dir/a b.wav", NULL, fileno(f), &bytes, &err);
    if (e)
        fprintf(stderr, "s3 fetch: %s\n", err.msg);
    CHECK(e == LD_OK && bytes > 0);
    char got[8192] = "";
    rewind(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = '\0';
    fclose(f);
    char host[64];
    snprintf(host, sizeof host, "Host: 127.0.0.1:%d\r\n", port);
    CHECK(strncmp(got, "GET /echo-bucket/dir/a%20b.wav HTTP/1.1\r\n", 41) == 0);
    CHECK(strstr(got, host) != NULL);
    CHECK(strstr(got, "x-amz-security-token: TOKEN123\r\n") != NULL);
    CHECK(strstr(got, "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=") !=
          NULL);
    CHECK(strstr(got, "/eu-west-1/s3/aws4_request") != NULL);
    /* A missing object reports the status. */
    setenv("AWS_ENDPOINT_URL_S3", ep, 1); /* takes precedence over AWS_ENDPOINT_URL */
    setenv("AWS_ENDPOINT_URL", "http://203.0.113.1:1", 1);
    f = tmpfile();
    CHECK(ld_audio_fetch("s3://nobucket/x.wav", NULL, fileno(f), &bytes, &err) == LD_ERR_URL_FETCH_FAILED);
    CHECK(strstr(err.msg, "HTTP 404") != NULL);
    fclose(f);
}

int main(void)
{
    start_server();
    atexit(stop_server);
    test_policy();
    test_sigv4();
    test_fetch();
    test_s3();
    TEST_MAIN_END();
}
