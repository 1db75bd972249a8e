// ListendClient: batch transcription, jobs, license and health over fetch, and
// live streaming over WebSocket (stream.js).
import { Transport } from './http.js';
import { multipartBody, serverOptions, formValue } from './upload.js';
import { Health, Job, License, Quota, TextResult, Transcription, withQuota } from './results.js';
import { ServiceUnavailableError } from './errors.js';
import { openStream } from './stream.js';

export const DEFAULT_API_URL = 'http://localhost:7100';

const jobIdOf = (j) => encodeURIComponent(typeof j === 'object' && j ? j.job_id : String(j));

export class ListendClient {
  /**
   * @param {{apiUrl?: string, licenseKey?: string, timeoutMs?: number, maxRetries?: number}} [opts]
   * apiUrl defaults to $LISTEND_API_URL, then http://localhost:7100; licenseKey to $LICENSE_KEY.
   */
  constructor({ apiUrl, licenseKey, timeoutMs = 300000, maxRetries = 3, authScheme = 'Token' } = {}) {
    const env = globalThis.process?.env ?? {};
    this.apiUrl = (apiUrl || env.LISTEND_API_URL || DEFAULT_API_URL).replace(/\/+$/, '');
    this.licenseKey = (licenseKey ?? env.LICENSE_KEY ?? '').trim() || null;
    this.timeoutMs = timeoutMs;
    this.maxRetries = maxRetries;
    this._t = new Transport({ apiUrl: this.apiUrl, licenseKey: this.licenseKey, timeoutMs, maxRetries, authScheme });
  }

  /** GET /health; resolves to a Health (healthy false on 503) rather than throwing. */
  async health() {
    try {
      const resp = await this._t.request('GET', '/health', { auth: false, retry: false });
      return new Health(await resp.json());
    } catch (err) {
      if (err instanceof ServiceUnavailableError) return new Health(Object.keys(err.body).length ? err.body : { status: 'unhealthy' });
      throw err;
    }
  }

  /** GET /v1/license: key id, name, expires_at, limits and today's usage. */
  async license() {
    const resp = await this._t.request('GET', '/v1/license');
    return withQuota(new License(await resp.json()), Quota.fromHeaders(resp.headers));
  }

  /** Transcribes audio the server downloads from `url`. */
  async transcribeUrl(url, options = {}) {
    const { callbackUrl, callback_url: cb, ...rest } = options;
    if (callbackUrl || cb) throw new TypeError('use submit({url, callbackUrl}) for asynchronous jobs');
    const payload = JSON.stringify({ ...serverOptions(rest), url });
    const resp = await this._t.request('POST', '/v1/listen', {
      makeBody: () => ({ body: payload, headers: { 'Content-Type': 'application/json' } }),
    });
    return result(resp, rest.format);
  }

  /** Uploads a file (path, Buffer, Blob or readable stream) as multipart field `audio`, streamed. */
  async transcribeFile(file, options = {}) {
    const { filename, contentType, callbackUrl, callback_url: cb, ...rest } = options;
    if (callbackUrl || cb) throw new TypeError('use submit({file, callbackUrl}) for asynchronous jobs');
    const makeBody = await multipartBody(file, serverOptions(rest), { filename, contentType });
    return result(await this._t.request('POST', '/v1/listen', { makeBody }), rest.format);
  }

  /** transcribeUrl for http(s)/s3 URLs, transcribeFile otherwise. */
  async transcribe(source, options = {}) {
    if (typeof source === 'string' && /^(https?|s3):\/\//i.test(source)) return this.transcribeUrl(source, options);
    return this.transcribeFile(source, options);
  }

  /** Starts an asynchronous job: {url | file, callbackUrl, ...options} → accepted Job. */
  async submit({ url, file, callbackUrl, callback_url, filename, contentType, ...options } = {}) {
    const cb = callbackUrl ?? callback_url;
    if ((url == null) === (file == null)) throw new TypeError('submit() needs exactly one of url or file');
    if (!cb) throw new TypeError('submit() needs callbackUrl');
    const fields = { ...serverOptions(options), callback_url: cb };
    let makeBody;
    if (url != null) {
      const payload = JSON.stringify({ ...fields, url });
      makeBody = () => ({ body: payload, headers: { 'Content-Type': 'application/json' } });
    } else {
      makeBody = await multipartBody(file, fields, { filename, contentType });
    }
    const resp = await this._t.request('POST', '/v1/listen', { makeBody });
    return withQuota(new Job(await resp.json()), Quota.fromHeaders(resp.headers));
  }

  /** GET /v1/jobs/{id}; throws NotFoundError for unknown ids. */
  async job(jobId) {
    const resp = await this._t.request('GET', `/v1/jobs/${jobIdOf(jobId)}`);
    return withQuota(new Job(await resp.json()), Quota.fromHeaders(resp.headers));
  }

  /** GET /v1/jobs (filters become query parameters, e.g. {status: 'failed'}). */
  async jobs(filters = {}) {
    const q = new URLSearchParams(Object.entries(serverOptions(filters)).map(([k, v]) => [k, formValue(v)])).toString();
    const data = await (await this._t.request('GET', '/v1/jobs' + (q ? '?' + q : ''))).json();
    return (Array.isArray(data) ? data : data.jobs ?? []).map((j) => new Job(j));
  }

  /** DELETE /v1/jobs/{id}. */
  async cancel(jobId) {
    const resp = await this._t.request('DELETE', `/v1/jobs/${jobIdOf(jobId)}`);
    const text = await resp.text();
    const id = typeof jobId === 'object' ? jobId.job_id : String(jobId);
    return new Job(text ? JSON.parse(text) : { job_id: id, status: 'cancelled' });
  }

  /** Polls until the job is completed, failed or cancelled; resolves to the Job. */
  async wait(jobId, { timeoutMs = null, pollIntervalMs = 500, maxPollIntervalMs = 5000 } = {}) {
    const deadline = timeoutMs == null ? null : Date.now() + timeoutMs;
    let interval = pollIntervalMs;
    for (;;) {
      const job = await this.job(jobId);
      if (job.done) return job;
      if (deadline != null && Date.now() + interval > deadline) {
        const err = new Error(`job ${job.job_id} still ${job.status} after ${timeoutMs} ms`);
        err.name = 'TimeoutError';
        throw err;
      }
      await new Promise((r) => setTimeout(r, interval));
      interval = Math.min(maxPollIntervalMs, interval * 1.5);
    }
  }

  /**
   * Live transcription over WebSocket: an async iterable of StreamMessage.
   * `audio`: path, Buffer/Uint8Array, or (async) iterable of chunks (which may
   * also yield {type:'finalize'} controls). Options are the stream's query
   * parameters (encoding, sampleRate, language, interimResults, ...) plus
   * chunkSize and realtime (pace audio at real-time speed).
   */
  stream(audio, options = {}) {
    return openStream(this, audio, options);
  }
}

async function result(resp, format) {
  const ctype = resp.headers.get('content-type') ?? '';
  if (['text', 'srt', 'vtt'].includes(format) || !ctype.startsWith('application/json')) {
    return withQuota(new TextResult(await resp.text(), format ?? 'text', resp.headers.get('x-request-id')), Quota.fromHeaders(resp.headers));
  }
  return withQuota(new Transcription(await resp.json()), Quota.fromHeaders(resp.headers));
}

/** The name the Smallest Self-Host docs use. */
export const SmallestClient = ListendClient;
