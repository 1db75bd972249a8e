/* OpenAI's /v1/models and /v1/audio/translations (openai_api.h). */
#include "server/openai_api.h"

#include <math.h>
#include <string.h>

#include "asr/pool.h"
#include "server/compat_openai.h"
#include "server/respond.h"
#include "server/srv.h"
#include "util/time.h"

enum MHD_Result ld_openai_translations(ld_req *r)
{
    ld_req_fail(r, LD_ERR_INVALID_PARAMETER, json_pack("{s:s}", "code", "translation_not_supported"),
                "Translation is not supported by this server: it transcribes speech in the language it was spoken "
                "(POST /v1/audio/transcriptions)");
    return MHD_YES;
}

/* `created` of the models: when this server started (unix seconds). */
static int64_t started(const ld_srv *s) { return ld_time_now() - (int64_t)floor(ld_time_mono() - s->started_mono); }

enum MHD_Result ld_openai_models_serve(ld_req *r)
{
    json_t *names = ld_pool_models(r->srv->pool, NULL);
    json_t *list = ld_openai_models(started(r->srv), names);
    json_decref(names);
    return ld_respond_json(r->conn, MHD_HTTP_OK, list, r->request_id);
}

enum MHD_Result ld_openai_model_serve(ld_req *r)
{
    const char *id = r->path + strlen("/v1/models/");
    json_t *names = ld_pool_models(r->srv->pool, NULL);
    json_t *m = ld_openai_model(id, started(r->srv), names);
    json_decref(names);
    if (m)
        return ld_respond_json(r->conn, MHD_HTTP_OK, m, r->request_id);
    ld_error e;
    ld_error_set(&e, LD_ERR_NOT_FOUND, "The model '%.100s' does not exist (GET /v1/models lists them)", id);
    return ld_respond_error(r->conn, &e, r->request_id,
                            json_pack("{s:s,s:s}", "code", "model_not_found", "param", "model"));
}
