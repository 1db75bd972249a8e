// Upload bodies that never hold the audio in memory: a path or a stream becomes
// a multipart body generated chunk by chunk (Content-Length when the size is
// known, chunked otherwise; a stream is sent only once since it cannot be
// replayed). Buffers and Blobs, already in memory, go in a FormData via fetch.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';

const AUDIO_TYPES = {
  '.wav': 'audio/wav', '.mp3': 'audio/mpeg', '.flac': 'audio/flac', '.ogg': 'audio/ogg', '.opus': 'audio/ogg',
  '.m4a': 'audio/mp4', '.mp4': 'audio/mp4', '.webm': 'audio/webm',
};

// Headerless audio by file name, as `listend transcribe` reads it: the bytes
// cannot say what they are, so the name does (encoding, sample_rate).
const HEADERLESS = {
  '.raw': ['linear16', 16000], '.pcm': ['linear16', 16000], '.ul': ['mulaw', 8000], '.ulaw': ['mulaw', 8000],
  '.mu': ['mulaw', 8000], '.al': ['alaw', 8000], '.alaw': ['alaw', 8000],
};

/** `fields` plus the encoding and sample_rate a headerless name implies, unless an encoding was given. */
export function headerlessFields(filename, fields) {
  const raw = HEADERLESS[extname(filename ?? '').toLowerCase()];
  if (!raw || fields.encoding != null) return fields;
  return { ...fields, encoding: raw[0], sample_rate: fields.sample_rate ?? raw[1] };
}

export function guessType(filename) {
  return AUDIO_TYPES[extname(filename ?? '').toLowerCase()] ?? 'application/octet-stream';
}

/** Option names as the server spells them: camelCase becomes snake_case,
 * booleans "true"/"false", undefined/null dropped. */
export function serverOptions(options = {}, { strings = false } = {}) {
  const out = {};
  for (const [k, v] of Object.entries(options)) {
    if (v == null) continue;
    const name = k.replace(/[A-Z]/g, (m) => '_' + m.toLowerCase());
    out[name] = strings ? formValue(v) : v;
  }
  return out;
}

export function formValue(v) {
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return v.map(formValue).join(',');
  return String(v);
}

function isStream(x) {
  return x != null && typeof x === 'object' && (typeof x.getReader === 'function' || typeof x[Symbol.asyncIterator] === 'function');
}

function quote(s) {
  return String(s).replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/**
 * Returns a factory for transport.request's makeBody: fields first, audio last
 * in the form field `audio`. `file` is a path, Buffer/Uint8Array/ArrayBuffer,
 * Blob/File, or a readable stream (Node Readable, web ReadableStream, async iterable).
 */
export async function multipartBody(file, fields, { filename, contentType } = {}) {
  if (typeof file === 'string' || file instanceof URL) {
    const path = file instanceof URL ? file.pathname : file;
    const { size } = await stat(path); // fail early with ENOENT rather than mid-request
    const name = filename ?? basename(path);
    const type = contentType ?? guessType(name);
    // Sent with node:http rather than fetch: Node 20's fetch buffers an upload
    // whose socket cannot keep up (measured: 490 MB RSS for a 400 MB file).
    const f = headerlessFields(name, fields);
    return async () => ({ ...multipartParts(createReadStream(path, { highWaterMark: 1 << 16 }), f, name, type, size), replayable: true, node: true });
  }
  if (typeof Blob !== 'undefined' && file instanceof Blob) {
    const name = filename ?? file.name ?? 'audio';
    const blob = contentType || !file.type ? new Blob([file], { type: contentType ?? guessType(name) }) : file;
    return async () => ({ body: formData(headerlessFields(name, fields), blob, name), replayable: true });
  }
  if (file instanceof ArrayBuffer || ArrayBuffer.isView(file)) {
    const name = filename ?? 'audio';
    const blob = new Blob([file], { type: contentType ?? guessType(name) });
    return async () => ({ body: formData(headerlessFields(name, fields), blob, name), replayable: true });
  }
  if (isStream(file)) {
    const name = filename ?? (typeof file.path === 'string' ? basename(file.path) : 'audio');
    let used = false;
    return async () => {
      if (used) throw new TypeError('a stream body cannot be sent twice');
      used = true;
      return { ...multipartParts(file, headerlessFields(name, fields), name, contentType ?? guessType(name), null), replayable: false, node: true };
    };
  }
  throw new TypeError('transcribeFile() takes a path, Buffer, Blob or readable stream');
}

function formData(fields, blob, name) {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) fd.append(k, formValue(v));
  fd.append('audio', blob, name);
  return fd;
}

/** A multipart body as an async iterable of chunks, with its total length when
 * the audio's size is known (else the request is sent chunked). */
function multipartParts(stream, fields, name, type, size) {
  const boundary = 'listend-' + randomBytes(16).toString('hex');
  const enc = new TextEncoder();
  let head = '';
  for (const [k, v] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${quote(k)}"\r\n\r\n${formValue(v)}\r\n`;
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; name="audio"; filename="${quote(name)}"\r\nContent-Type: ${type}\r\n\r\n`;
  const headBytes = enc.encode(head);
  const tailBytes = enc.encode(`\r\n--${boundary}--\r\n`);
  async function* parts() {
    yield headBytes;
    for await (const chunk of stream) {
      if (chunk instanceof Uint8Array) yield chunk;
      else if (typeof chunk === 'string') yield enc.encode(chunk);
      else yield new Uint8Array(chunk);
    }
    yield tailBytes;
  }
  return {
    body: parts(),
    length: size == null ? null : headBytes.length + size + tailBytes.length,
    headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
  };
}
