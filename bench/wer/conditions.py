"""Renders clean 16 kHz clips into the conditions bench/wer/run measures.

  clean   the clip as it is
  mulaw   8 kHz G.711 mu-law WAV (a phone call): ffmpeg -ar 8000 -c:a pcm_mulaw
  alaw    8 kHz G.711 A-law WAV
  mp3     32 kbit/s MP3: ffmpeg -c:a libmp3lame -b:a 32k
  noise   pink noise added at a fixed SNR (clip RMS over noise RMS, default 15 dB), or at one
          fixed level for every clip (noise RMS in dBFS, so the SNR follows the clip's loudness),
          generated with a fixed seed per clip so every run hears the same noise

Pure Python besides ffmpeg (no numpy on the target machines).
"""
import array
import math
import os
import random
import subprocess
import wave

CONDITIONS = ("clean", "mulaw", "alaw", "mp3", "noise")


def _ffmpeg(src, dst, *args):
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", src, *args, dst], check=True)


def read_wav16(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        a = array.array("h", w.readframes(w.getnframes()))
        return a, w.getframerate()


def write_wav16(path, samples, rate):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def pink(n, seed):
    """Pink (1/f) noise, unit RMS: Paul Kellet's economy filter on white noise."""
    rnd = random.Random(seed)
    b0 = b1 = b2 = 0.0
    out = [0.0] * n
    for i in range(n):
        w = rnd.gauss(0.0, 1.0)
        b0 = 0.99765 * b0 + w * 0.0990460
        b1 = 0.96300 * b1 + w * 0.2965164
        b2 = 0.57000 * b2 + w * 1.0526913
        out[i] = b0 + b1 + b2 + w * 0.1848
    rms = math.sqrt(sum(x * x for x in out) / max(n, 1)) or 1.0
    return [x / rms for x in out]


def add_noise(src, dst, snr_db, seed, level_dbfs=None):
    """Pink noise at snr_db below the clip's RMS, or at level_dbfs (RMS re full scale) when given."""
    s, rate = read_wav16(src)
    rms = math.sqrt(sum(x * x for x in s) / max(len(s), 1))
    gain = rms / (10 ** (snr_db / 20.0)) if level_dbfs is None else 32768 * 10 ** (level_dbfs / 20.0)
    noise = pink(len(s), seed)
    out = array.array("h", (max(-32768, min(32767, int(round(x + gain * y)))) for x, y in zip(s, noise)))
    write_wav16(dst, out, rate)


def render(cond, src, out_dir, snr_db=15.0, noise_seed="", level_dbfs=None):
    """Returns the path of `src` rendered in condition `cond` (inside out_dir);
    noise_seed is appended to each clip's noise seed (another realisation);
    level_dbfs, when given, replaces snr_db by one noise level for every clip."""
    base = os.path.splitext(os.path.basename(src))[0]
    if cond == "clean":
        return src
    if cond in ("mulaw", "alaw"):
        dst = os.path.join(out_dir, base + ".wav")
        _ffmpeg(src, dst, "-ar", "8000", "-c:a", "pcm_" + cond)
    elif cond == "mp3":
        dst = os.path.join(out_dir, base + ".mp3")
        _ffmpeg(src, dst, "-c:a", "libmp3lame", "-b:a", "32k")
    elif cond == "noise":
        dst = os.path.join(out_dir, base + ".wav")
        add_noise(src, dst, snr_db, seed=base + noise_seed, level_dbfs=level_dbfs)
    else:
        raise ValueError("unknown condition " + cond)
    return dst
