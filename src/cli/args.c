/* Arguments more than one client takes, checked once here so that
 * `listend transcribe` and `listend stream` refuse them in the same words.
 *
 * The license key (--key or $LICENSE_KEY) is checked before it goes into an
 * Authorization header: a key read from a file often ends in a newline, and a
 * raw line break ends the header early (the request then lost its body, or
 * carried a header the user never wrote). */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int ld_cli_key_arg(const char *cmd, const char *raw, char *out, size_t n)
{
    const char *ws = " \t\r\n";
    raw += strspn(raw, ws);
    size_t len = strlen(raw);
    while (len && strchr(ws, raw[len - 1]))
        len--;
    if (!len || len >= n) {
        fprintf(stderr, "listend %s: %s\n", cmd, len ? "the license key is too long" : "the license key is empty");
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)raw[i] < 0x21 || raw[i] == 0x7f) {
            fprintf(stderr,
                    "listend %s: the license key contains a line break, space or other control character at "
                    "position %zu (pasted with more than the key?)\n",
                    cmd, i + 1);
            return -1;
        }
    memcpy(out, raw, len);
    out[len] = 0;
    return 0;
}

/* GnuTLS reads the bundle as both clients' TLS stacks will (libcurl's is GnuTLS
 * too): a file holding no certificate it can parse is refused here by name,
 * where the handshake would only say that the server's certificate was not OK. */
int ld_cli_cacert_load(const char *cmd, const char *path, gnutls_certificate_credentials_t cred)
{
    if (gnutls_certificate_set_x509_trust_file(cred, path, GNUTLS_X509_FMT_PEM) > 0)
        return 0;
    if (access(path, R_OK)) /* GnuTLS says the same of a missing file as of an empty one */
        fprintf(stderr, "listend %s: --cacert %s: %s\n", cmd, path, strerror(errno));
    else
        fprintf(stderr, "listend %s: --cacert %s: no PEM certificate could be read\n", cmd, path);
    return -1;
}

int ld_cli_cacert_check(const char *cmd, const char *path)
{
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0) {
        fprintf(stderr, "listend %s: out of memory\n", cmd);
        return -1;
    }
    int r = ld_cli_cacert_load(cmd, path, cred);
    gnutls_certificate_free_credentials(cred);
    return r;
}
