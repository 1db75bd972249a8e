/* GET /v1/license (docs/api.md, "GET /v1/license"): the admitted key's
 * claims, limits and today's usage. */
#include "server/license.h"

#include "server/respond.h"
#include "server/srv.h"
#include "util/time.h"

enum MHD_Result ld_license_serve(ld_req *r)
{
    ld_usage u;
    ld_error e;
    /* Admission just read the window, today's usage and the leases: render
     * those (saves three store round trips with Redis). It has not when the
     * key is over its daily quota (reading the license is still allowed). */
    if (r->have_rate && r->rate.have_usage)
        u = r->rate.usage;
    else if (ld_auth_usage(r->srv->auth, &r->key, &u, &e))
        return ld_respond_error(r->conn, &e, r->request_id, NULL);
    const ld_key_claims *k = &r->key;
    json_t *o = json_object();
    json_object_set_new(o, "key_id", json_string(k->key_id));
    json_object_set_new(o, "name", json_string(k->name));
    json_object_set_new(o, "issued_at", ld_time_json(k->issued_at));
    json_object_set_new(o, "expires_at", ld_time_json(k->expires_at));
    json_object_set_new(o, "limits",
                        json_pack("{s:i,s:i,s:f}", "requests_per_minute", k->rpm, "concurrency", k->concurrency,
                                  "audio_hours_per_day", k->hours_per_day));
    json_object_set_new(o, "usage",
                        json_pack("{s:i,s:i,s:i,s:f,s:f}", "requests_this_minute", u.requests_this_minute,
                                  "requests_remaining", u.requests_remaining, "concurrent", u.concurrent,
                                  "audio_seconds_today", u.audio_seconds_today, "audio_seconds_remaining",
                                  u.audio_seconds_remaining));
    json_object_set_new(o, "request_id", json_string(r->request_id));
    return ld_respond_json(r->conn, MHD_HTTP_OK, o, r->request_id);
}
