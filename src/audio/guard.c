/* Connect-time SSRF guard for libcurl: the check runs on the address curl is
 * about to connect to, so it holds across redirects and DNS rebinding. */
#include "audio/audio.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

static void addr_text(const struct sockaddr *sa, char *out, size_t n)
{
    const void *a = sa->sa_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    if (!inet_ntop(sa->sa_family, a, out, (socklen_t)n))
        snprintf(out, n, "?");
}

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    ld_net_guard *g = clientp;
    (void)purpose;
    const struct sockaddr *sa = &addr->addr;
    const char *why = ld_audio_addr_refusal(sa);
    if (why && !g->allow_private) {
        char ip[INET6_ADDRSTRLEN];
        if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
            addr_text(sa, ip, sizeof ip);
        else
            snprintf(ip, sizeof ip, "family %d", sa->sa_family);
        snprintf(g->refused, sizeof g->refused, "refused address %s (%s)", ip, why);
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

void ld_audio_curl_guard(void *curl_easy, ld_net_guard *g)
{
    CURL *c = curl_easy;
    g->refused[0] = '\0';
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, g);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    /* Proxies from the environment would connect for us, past the guard. */
    curl_easy_setopt(c, CURLOPT_PROXY, "");
}
