/* Telephone-band audio for a wideband model.
 *
 * The Debian en-us model expects energy up to its top mel filter (-upperf 6800).
 * Resampling 8 kHz audio properly leaves 4–8 kHz empty, which that model hears
 * far worse (91 % WER on mu-law clips) than the spectrum of 0–4 kHz mirrored
 * into 4–8 kHz (52 %): zero insertion, i.e. every sample followed by a zero, no
 * anti-imaging filter (shared/reference/pocketsphinx-notes.md § Telephone band).
 * The telephony model pack is adapted to exactly this signal.
 * Thread-safety: pure functions. */
#ifndef LD_AUDIO_NARROWBAND_H
#define LD_AUDIO_NARROWBAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LD_NARROWBAND_RATE 8000

/* Rates that take the narrowband path. */
static inline bool ld_audio_rate_is_narrowband(int rate) { return rate > 0 && rate <= LD_NARROWBAND_RATE; }

/* In-place zero insertion: buf holds n 8 kHz samples and has room for 2n;
 * afterwards it holds 2n 16 kHz samples. */
void ld_audio_zero_insert(int16_t *buf, size_t n);

#endif
