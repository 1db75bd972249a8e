// HTTP transport on the global fetch: JSON decoding and the retry policy
// (exponential backoff with jitter on 429, 503 and connection failures,
// honouring the server's retry_after, up to maxRetries).
import http from 'node:http';
import https from 'node:https';
import { APIConnectionError, APITimeoutError, InvalidLicenseError, errorFromResponse } from './errors.js';

export const USER_AGENT = 'listend-js/0.1.0';
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30000;
const RETRY_STATUSES = new Set([429, 503]);
// How long a chunked upload waits for "100 Continue" before sending anyway (a
// proxy may ignore Expect; RFC 9110 §10.1.1 lets the client go on).
const CONTINUE_WAIT_MS = 1000;
// undici reports these as the cause of a failed fetch when the connection broke.
const RETRY_CAUSES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT',
]);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Milliseconds before retry number `attempt` (0-based): full jitter over an
 * exponential window, never less than the server's retryAfter seconds. */
export function backoffDelayMs(attempt, retryAfter = null) {
  const windowMs = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  let delay = windowMs / 2 + Math.random() * (windowMs / 2);
  if (retryAfter != null && retryAfter > 0) {
    delay = Math.max(delay, retryAfter * 1000 + Math.random() * Math.min(1000, retryAfter * 100));
  }
  return delay;
}

function causeCode(err) {
  let e = err;
  for (let i = 0; e && i < 4; i++, e = e.cause) if (e.code) return e.code;
  return null;
}

export class Transport {
  constructor({ apiUrl, licenseKey, timeoutMs, maxRetries, authScheme = 'Token', sleepFn = sleep }) {
    const u = new URL(apiUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`apiUrl must be http(s), got ${apiUrl}`);
    this.apiUrl = apiUrl.replace(/\/+$/, '');
    this.licenseKey = licenseKey;
    this.timeoutMs = timeoutMs;
    this.maxRetries = maxRetries;
    this.authScheme = authScheme;
    this.sleep = sleepFn;
  }

  headers(auth = true) {
    const h = { 'User-Agent': USER_AGENT, Accept: 'application/json' };
    if (auth) {
      if (!this.licenseKey) {
        throw new InvalidLicenseError('No license key: pass licenseKey or set the LICENSE_KEY environment variable');
      }
      h.Authorization = `${this.authScheme} ${this.licenseKey}`;
    }
    return h;
  }

  /**
   * Sends one API request with retries. `makeBody()` returns {body, headers?,
   * replayable} afresh for each attempt (a one-shot stream is not replayable and
   * is then never retried). Returns the Response for 2xx, throws otherwise.
   */
  async request(method, path, { makeBody = null, auth = true, retry = true } = {}) {
    for (let attempt = 0; ; attempt++) {
      const headers = this.headers(auth);
      const init = { method, headers };
      let replayable = true;
      let bodyInfo = null;
      if (makeBody) {
        const b = (bodyInfo = await makeBody());
        Object.assign(headers, b.headers ?? {});
        init.body = b.body;
        replayable = b.replayable !== false;
        if (b.duplex) init.duplex = b.duplex;
      }
      const signal = this.timeoutMs ? AbortSignal.timeout(this.timeoutMs) : null;
      if (signal) init.signal = signal;
      let resp;
      try {
        // The body is read here, under the same signal, so that timeoutMs bounds
        // the whole request (a server trickling its answer included).
        resp = bodyInfo?.node ? await nodeRequest(this.apiUrl + path, init, bodyInfo) : await buffered(await fetch(this.apiUrl + path, init));
      } catch (err) {
        // Whatever the abort surfaced as (DOMException, ECONNRESET from node:http,
        // undici's "terminated"), a fired timer is a timeout, and is not retried.
        if (signal?.aborted || err?.name === 'TimeoutError') {
          throw new APITimeoutError(`Request to ${this.apiUrl}${path} timed out after ${this.timeoutMs} ms`, { cause: err });
        }
        const code = causeCode(err);
        if (retry && replayable && attempt < this.maxRetries && RETRY_CAUSES.has(code)) {
          await this.sleep(backoffDelayMs(attempt));
          continue;
        }
        throw new APIConnectionError(`Could not reach listend at ${this.apiUrl}: ${err?.cause?.message ?? err?.message}`, { cause: err });
      }
      if (resp.ok) return resp;
      let body = {};
      try {
        body = JSON.parse(await resp.text());
      } catch {
        body = {};
      }
      const error = errorFromResponse(resp.status, body, resp.headers, resp.headers.get('x-request-id'));
      const retryAfter = error.retryAfter ?? null;
      const canRetry = retry && replayable && RETRY_STATUSES.has(resp.status) && attempt < this.maxRetries &&
        // Never wait longer than a request may take: leave such waits to the caller.
        (retryAfter == null || !this.timeoutMs || retryAfter * 1000 <= this.timeoutMs);
      if (!canRetry) throw error;
      await this.sleep(backoffDelayMs(attempt, retryAfter));
    }
  }
}

/** A Response whose body is already in memory (API answers are small). */
async function buffered(resp) {
  const body = await resp.arrayBuffer();
  const nullBody = [101, 204, 205, 304].includes(resp.status);
  return new Response(nullBody ? null : body, { status: resp.status, statusText: resp.statusText, headers: resp.headers });
}

/** Sends a streamed body with node:http(s), waiting for the socket to drain
 * between chunks, and returns a fetch-like Response. */
function nodeRequest(url, init, { body, length }) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers = { ...init.headers };
    if (length != null) headers['Content-Length'] = String(length);
    else {
      headers['Transfer-Encoding'] = 'chunked';
      // A refusal (bad key) of a body with no declared size is only sure to
      // reach us before we send: the server stops reading an anonymous upload
      // past --max-body-mb and closes without a word.
      headers.Expect = '100-continue';
    }
    const req = (u.protocol === 'https:' ? https : http).request(u, { method: init.method, headers, signal: init.signal });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : String(v));
        resolve(new Response(res.statusCode === 204 ? null : Buffer.concat(chunks), { status: res.statusCode, headers: h }));
      });
    });
    req.on('error', (err) => {
      // The server may answer early (401, 422 too large) and close while we
      // upload; its answer wins over the broken pipe.
      if (!answered) reject(Object.assign(new TypeError('fetch failed'), { cause: err }));
    });
    (async () => {
      if (length == null) {
        req.flushHeaders();
        await new Promise((r) => {
          const t = setTimeout(r, CONTINUE_WAIT_MS);
          const go = () => { clearTimeout(t); r(); };
          req.once('continue', go);
          req.once('response', go);
          req.once('close', go);
        });
      }
      for await (const chunk of body) {
        if (answered || req.destroyed) return;
        if (!req.write(chunk)) {
          await new Promise((r) => {
            const done = () => { req.off('drain', done); req.off('close', done); r(); };
            req.on('drain', done);
            req.on('close', done);
          });
        }
      }
      req.end();
    })().catch((err) => req.destroy(err));
  });
}
