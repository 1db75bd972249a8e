"""HTTP transport on http.client: streamed request bodies, JSON decoding, and the
retry policy (exponential backoff with jitter on 429, 503 and connection
failures, honouring the server's retry_after)."""

import http.client
import io
import json
import random
import select
import socket
import ssl
import threading
import time
import urllib.parse

from . import errors

USER_AGENT = "listend-python/0.1.0"
BACKOFF_BASE = 0.5   # seconds before the first retry when the server gives no hint
BACKOFF_CAP = 30.0

RETRY_STATUSES = (429, 503)
# How long a chunked upload waits for "100 Continue" before sending anyway (a
# proxy may ignore Expect; RFC 9110 §10.1.1 lets the client go on).
CONTINUE_WAIT = 1.0


class Body:
    """A request body. `chunks()` returns a fresh iterator of bytes each call, so
    a retry can resend it; `replayable` is False for one-shot streams (pipes),
    which are then never retried once sending started. `length` None means
    chunked transfer encoding."""

    def __init__(self, content_type, chunks, length=None, replayable=True):
        self.content_type = content_type
        self.chunks = chunks
        self.length = length
        self.replayable = replayable

    @classmethod
    def json(cls, obj):
        data = json.dumps(obj).encode()
        return cls("application/json", lambda: iter((data,)), len(data))


class _Replay(io.RawIOBase):
    """`head`, already read from the socket, then the rest of `fp`: gives a
    status line read while waiting for 100 Continue back to http.client."""

    def __init__(self, head, fp):
        self.head, self.fp = head, fp

    def readable(self):
        return True

    def readinto(self, b):
        if self.head:
            n = min(len(b), len(self.head))
            b[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.fp.read1(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self):
        self.fp.close()  # the socket's makefile reference, or conn.close() leaves the fd open
        super().close()


class _FileSocket:
    """What http.client.HTTPResponse needs of a socket: makefile()."""

    def __init__(self, fp):
        self.fp = fp

    def makefile(self, mode):
        return self.fp


class Response:
    def __init__(self, status, headers, data):
        self.status = status
        self.headers = headers
        self.data = data

    @property
    def request_id(self):
        return self.headers.get("X-Request-ID")

    def json(self):
        try:
            return json.loads(self.data.decode("utf-8")) if self.data else {}
        except (UnicodeDecodeError, ValueError):
            return {}

    def text(self):
        return self.data.decode("utf-8", errors="replace")


def backoff_delay(attempt, retry_after=None):
    """Seconds to wait before retry number `attempt` (0-based): full jitter over
    an exponentially growing window, never less than the server's retry_after
    (plus a little jitter so that clients told the same time spread out)."""
    window = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** attempt))
    delay = random.uniform(window / 2, window)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, retry_after + random.uniform(0, min(1.0, retry_after / 10)))
    return delay


