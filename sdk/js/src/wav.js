// Just enough RIFF/WAVE parsing to stream a WAV file's samples and tell the
// server their rate: the stream endpoint takes raw PCM, not containers.
import { open } from 'node:fs/promises';

/** Parses a WAV header in `buf`; returns {sampleRate, channels, bits, dataOffset, dataLength} or null. */
export function parseWavHeader(buf) {
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') return null;
  let off = 12;
  let fmt = null;
  while (off + 8 <= buf.length) {
    const id = buf.toString('latin1', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'fmt ' && off + 24 <= buf.length) {
      fmt = { format: buf.readUInt16LE(off + 8), channels: buf.readUInt16LE(off + 10), sampleRate: buf.readUInt32LE(off + 12), bits: buf.readUInt16LE(off + 22) };
    } else if (id === 'data') {
      if (!fmt) return null;
      return { ...fmt, dataOffset: off + 8, dataLength: size };
    }
    off += 8 + size + (size & 1);
  }
  return null;
}

export async function readWavHeader(path) {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(65536);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return parseWavHeader(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

export function checkStreamable(h) {
  if (h.channels !== 1 || h.bits !== 16 || h.format !== 1) {
    throw new TypeError(`streaming sends 16-bit mono PCM: convert this WAV first (${h.channels} channels, ${h.bits}-bit, format ${h.format})`);
  }
}
