"""Exceptions raised by the client, one class per kind of failure a caller may
want to handle differently. Every one is a ListendError carrying the HTTP status,
the server's UPPER_SNAKE `code` and the request id when the server sent them."""

import email.utils
import time


class ListendError(Exception):
    """Base class. `status` is the HTTP status (None for transport errors),
    `code` the server's error code, `body` the decoded error envelope, `quota`
    the key's daily audio quota from the answer's X-Quota-* headers (a
    results.Quota, None when the answer had none)."""

    def __init__(self, message, status=None, code=None, request_id=None, body=None, quota=None):
        super().__init__(message)
        self.quota = quota
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.body = body if body is not None else {}

    def __str__(self):
        parts = [self.message]
        if self.code:
            parts.append(f"[{self.code}]")
        if self.status:
            parts.append(f"(HTTP {self.status})")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class APIConnectionError(ListendError):
    """The server could not be reached, or the connection broke or timed out."""


class APITimeoutError(APIConnectionError):
    """The request took longer than the client's `timeout`. Never retried: the
    server may still be working on it."""


class InvalidLicenseError(ListendError):
    """401: the license key is missing, malformed, unknown or revoked."""


class LicenseExpiredError(ListendError):
    """403 LICENSE_EXPIRED; `expires_at` is the server's ISO 8601 time."""

    def __init__(self, *a, expires_at=None, **kw):
        super().__init__(*a, **kw)
        self.expires_at = expires_at


class QuotaExceededError(ListendError):
    """403 QUOTA_EXCEEDED: the key's daily audio allowance is used up."""


class RateLimitError(ListendError):
    """429: too many requests; `retry_after` is in seconds (None if not sent)."""

    def __init__(self, *a, retry_after=None, **kw):
        super().__init__(*a, **kw)
        self.retry_after = retry_after


class ServiceUnavailableError(ListendError):
    """503: the server is overloaded or starting; `retry_after` in seconds."""

    def __init__(self, *a, retry_after=None, **kw):
        super().__init__(*a, **kw)
        self.retry_after = retry_after


class BadRequestError(ListendError):
    """4xx request problems (400, 404, 405, 408, 415, 422): the request as sent
    will not succeed if repeated. `code` says which (INVALID_AUDIO, ...)."""


class NotFoundError(BadRequestError):
    """404 NOT_FOUND (e.g. an unknown job id)."""


class ServerError(ListendError):
    """500 and other unexpected server answers."""


class StreamError(ListendError):
    """The server sent {"type":"error"} on a live stream."""


def _retry_after(body, headers):
    value = body.get("retry_after") if isinstance(body, dict) else None
    if value is None and headers is not None:
        value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        pass
    # Retry-After may also be an HTTP date (RFC 9110 §10.2.3), e.g. from a proxy.
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def from_response(status, body, headers=None, request_id=None):
    """Builds the exception for an HTTP error answer. `body` is the decoded JSON
    envelope ({} when the server sent no JSON)."""
    if not isinstance(body, dict):
        body = {}
    code = body.get("code")
    message = body.get("error") or body.get("message") or f"HTTP {status}"
    if not isinstance(message, str):
        message = str(message)
    rid = body.get("request_id") or request_id
    from .results import Quota  # results imports nothing from here: no cycle
    kw = dict(status=status, code=code, request_id=rid, body=body, quota=Quota.from_headers(headers))
    if status == 401:
        return InvalidLicenseError(message, **kw)
    if status == 403:
        if code == "QUOTA_EXCEEDED":
            return QuotaExceededError(message, **kw)
        return LicenseExpiredError(message, expires_at=body.get("expires_at"), **kw)
    if status == 429:
        return RateLimitError(message, retry_after=_retry_after(body, headers), **kw)
    if status == 503:
        return ServiceUnavailableError(message, retry_after=_retry_after(body, headers), **kw)
    if status == 404:
        return NotFoundError(message, **kw)
    if 400 <= status < 500:
        return BadRequestError(message, **kw)
    return ServerError(message, **kw)
