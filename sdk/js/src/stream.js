// Live transcription over /v1/listen/stream. Uses the global WebSocket when the
// runtime has one (Node >= 22, browsers, Deno), else the optional `ws` package.
// Audio is sent by a background task while results are yielded as they arrive;
// the stream ends with {"type":"close_stream"} and the server's is_last message.
import { createReadStream } from 'node:fs';
import { APIConnectionError, InvalidLicenseError, ListendError, StreamError, errorFromResponse } from './errors.js';
import { backoffDelayMs, USER_AGENT } from './http.js';
import { Quota, StreamMessage, withQuota } from './results.js';
import { formValue, serverOptions } from './upload.js';
import { checkStreamable, parseWavHeader, readWavHeader } from './wav.js';

const INSTALL_HINT = 'listend streaming needs a WebSocket implementation: use Node.js >= 22, or run `npm install ws`';
// Subprotocol values must be RFC 7230 tokens; other keys go in ?token=.
const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

async function webSocketImpl() {
  if (typeof globalThis.WebSocket === 'function') return { WS: globalThis.WebSocket, native: true };
  try {
    const m = await import('ws');
    return { WS: m.WebSocket ?? m.default, native: false };
  } catch {
    throw new ListendError(INSTALL_HINT, { code: 'WEBSOCKET_UNAVAILABLE' });
  }
}

async function audioSource(audio, chunkSize) {
  // Returns {chunks: async iterable, implied: query params the audio implies}.
  if (typeof audio === 'string' || audio instanceof URL) {
    const path = audio instanceof URL ? audio.pathname : audio;
    const h = await readWavHeader(path);
    if (h) checkStreamable(h);
    const start = h ? h.dataOffset : 0;
    const end = h && h.dataLength ? h.dataOffset + h.dataLength - 1 : undefined;
    return {
      chunks: createReadStream(path, { start, end, highWaterMark: chunkSize }),
      implied: h ? { encoding: 'linear16', sample_rate: h.sampleRate } : {},
    };
  }
  if (audio instanceof ArrayBuffer || ArrayBuffer.isView(audio)) {
    let buf = Buffer.from(audio.buffer ?? audio, audio.byteOffset ?? 0, audio.byteLength);
    const h = parseWavHeader(buf);
    let implied = {};
    if (h) {
      checkStreamable(h);
      buf = buf.subarray(h.dataOffset, h.dataOffset + (h.dataLength || buf.length));
      implied = { encoding: 'linear16', sample_rate: h.sampleRate };
    }
    return {
      chunks: (function* () {
        for (let i = 0; i < buf.length; i += chunkSize) yield buf.subarray(i, i + chunkSize);
      })(),
      implied,
    };
  }
  if (audio != null && (typeof audio[Symbol.asyncIterator] === 'function' || typeof audio[Symbol.iterator] === 'function')) {
    return { chunks: audio, implied: {} };
  }
  throw new TypeError('stream() takes a path, Buffer/Uint8Array, or an (async) iterable of audio chunks');
}

class Session {
  constructor() {
    this.queue = [];
    this.failure = null;
    this.closed = false;
    this.wake = null;
    this.quota = null; // X-Quota-* of the 101 (Node's ws only)
  }
  push(item) {
    this.queue.push(item);
    this.notify();
  }
  fail(err) {
    if (!this.failure) this.failure = err;
    this.notify();
  }
  notify() {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
  next() {
    return new Promise((r) => {
      this.wake = r;
    });
  }
}

function decode(data) {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  return null; // Blob etc.: the server sends only text frames
}

function connectOnce(client, impl, url, session) {
  return new Promise((resolve, reject) => {
    let ws;
    let opened = false;
    const failEarly = (err) => {
      if (!opened) reject(err);
      else session.fail(err);
    };
    if (impl.native) {
      const protocols = TOKEN_CHARS.test(client.licenseKey) ? ['token', client.licenseKey] : undefined;
      const u = protocols ? url : url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(client.licenseKey);
      ws = new impl.WS(u, protocols);
    } else {
      ws = new impl.WS(url, {
        headers: { Authorization: `Token ${client.licenseKey}`, 'User-Agent': USER_AGENT },
        handshakeTimeout: Math.min(client.timeoutMs || 30000, 30000),
        maxPayload: 4 << 20,
      });
      // The 101's X-Quota-* (the browser's WebSocket does not show handshake headers).
      ws.on('upgrade', (res) => { session.quota = Quota.fromHeaders(res.headers); });
      // ws hands us the refused handshake's response: keep the server's JSON error.
      ws.on('unexpected-response', (req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { body += c; });
        res.on('end', () => {
          let data = {};
          try { data = JSON.parse(body); } catch { data = {}; }
          failEarly(errorFromResponse(res.statusCode, data, res.headers));
          req.destroy();
        });
      });
    }
    ws.binaryType = 'arraybuffer';
    ws.addEventListener('open', () => {
      opened = true;
      resolve(ws);
    });
    ws.addEventListener('message', (ev) => {
      const text = decode(ev.data);
      if (text == null) return;
      let data;
      try { data = JSON.parse(text); } catch { return; }
      session.push(data);
    });
    ws.addEventListener('error', (ev) => {
      const msg = ev?.message ?? ev?.error?.message ?? 'WebSocket error';
      failEarly(Object.assign(new APIConnectionError(`stream to ${url.split('?')[0]} failed: ${msg}`), { handshake: !opened, cause: ev?.error }));
    });
    ws.addEventListener('close', (ev) => {
      if (!opened) {
        reject(Object.assign(new APIConnectionError(`stream to ${url.split('?')[0]} refused (close ${ev.code})`), { handshake: true }));
        return;
      }
      session.closed = true;
      session.closeCode = ev.code;
      session.closeReason = ev.reason;
      session.notify();
    });
  });
}

