/* libFuzzer entry: arbitrary text-frame bytes through the stream control
 * parser, OpenAI's realtime event parser (base64 audio, session updates),
 * Flux's control parser and its Configure (settings stay in range), the
 * subprotocol key extractor and the Ogg page reader
 * (the other code that sees raw client bytes before any decoder). Any crash, leak or
 * sanitizer report is a bug; every result value is fine. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/stream.h"
#include "server/ws_flux.h"
#include "server/ws_openai.h"
#include "server/ws_proto.h"

static ld_err count_packet(void *ud, const uint8_t *pkt, size_t len, ld_error *err)
{
    (void)pkt;
    (void)err;
    *(size_t *)ud += len;
    return LD_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ld_ws_control c = ld_ws_control_parse((const char *)data, size);
    if ((int)c < LD_WS_CTL_KEEPALIVE || c > LD_WS_CTL_INVALID)
        abort();
    ld_flux_control f = ld_ws_flux_control_parse((const char *)data, size);
    if ((int)f < LD_FLUX_CTL_CLOSE_STREAM || f > LD_FLUX_CTL_INVALID)
        abort();
    ld_ws_params fp = {.language = "en", .eot_threshold = 0.7, .eot_timeout_ms = 5000, .eou_timeout_ms = 800};
    ld_error fe;
    if (ld_ws_flux_configure((const char *)data, size, &fp, &fe) == LD_OK &&
        (fp.eot_threshold < 0.5 || fp.eot_threshold > 1.0 || fp.eot_timeout_ms < 500 || fp.eot_timeout_ms > 60000 ||
         fp.eou_timeout_ms < 500 || fp.eou_timeout_ms > 60000 || !memchr(fp.keywords, 0, sizeof fp.keywords)))
        abort(); /* an accepted Configure leaves settings in their ranges */

    ld_ws_oa_settings p = {.encoding = LD_STREAM_LINEAR16, .sample_rate = 24000, .eou_timeout_ms = 500};
    uint8_t *audio = NULL;
    size_t alen = 0;
    bool beta;
    char id[64];
    ld_error e;
    ld_ws_oa_kind k = ld_ws_oa_client_event((const char *)data, size, &p, &audio, &alen, &beta, id, &e);
    if ((k == LD_WS_OA_APPEND) != (audio != NULL) || alen > size || strlen(id) >= sizeof id ||
        p.sample_rate < LD_AUDIO_STREAM_MIN_RATE || p.sample_rate > LD_AUDIO_STREAM_MAX_RATE ||
        p.eou_timeout_ms < 100 || p.eou_timeout_ms > 10000 || !memchr(p.language, 0, sizeof p.language))
        abort();
    free(audio);

    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    char key[64];
    if (ld_ws_subprotocol_key(s, key, sizeof key) && strlen(key) >= sizeof key)
        abort();
    free(s);

    ld_ogg_reader *r = ld_audio_ogg_new();
    size_t total = 0;
    ld_error err;
    /* split in two pushes so page boundaries fall anywhere */
    if (ld_audio_ogg_push(r, data, size / 2, count_packet, &total, &err) == LD_OK)
        ld_audio_ogg_push(r, data + size / 2, size - size / 2, count_packet, &total, &err);
    ld_audio_ogg_free(r);
    return 0;
}
