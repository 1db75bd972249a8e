// Result objects: the server's JSON fields as properties (so `result.text`,
// `result.words` work), plus `raw`, the JSON exactly as received (not
// enumerable, so JSON.stringify(result) gives the server's shape back).

/**
 * The key's daily audio quota as an answer's X-Quota-* headers said it:
 * `limit` and `remaining` in audio seconds, `reset` in seconds until the UTC
 * day (and the quota) starts over.
 */
export class Quota {
  constructor(limit, remaining, reset) {
    this.limit = limit;
    this.remaining = remaining;
    this.reset = reset;
  }
  /** Share of today's quota used, 0 to 1. */
  get usedRatio() {
    return this.limit ? (this.limit - this.remaining) / this.limit : 0;
  }
  /** null when the answer had no X-Quota-* headers (not authenticated). */
  static fromHeaders(headers) {
    if (!headers) return null;
    const get = (n) => (typeof headers.get === 'function' ? headers.get(n) : headers[n]) ?? null;
    const limit = get('x-quota-limit');
    const remaining = get('x-quota-remaining');
    const reset = get('x-quota-reset');
    if (limit == null || remaining == null || Number.isNaN(Number(limit)) || Number.isNaN(Number(remaining))) return null;
    return new Quota(Number(limit), Number(remaining), reset == null ? null : Number(reset));
  }
}

/** Sets `quota` (not enumerable: JSON.stringify keeps the server's shape); returns target. */
export function withQuota(target, quota) {
  Object.defineProperty(target, 'quota', { value: quota ?? null, enumerable: false, writable: true });
  return target;
}

function withRaw(target, raw) {
  Object.assign(target, raw);
  Object.defineProperty(target, 'raw', { value: raw, enumerable: false });
  return target;
}

/** Sets `name` to `value` where the server sent no such field, not enumerable,
 * so that JSON.stringify(result) stays the server's JSON. */
function withDefault(target, name, value) {
  Object.defineProperty(target, name, { value, enumerable: false, writable: true, configurable: true });
}

export class Transcription {
  constructor(raw) {
    withRaw(this, raw ?? {});
    if (this.text == null) withDefault(this, 'text', '');
    if (!Array.isArray(this.words)) withDefault(this, 'words', []); // sent only with timestamps
    if (!Array.isArray(this.utterances)) withDefault(this, 'utterances', []);
  }
  toString() {
    return this.text;
  }
}

/** A transcription requested as format text|srt|vtt: `text` is the body. */
export class TextResult {
  constructor(text, format, requestId = null) {
    withRaw(this, { text, format, request_id: requestId });
  }
  toString() {
    return this.text;
  }
}

export class Job {
  constructor(raw) {
    withRaw(this, raw ?? {});
    if (this.result && typeof this.result === 'object') this.result = new Transcription(this.result);
  }
  get id() {
    return this.job_id;
  }
  get done() {
    return ['completed', 'failed', 'cancelled'].includes(this.status);
  }
}

export class License {
  constructor(raw) {
    withRaw(this, raw ?? {});
  }
}

export class Health {
  constructor(raw) {
    withRaw(this, raw ?? {});
  }
  get healthy() {
    return this.status === 'healthy';
  }
}

export class StreamMessage {
  constructor(raw) {
    withRaw(this, raw ?? {});
    if (this.type === 'transcription') {
      if (this.transcript == null) this.transcript = '';
      this.is_final = Boolean(this.is_final);
      this.is_last = Boolean(this.is_last);
    }
  }
  get text() {
    return this.transcript ?? '';
  }
  get isFinal() {
    return Boolean(this.is_final);
  }
  get isLast() {
    return Boolean(this.is_last);
  }
}