class Transport:
    def __init__(self, api_url, license_key, timeout, max_retries, ssl_context=None, auth_scheme="Token",
                 sleep=time.sleep):
        parsed = urllib.parse.urlsplit(api_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"api_url must be an http:// or https:// URL, got {api_url!r}")
        self.scheme = parsed.scheme
        self.host = parsed.hostname
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.prefix = parsed.path.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self.license_key = license_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.ssl_context = ssl_context
        self.auth_scheme = auth_scheme
        self.sleep = sleep

    def headers(self, auth=True):
        h = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if auth:
            if not self.license_key:
                raise errors.InvalidLicenseError(
                    "No license key: pass license_key= or set the LICENSE_KEY environment variable")
            h["Authorization"] = f"{self.auth_scheme} {self.license_key}"
        return h

    def _connection(self):
        if self.scheme == "https":
            ctx = self.ssl_context or ssl.create_default_context()
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _once(self, method, path, body, auth, extra_headers):
        headers = self.headers(auth)
        headers.update(extra_headers or {})
        conn = self._connection()
        # The socket timeout bounds each read or write; a server trickling its
        # answer a byte at a time never trips it. This timer bounds the whole
        # request: at the deadline it shuts the socket down, which wakes
        # whatever call is blocked on it.
        expired = threading.Event()

        def expire():
            expired.set()
            if conn.sock is not None:
                try:
                    socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)  # also under TLS
                except OSError:
                    pass
        timer = threading.Timer(self.timeout, expire) if self.timeout else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            try:
                conn.connect()
                if expired.is_set():
                    raise TimeoutError("connecting took the whole timeout")
                return self._exchange(conn, method, path, body, headers)
            except Exception as exc:
                if expired.is_set():
                    raise TimeoutError(f"request not complete after {self.timeout} s") from exc
                raise
        finally:
            if timer is not None:
                timer.cancel()
            conn.close()

    def _exchange(self, conn, method, path, body, headers):
        if body is not None:
            headers["Content-Type"] = body.content_type
            if body.length is not None:
                headers["Content-Length"] = str(body.length)
            else:
                headers["Transfer-Encoding"] = "chunked"
                # A refusal (bad key) of a body with no declared size is only
                # sure to reach us before we send: the server stops reading an
                # anonymous upload past --max-body-mb and closes without a word.
                headers["Expect"] = "100-continue"
        try:
            conn.putrequest(method, self.prefix + path, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            if "Expect" in headers:
                early = self._await_continue(conn, method)
                if early is not None:
                    return early
            if body is not None:
                for chunk in body.chunks():
                    if not chunk:
                        continue
                    if body.length is None:
                        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    else:
                        conn.send(chunk)
                if body.length is None:
                    conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The server may answer early (401, 422 too large) and close
            # while we are still uploading: prefer its answer to the reset.
            try:
                resp = conn.getresponse()
                return Response(resp.status, resp.headers, resp.read())
            except Exception:
                raise exc from None
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())

    @staticmethod
    def _await_continue(conn, method):
        """After headers with Expect: 100-continue: None to send the body (100
        Continue, or no interim answer in time), else the server's final answer."""
        sock = conn.sock
        pending = getattr(sock, "pending", None)  # TLS may hold a decrypted record already
        if not (pending and pending()) and not select.select([sock], [], [], CONTINUE_WAIT)[0]:
            return None
        fp = sock.makefile("rb")
        line = fp.readline(65537)
        if line.split(None, 2)[1:2] == [b"100"]:
            while fp.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            fp.close()
            return None
        resp = http.client.HTTPResponse(_FileSocket(io.BufferedReader(_Replay(line, fp))), method=method)
        resp.begin()
        return Response(resp.status, resp.headers, resp.read())

    def request(self, method, path, body=None, auth=True, headers=None, retry=True):
        """Sends one API request with retries; returns the Response for 2xx and
        raises the matching ListendError otherwise."""
        attempt = 0
        while True:
            sent_body = False
            try:
                sent_body = body is not None
                resp = self._once(method, path, body, auth, headers)
            except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError,
                    http.client.RemoteDisconnected, socket.gaierror) as exc:
                can_retry = retry and attempt < self.max_retries and (not sent_body or body.replayable)
                if not can_retry:
                    raise errors.APIConnectionError(
                        f"Could not reach listend at {self.api_url}: {exc}") from exc
                self.sleep(backoff_delay(attempt))
                attempt += 1
                continue
            except (socket.timeout, TimeoutError) as exc:  # never retried: the work may still run
                raise errors.APITimeoutError(
                    f"Request to {self.api_url}{path} timed out after {self.timeout} s") from exc
            except OSError as exc:
                raise errors.APIConnectionError(f"Request to {self.api_url}{path} failed: {exc}") from exc
            if 200 <= resp.status < 300:
                return resp
            err = errors.from_response(resp.status, resp.json(), resp.headers, resp.request_id)
            retry_after = getattr(err, "retry_after", None)
            can_retry = (retry and resp.status in RETRY_STATUSES and attempt < self.max_retries
                         and (body is None or body.replayable)
                         # Never sleep longer than a request may take: such a
                         # wait is better left to the caller.
                         and (retry_after is None or self.timeout is None or retry_after <= self.timeout))
            if not can_retry:
                raise err
            self.sleep(backoff_delay(attempt, retry_after))
            attempt += 1
