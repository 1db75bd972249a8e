/* Pool state shared by pool.c, languages.c and streams.c; internal to src/asr/.
 * Every field is guarded by ld_pool.mu unless noted. */
#ifndef LD_ASR_POOL_INTERNAL_H
#define LD_ASR_POOL_INTERNAL_H

#include <pthread.h>

#include "asr/packs.h"
#include "asr/pool.h"

#define LD_POOL_DEFAULT_SEGMENT_S 20.0 /* notes: finalising cost grows with length */
#define LD_POOL_MAX_LANGS 64
/* Requests of one language in progress at once, per decoder: 2 lets a short
 * request start while one long file holds every decoder (fairness), yet bounds
 * the partly decoded requests held in memory; the rest wait (and count toward
 * max_queue, so overload still answers 503). */
#define LD_POOL_RUNNING_PER_DECODER 2

struct request;

typedef struct {
    char code[16];
    char model_dir[1024];   /* immutable after ld_pool_new */
    int live;               /* batch decoders loaded */
    struct request *cursor; /* round-robin position */
    int running;            /* requests with a segment started, not finished */
} ld_pool_lang;

typedef struct stream_slot {
    struct stream_slot *next;
    ld_stream_decoder sd;
    bool in_use;
    double idle_since; /* monotonic time of the last release (or creation) */
} stream_slot;

struct ld_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const ld_engine_ops *engine; /* immutable */
    int max_queue;               /* immutable */
    double max_segment_s;        /* immutable */

    ld_pool_lang *langs; /* immutable list; `live`/`cursor` under mu */
    int n_langs;

    void *workers; /* worker[] (pool.c) */
    pthread_t *threads;
    int n_workers;
    int starting, live_workers, busy;
    bool stopping;

    struct request *head; /* arrival order */
    int n_requests;       /* waiting or running (and being submitted) */
    int n_waiting;        /* no segment started yet (and being submitted) */

    ld_vocab vocab; /* operator's words (--vocabulary), immutable; English decoders only */

    ld_pack *packs; /* immutable list (pool_packs.c): "general" per language, */
    int n_packs;    /* built-in and operator packs */

    stream_slot *streams; /* every stream decoder created, most recently released first */
    int n_streams, active_streams, creating_streams, max_streams;
    /* the warmer thread (streams.c): keeps `prewarm` idle decoders, frees the rest when idle */
    int prewarm;
    double idle_free_s;
    bool warmer_running, warmer_stop;
    pthread_t warmer;
    pthread_cond_t warm_cv;
    pthread_cond_t stream_cv; /* a stream decoder was released */
};

/* Fills p->langs: "en" = Debian's model (or <models_dir>/en), then each
 * <models_dir>/<code>/ that resolves (asr/model.h). */
ld_err ld_pool_find_languages(ld_pool *p, const char *models_dir, ld_error *err);
/* Stops the warmer and frees the stream decoders. false: the warmer was still
 * building a decoder after WARMER_EXIT_WAIT_S and was left to the process exit;
 * it still uses p and the models, so nothing else of p may be freed. */
bool ld_pool_streams_free(ld_pool *p);
/* What decoder_new gets for language index `lang`. */
ld_engine_model ld_pool_engine_model(ld_pool *p, int lang);

/* Packs (pool_packs.c): loads "general" for every language, the built-in
 * telephony pack and <models_dir>/<pack>/ folders; a broken pack is skipped
 * with an error in the log. */
ld_err ld_pool_load_packs(ld_pool *p, const char *models_dir, ld_error *err);
void ld_pool_free_packs(ld_pool *p);
/* Index into p->packs of what `model` (a client name, "" = auto) means for
 * language index `lang` and this audio (narrowband flag, estimated SNR in dB);
 * -1 with LD_ERR_INVALID_PARAMETER (listing the available names) when unknown. */
int ld_pool_pack_pick(ld_pool *p, int lang, const char *model, bool narrowband, double snr_db, ld_error *err);

#endif
