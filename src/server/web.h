/* The browser playground (web.c); internal to src/server/. The page and its
 * scripts live in web/ and are compiled into the binary (cmake/embed.cmake
 * generates ld_web_assets), so it works offline and needs no build step.
 * docs/api.md, "Playground". Thread-safety: read-only data and stateless
 * handlers, called on libmicrohttpd threads. */
#ifndef LD_SERVER_WEB_H
#define LD_SERVER_WEB_H

#include <microhttpd.h>
#include <stddef.h>

#include "server/req.h"

typedef struct {
    const char *name; /* file name in web/, e.g. "playground.js"; NULL ends the table */
    const unsigned char *data;
    size_t len;
} ld_web_asset;

extern const ld_web_asset ld_web_assets[]; /* generated */

/* GET / -> 302 to /playground; GET /playground -> the page; GET
 * /playground/<file> -> its script or style. 404 with --no-playground. */
enum MHD_Result ld_web_root(ld_req *r);
enum MHD_Result ld_web_page(ld_req *r);
enum MHD_Result ld_web_asset_serve(ld_req *r);

#endif
