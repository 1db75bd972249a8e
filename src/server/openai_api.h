/* OpenAI's endpoints besides transcriptions (openai_api.c); internal to
 * src/server/. Errors come in OpenAI's envelope (respond.c, compat_openai.h). */
#ifndef LD_SERVER_OPENAI_API_H
#define LD_SERVER_OPENAI_API_H

#include <microhttpd.h>

#include "server/req.h"

/* POST /v1/audio/translations, after admission: 400, translation is not
 * something this engine does (the upload is read and dropped first). */
enum MHD_Result ld_openai_translations(ld_req *r);
/* GET /v1/models and GET /v1/models/{id}: the ids `model` accepts. */
enum MHD_Result ld_openai_models_serve(ld_req *r);
enum MHD_Result ld_openai_model_serve(ld_req *r);

#endif