async function connect(client, impl, url, session) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await connectOnce(client, impl, url, session);
    } catch (err) {
      let e = err;
      if (e instanceof APIConnectionError && impl.native) {
        // The browser-style WebSocket hides the refusal: ask the license
        // endpoint, which authenticates the same way, for the exact reason.
        try { await client.license(); } catch (le) { if (le.status) e = le; }
      }
      const retryAfter = e.retryAfter ?? null;
      const retryable = e instanceof APIConnectionError || e.status === 429 || e.status === 503;
      if (!retryable || attempt >= client.maxRetries || (retryAfter != null && client.timeoutMs && retryAfter * 1000 > client.timeoutMs)) throw e;
      await new Promise((r) => setTimeout(r, backoffDelayMs(attempt, retryAfter)));
    }
  }
}

/** Iterates the audio by hand (not for-await) so that the stream's consumer can
 * release it: a caller leaving the loop must not wait for a silent source. */
function audioIterator(chunks) {
  const it = typeof chunks[Symbol.asyncIterator] === 'function' ? chunks[Symbol.asyncIterator]() : chunks[Symbol.iterator]();
  let released = false;
  return {
    next: () => it.next(),
    // Tells the source to stop (Node streams are destroyed, generators run their
    // finally) without waiting: a generator blocked in an await finishes that first.
    release() {
      if (released) return;
      released = true;
      try {
        Promise.resolve(it.return?.()).catch(() => {});
      } catch { /* a source whose return() throws: nothing more to release */ }
    },
  };
}

async function sendAudio(ws, audio, bytesPerSecond, stop) {
  const t0 = Date.now();
  let sent = 0;
  try {
    for (;;) {
      const { value: item, done } = await audio.next();
      if (done) break;
      if (stop.stopped || ws.readyState !== 1) return;
      if (item && typeof item === 'object' && !ArrayBuffer.isView(item) && !(item instanceof ArrayBuffer)) {
        ws.send(JSON.stringify(item)); // a control such as {type: 'finalize'}
        continue;
      }
      if (typeof item === 'string') {
        ws.send(item);
        continue;
      }
      ws.send(item);
      sent += item.byteLength;
      // Back-pressure: do not queue more than ~1 MB in the socket.
      while (ws.bufferedAmount > 1 << 20 && ws.readyState === 1) await new Promise((r) => setTimeout(r, 10));
      if (bytesPerSecond) {
        const ahead = (sent / bytesPerSecond) * 1000 - (Date.now() - t0);
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
      }
    }
    if (!stop.stopped && ws.readyState === 1) ws.send(JSON.stringify({ type: 'close_stream' }));
  } finally {
    audio.release();
  }
}

export function openStream(client, audio, options = {}) {
  const { chunkSize = 4096, realtime = false, ...params } = options;
  if (!client.licenseKey) throw new InvalidLicenseError('No license key: pass licenseKey or set LICENSE_KEY');
  return (async function* run() {
    const impl = await webSocketImpl();
    const { chunks, implied } = await audioSource(audio, chunkSize);
    const query = { ...implied, ...serverOptions(params) };
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, formValue(v)])).toString();
    const base = new URL(client.apiUrl);
    base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${base.toString().replace(/\/+$/, '')}/v1/listen/stream${qs ? '?' + qs : ''}`;
    const session = new Session();
    const audioIt = audioIterator(chunks);
    let ws;
    try {
      ws = await connect(client, impl, url, session);
    } catch (err) {
      audioIt.release(); // e.g. the file a path opened
      throw err;
    }
    const encoding = query.encoding ?? 'linear16';
    const bytesPerSecond = realtime && encoding === 'linear16' ? 2 * Number(query.sample_rate ?? 16000) : 0;
    const stop = { stopped: false };
    sendAudio(ws, audioIt, bytesPerSecond, stop).catch((err) => {
      session.fail(new APIConnectionError(`sending audio failed: ${err.message}`, { cause: err }));
    });
    try {
      for (;;) {
        while (session.queue.length) {
          const data = session.queue.shift();
          if (data.type === 'error' || data.status === 'error') {
            const inner = typeof data.error === 'object' && data.error ? data.error : {};
            throw new StreamError(data.message ?? inner.message ?? (typeof data.error === 'string' ? data.error : 'stream error'), { code: data.code ?? inner.code ?? null, body: data });
          }
          yield withQuota(new StreamMessage(data), session.quota);
          if (data.is_last) return;
        }
        if (session.failure) throw session.failure;
        if (session.closed) {
          if (session.closeCode && session.closeCode !== 1000 && session.closeCode !== 1005) {
            throw new APIConnectionError(`stream closed by the server (${session.closeCode}${session.closeReason ? ': ' + session.closeReason : ''})`);
          }
          return;
        }
        await session.next();
      }
    } finally {
      // The sender is not awaited: it may be blocked in the caller's own iterator (a
      // silent microphone), and leaving the loop or an error must not wait for
      // that. The sender sees `stopped` or the closed socket when it wakes.
      stop.stopped = true;
      if (ws.readyState === 0 || ws.readyState === 1) ws.close(1000);
      audioIt.release();
    }
  })();
}
