// Error classes, one per kind of failure a caller may handle differently. Every
// one is a ListendError with the HTTP status, the server's UPPER_SNAKE code and
// the request id when the server sent them.
import { Quota } from './results.js';

export class ListendError extends Error {
  constructor(message, { status = null, code = null, requestId = null, body = {}, quota = null, cause } = {}) {
    super(message, cause ? { cause } : undefined);
    /** The key's daily audio quota from the answer's X-Quota-* headers (a Quota), or null. */
    this.quota = quota;
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.body = body ?? {};
  }
}

/** The server could not be reached, or the connection broke or timed out. */
export class APIConnectionError extends ListendError {}
/** The request took longer than timeoutMs (never retried: the work may still be running). */
export class APITimeoutError extends APIConnectionError {}
/** 401: missing, malformed, unknown or revoked license key. */
export class InvalidLicenseError extends ListendError {}
/** 403 LICENSE_EXPIRED; expiresAt is the server's ISO 8601 time. */
export class LicenseExpiredError extends ListendError {
  constructor(message, opts = {}) {
    super(message, opts);
    this.expiresAt = opts.body?.expires_at ?? null;
  }
}
/** 403 QUOTA_EXCEEDED: the key's daily audio allowance is used up. */
export class QuotaExceededError extends ListendError {}
/** 429; retryAfter in seconds (null when not sent). */
export class RateLimitError extends ListendError {
  constructor(message, opts = {}) {
    super(message, opts);
    this.retryAfter = opts.retryAfter ?? null;
  }
}
/** 503; retryAfter in seconds (null when not sent). */
export class ServiceUnavailableError extends ListendError {
  constructor(message, opts = {}) {
    super(message, opts);
    this.retryAfter = opts.retryAfter ?? null;
  }
}
/** Other 4xx: the request as sent will not succeed if repeated; `code` says why. */
export class BadRequestError extends ListendError {}
/** 404 NOT_FOUND (e.g. an unknown job id). */
export class NotFoundError extends BadRequestError {}
/** 500 and other unexpected answers. */
export class ServerError extends ListendError {}
/** The server sent {"type":"error"} on a live stream. */
export class StreamError extends ListendError {}

function retryAfterOf(body, headers) {
  let v = body?.retry_after;
  if (v == null && headers) v = typeof headers.get === 'function' ? headers.get('retry-after') : headers['retry-after'];
  if (v == null || v === '') return null;
  const n = Number(v);
  if (!Number.isNaN(n)) return n;
  // Retry-After may also be an HTTP date (RFC 9110 §10.2.3), e.g. from a proxy.
  const when = Date.parse(v);
  return Number.isNaN(when) ? null : Math.max(0, (when - Date.now()) / 1000);
}

/** Builds the error for an HTTP error answer; body is the decoded envelope ({} if none). */
export function errorFromResponse(status, body, headers, requestId = null) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) body = {};
  const code = body.code ?? null;
  const message = String(body.error ?? body.message ?? `HTTP ${status}`);
  const opts = { status, code, requestId: body.request_id ?? requestId, body, quota: Quota.fromHeaders(headers) };
  if (status === 401) return new InvalidLicenseError(message, opts);
  if (status === 403) {
    return code === 'QUOTA_EXCEEDED' ? new QuotaExceededError(message, opts) : new LicenseExpiredError(message, opts);
  }
  if (status === 429) return new RateLimitError(message, { ...opts, retryAfter: retryAfterOf(body, headers) });
  if (status === 503) return new ServiceUnavailableError(message, { ...opts, retryAfter: retryAfterOf(body, headers) });
  if (status === 404) return new NotFoundError(message, opts);
  if (status >= 400 && status < 500) return new BadRequestError(message, opts);
  return new ServerError(message, opts);
}
