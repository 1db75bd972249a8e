// Upload bodies that never hold the audio in memory: a path becomes a
// file-backed Blob (fs.openAsBlob) inside a FormData, which fetch streams with a
// Content-Length; a Node or web stream becomes a multipart body generated on the
// fly (chunked, and sent only once since a stream cannot be replayed).
import { randomBytes } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';

const AUDIO_TYPES = {
  '.wav': 'audio/wav', '.mp3': 'audio/mpeg', '.flac': 'audio/flac', '.ogg': 'audio/ogg', '.opus': 'audio/ogg',
  '.m4a': 'audio/mp4', '.mp4': 'audio/mp4', '.webm': 'audio/webm',
};

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
    await stat(path); // fail early with ENOENT rather than inside fetch
    const name = filename ?? basename(path);
    const type = contentType ?? guessType(name);
    return async () => {
      const blob = await openAsBlob(path, { type });
      return { body: formData(fields, blob, name), replayable: true };
    };
  }
  if (typeof Blob !== 'undefined' && file instanceof Blob) {
    const name = filename ?? file.name ?? 'audio';
    const blob = contentType || !file.type ? new Blob([file], { type: contentType ?? guessType(name) }) : file;
    return async () => ({ body: formData(fields, blob, name), replayable: true });
  }
  if (file instanceof ArrayBuffer || ArrayBuffer.isView(file)) {
    const name = filename ?? 'audio';
    const blob = new Blob([file], { type: contentType ?? guessType(name) });
    return async () => ({ body: formData(fields, blob, name), replayable: true });
  }
  if (isStream(file)) {
    const name = filename ?? (typeof file.path === 'string' ? basename(file.path) : 'audio');
    let used = false;
    return async () => {
      if (used) throw new TypeError('a stream body cannot be sent twice');
      used = true;
      return streamingMultipart(file, fields, name, contentType ?? guessType(name));
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

function streamingMultipart(stream, fields, name, type) {
  const boundary = 'listend-' + randomBytes(16).toString('hex');
  const enc = new TextEncoder();
  let head = '';
  for (const [k, v] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${quote(k)}"\r\n\r\n${formValue(v)}\r\n`;
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; name="audio"; filename="${quote(name)}"\r\nContent-Type: ${type}\r\n\r\n`;
  const tail = `\r\n--${boundary}--\r\n`;
  async function* parts() {
    yield enc.encode(head);
    for await (const chunk of stream) {
      if (chunk instanceof Uint8Array) yield chunk;
      else if (typeof chunk === 'string') yield enc.encode(chunk);
      else yield new Uint8Array(chunk);
    }
    yield enc.encode(tail);
  }
  return {
    body: ReadableStream.from(parts()),
    duplex: 'half',
    headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
    replayable: false,
  };
}
