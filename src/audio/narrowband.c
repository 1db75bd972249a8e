#include "audio/narrowband.h"

void ld_audio_zero_insert(int16_t *buf, size_t n)
{
    for (size_t i = n; i-- > 0;) { /* back to front: buf[i] is read before 2i, 2i+1 are written */
        buf[2 * i] = buf[i];
        buf[2 * i + 1] = 0;
    }
}
