/* Model folders: where a language's acoustic model, language model and
 * dictionary live, and the engine settings shared by every decoder.
 * Thread-safety: pure functions (read the file system only).
 *
 * Layout of a language folder (the Debian en-us folder follows it too):
 *   <dir>/acoustic/ (or any one sub-folder holding `mdef`)  acoustic model
 *   <dir>/<name>.lm.bin | <name>.lm | <name>.lm.DMP          word language model
 *                                                           (names containing "-phone" are skipped)
 *   <dir>/<name>.dict                                       pronunciation dictionary */
#ifndef LD_ASR_MODEL_H
#define LD_ASR_MODEL_H

#include <stdbool.h>

#include "util/err.h"

#define LD_MODEL_DEFAULT_DIR "/usr/share/pocketsphinx/model/en-us"

typedef struct {
    char acoustic[1024];
    char lm[1024];
    char dict[1024];
} ld_model_files;

/* Fills f from a language folder; LD_ERR_INTERNAL with a message naming what is missing. */
ld_err ld_model_resolve(const char *dir, ld_model_files *f, ld_error *err);
/* True when dir is Debian's en-us folder (symlinks resolved). */
bool ld_model_is_default(const char *dir);

#endif
