/* Issue #17's small pure pieces: the WebSocket frame-header scanner (1009 on a
 * header alone), trusted-proxy client addresses, per-key unit caps. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "server/keycap.h"
#include "server/proxy.h"
#include "server/ws_proto.h"
#include "test.h"

static void test_frame_scan(void)
{
    ld_ws_frame_scan s = {0};
    /* A masked 5-byte frame, then a 126-length frame of 200 bytes, fed byte by byte: fine. */
    uint8_t a[] = {0x82, 0x85, 1, 2, 3, 4, 'a', 'b', 'c', 'd', 'e'};
    for (size_t i = 0; i < sizeof a; i++)
        CHECK(!ld_ws_frame_scan_feed(&s, a + i, 1, 1024));
    uint8_t b[4 + 4 + 200] = {0x82, 0xFE, 0, 200, 9, 9, 9, 9};
    CHECK(!ld_ws_frame_scan_feed(&s, b, sizeof b, 1024));
    CHECK(s.have == 0 && s.skip == 0);
    /* 2^63-1 announced, header only: refused at once. */
    uint8_t c[14] = {0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4};
    ld_ws_frame_scan t = {0};
    CHECK(!ld_ws_frame_scan_feed(&t, c, 13, 1 << 20)); /* mask not complete yet */
    CHECK(ld_ws_frame_scan_feed(&t, c + 13, 1, 1 << 20));
    /* Exactly the limit passes, one more does not (16-bit length). */
    ld_ws_frame_scan u = {0};
    uint8_t d[] = {0x82, 0xFE, 0x04, 0x00, 1, 2, 3, 4};
    CHECK(!ld_ws_frame_scan_feed(&u, d, sizeof d, 1024));
    ld_ws_frame_scan v = {0};
    uint8_t e[] = {0x82, 0xFE, 0x04, 0x01, 1, 2, 3, 4};
    CHECK(ld_ws_frame_scan_feed(&v, e, sizeof e, 1024));
}

static void client(const ld_proxy_list *l, const char *peer, const char *xff, char *out)
{
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    const struct sockaddr *sa;
    if (inet_pton(AF_INET, peer, &in4.sin_addr) == 1) {
        sa = (const struct sockaddr *)&in4;
    } else {
        inet_pton(AF_INET6, peer, &in6.sin6_addr);
        sa = (const struct sockaddr *)&in6;
    }
    ld_proxy_client(l, sa, xff, out, 64);
}

static void test_proxy(void)
{
    char why[160], out[64];
    CHECK(!ld_proxy_parse("10.0.0.0/33", why, sizeof why) && strstr(why, "prefix"));
    CHECK(!ld_proxy_parse("nonsense", why, sizeof why));
    ld_proxy_list *l = ld_proxy_parse("10.0.0.0/8, 192.168.1.7,fd00::/8", why, sizeof why);
    CHECK(l && ld_proxy_count(l) == 3);
    client(l, "203.0.113.9", "1.2.3.4", out); /* untrusted peer: header ignored */
    CHECK_STR(out, "203.0.113.9");
    client(l, "10.1.1.1", "1.2.3.4", out);
    CHECK_STR(out, "1.2.3.4");
    client(l, "10.1.1.1", "6.6.6.6, 1.2.3.4, 192.168.1.7", out); /* right-most untrusted */
    CHECK_STR(out, "1.2.3.4");
    client(l, "10.1.1.1", "10.2.2.2, 10.3.3.3", out); /* all ours: the left-most */
    CHECK_STR(out, "10.2.2.2");
    client(l, "10.1.1.1", "1.2.3.4, garbage", out); /* stop at garbage: the last good hop */
    CHECK_STR(out, "10.1.1.1");
    client(l, "fd00::1", "2001:db8::5", out);
    CHECK_STR(out, "2001:db8::5");
    client(l, "10.1.1.1", NULL, out);
    CHECK_STR(out, "10.1.1.1");
    ld_proxy_free(l);
    ld_proxy_list *none = ld_proxy_parse("", why, sizeof why);
    CHECK(none && ld_proxy_count(none) == 0);
    ld_proxy_free(none);
}

static void test_keycap(void)
{
    ld_keycap *c = ld_keycap_new(2);
    CHECK(ld_keycap_take(c, "k_a") && ld_keycap_take(c, "k_a") && !ld_keycap_take(c, "k_a"));
    CHECK(ld_keycap_take(c, "k_b"));
    ld_keycap_give(c, "k_a");
    CHECK(ld_keycap_take(c, "k_a"));
    ld_keycap_free(c);
}

int main(void)
{
    test_frame_scan();
    test_proxy();
    test_keycap();
    TEST_MAIN_END();
}
