/* The license key a CLI client sends (--key or $LICENSE_KEY), checked before it
 * goes into an Authorization header: a key read from a file often ends in a
 * newline, and a raw line break ends the header early (the request then lost
 * its body, or carried a header the user never wrote). */
#include <stdio.h>
#include <string.h>

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
