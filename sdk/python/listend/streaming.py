"""Live transcription over the WebSocket endpoint /v1/listen/stream, with the
`websockets` package (optional: batch use needs none). Audio goes out in binary
frames from a sender task while results are yielded as they arrive; the stream
ends with {"type":"close_stream"} and the server's is_last message."""

import asyncio
import inspect
import io
import json
import os
import struct
import urllib.parse
import wave

from . import errors
from ._http import backoff_delay
from ._upload import clean_options, form_value
from .results import Quota, StreamMessage

MAX_REFUSAL_BODY = 1 << 16  # an error envelope is a few hundred bytes

try:
    import websockets
    try:  # websockets >= 13: the new asyncio implementation (keeps the refusal's body)
        from websockets.asyncio.client import connect as _ws_connect
        _HEADERS_KW = "additional_headers"
        _CONNECT_KW = {}
    except ImportError:  # websockets 10-12 (Debian bookworm has 10.4)
        from websockets.client import connect as _ws_connect
        from websockets.client import WebSocketClientProtocol as _LegacyProtocol
        _HEADERS_KW = "extra_headers"

        class _BodyKeepingProtocol(_LegacyProtocol):
            """The legacy client raises InvalidStatusCode with the headers only;
            the server's JSON error (code, message) is in the body, which the
            library leaves unread on the stream (its documented hook): read it
            here and carry it on the exception as `.body`."""

            async def read_http_response(self):
                status, headers = await super().read_http_response()
                if status == 101 or 300 <= status < 400:  # upgrade, or a redirect the library follows
                    return status, headers
                body = b""
                try:
                    n = int(headers.get("Content-Length", ""))
                    if 0 < n <= MAX_REFUSAL_BODY:
                        body = await self.reader.readexactly(n)
                except (ValueError, asyncio.IncompleteReadError):
                    pass  # no usable length, or cut short: fall back to the status alone
                exc = websockets.exceptions.InvalidStatusCode(status, headers)
                exc.body = body
                raise exc

        _CONNECT_KW = {"create_protocol": _BodyKeepingProtocol}
except ImportError:  # pragma: no cover - exercised where websockets is absent
    websockets = None

INSTALL_HINT = ("listend streaming needs the 'websockets' package: pip install 'listend[streaming]' "
                "(or: pip install websockets; on Debian: apt install python3-websockets)")

DEFAULT_CHUNK = 4096  # bytes per frame: 128 ms of 16 kHz linear16


def require_websockets():
    if websockets is None:
        raise ImportError(INSTALL_HINT)


def _ws_url(api_url, params):
    parts = urllib.parse.urlsplit(api_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = urllib.parse.urlencode({k: form_value(v) for k, v in params.items()})
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/v1/listen/stream", query, ""))


def _wav_format(f):
    """(format tag, channels, bits per sample) from a WAV's fmt chunk, or None."""
    start = f.tell()
    try:
        head = f.read(1 << 16)
    finally:
        f.seek(start)
    off = 12
    while off + 24 <= len(head):
        size = int.from_bytes(head[off + 4:off + 8], "little")
        if head[off:off + 4] == b"fmt ":
            tag, channels = struct.unpack_from("<HH", head, off + 8)
            return tag, channels, struct.unpack_from("<H", head, off + 22)[0]
        off += 8 + size + (size & 1)
    return None


def _wav_reader(f):
    """If f holds a WAV file, returns (wave reader, params it implies)."""
    start = f.tell()
    magic = f.read(4)
    f.seek(start)
    if magic != b"RIFF":
        return None, {}
    fmt = _wav_format(f)
    try:
        w = wave.open(f, "rb")  # raises wave.Error for float, mu-law, extensible, ...
        ok = w.getnchannels() == 1 and w.getsampwidth() == 2
    except (wave.Error, EOFError):
        w, ok = None, False
    if not ok:
        what = "{1} channels, {2}-bit, format {0}".format(*fmt) if fmt else "unreadable header"
        raise ValueError(f"streaming sends 16-bit mono PCM: convert this WAV first ({what})")
    return w, {"encoding": "linear16", "sample_rate": w.getframerate()}


def _audio_source(audio, chunk_size):
    """Returns (async iterator factory of bytes/controls, params implied by the
    audio, bytes per second if known for real-time pacing)."""
    f = None
    if isinstance(audio, (str, os.PathLike)):
        f = open(audio, "rb")
    elif isinstance(audio, (bytes, bytearray, memoryview)):
        f = io.BytesIO(bytes(audio))
    elif hasattr(audio, "read"):
        f = audio
    if f is not None:
        try:
            w, implied = _wav_reader(f) if f.seekable() else (None, {})
        except ValueError:
            if f is not audio:
                f.close()
            raise
        frames = chunk_size // 2

        async def gen():
            try:
                while True:
                    b = w.readframes(frames) if w is not None else f.read(chunk_size)
                    if not b:
                        return
                    yield b
            finally:
                if f is not audio:
                    f.close()
        return gen, implied
    if hasattr(audio, "__aiter__"):
        async def gen():
            async for item in audio:
                yield item
        return gen, {}
    if hasattr(audio, "__iter__"):
        async def gen():
            for item in audio:
                yield item
        return gen, {}
    raise TypeError("stream() takes a path, bytes, a binary file object or an (async) iterable of bytes")


async def _sender(ws, source, bytes_per_s):
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    sent = 0
    async for item in source():
        if isinstance(item, dict):
            await ws.send(json.dumps(item))
            continue
        if isinstance(item, str):
            await ws.send(item)
            continue
        await ws.send(bytes(item))
        sent += len(item)
        if bytes_per_s:
            ahead = sent / bytes_per_s - (loop.time() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)
    await ws.send(json.dumps({"type": "close_stream"}))


def _status_of(exc):
    """HTTP status, body and headers of a refused handshake (websockets >= 13:
    exc.response; older: InvalidStatusCode from _BodyKeepingProtocol)."""
    resp = getattr(exc, "response", None)
    if resp is not None and hasattr(resp, "status_code"):
        return resp.status_code, getattr(resp, "body", b"") or b"", resp.headers
    status = getattr(exc, "status_code", None)
    return status, getattr(exc, "body", b"") or b"", getattr(exc, "headers", None)


def _handshake_error(status, body, headers):
    try:
        data = json.loads(body.decode()) if body else {}
    except ValueError:
        data = {}
    rid = headers.get("X-Request-ID") if headers is not None else None
    return errors.from_response(status, data, headers, rid)


async def _connect(client, url, headers):
    attempt = 0
    while True:
        try:
            return await _ws_connect(url, **{_HEADERS_KW: headers}, **_CONNECT_KW, max_size=2 ** 22,
                                     open_timeout=min(client.timeout or 30, 30))
        except (OSError, asyncio.TimeoutError) as exc:
            if attempt >= client.max_retries:
                raise errors.APIConnectionError(f"Could not open a stream to {url.split('?')[0]}: {exc}") from exc
            await asyncio.sleep(backoff_delay(attempt))
        except websockets.exceptions.InvalidHandshake as exc:
            status, body, resp_headers = _status_of(exc)
            if status is None:
                raise errors.APIConnectionError(f"WebSocket handshake failed: {exc}") from exc
            err = _handshake_error(status, body, resp_headers)
            retry_after = getattr(err, "retry_after", None)
            if status not in (429, 503) or attempt >= client.max_retries or \
                    (retry_after is not None and client.timeout and retry_after > client.timeout):
                raise err from None
            await asyncio.sleep(backoff_delay(attempt, retry_after))
        attempt += 1


async def _run(client, audio, params):
    chunk_size = int(params.pop("chunk_size", DEFAULT_CHUNK))
    realtime = bool(params.pop("realtime", False))
    source, implied = _audio_source(audio, chunk_size)
    query = dict(implied)
    query.update(clean_options(params))
    bytes_per_s = None
    if realtime and query.get("encoding", "linear16") == "linear16":
        bytes_per_s = 2 * int(query.get("sample_rate", 16000))
    headers = {"Authorization": f"Token {client.license_key}", "User-Agent": "listend-python/0.1.0"}
    url = _ws_url(client.api_url, query)
    ws = await _connect(client, url, headers)
    # The handshake answer's X-Quota-* (websockets >= 11: ws.response; older: response_headers).
    resp = getattr(ws, "response", None)
    quota = Quota.from_headers(getattr(resp, "headers", None) or getattr(ws, "response_headers", None))
    sender = asyncio.ensure_future(_sender(ws, source, bytes_per_s))
    try:
        async for raw in ws:
            if isinstance(raw, bytes):
                continue
            try:
                data = json.loads(raw)
            except ValueError:
                continue
            if data.get("type") == "error" or data.get("status") == "error":
                err = data.get("error")
                msg = data.get("message") or (err.get("message") if isinstance(err, dict) else err) or "stream error"
                code = data.get("code") or (err.get("code") if isinstance(err, dict) else None)
                raise errors.StreamError(msg, code=code, body=data)
            yield StreamMessage(data, quota)
            if data.get("is_last"):
                break
        if sender.done() and not sender.cancelled() and sender.exception() is not None:
            raise errors.APIConnectionError(f"sending audio failed: {sender.exception()}")
    except websockets.exceptions.ConnectionClosedError as exc:
        raise errors.APIConnectionError(f"stream closed by the server: {exc}") from exc
    finally:
        if not sender.done():
            sender.cancel()
        try:
            await sender
        except BaseException:  # cancelled, or already reported above
            pass
        await ws.close()


def open_stream(client, audio, params):
    """An async generator of StreamMessage; raises ImportError at once (not on
    first iteration) when websockets is missing."""
    require_websockets()
    if not client.license_key:
        raise errors.InvalidLicenseError("No license key: pass license_key= or set LICENSE_KEY")
    if not (inspect.isasyncgen(audio) or hasattr(audio, "__aiter__") or hasattr(audio, "__iter__")
            or hasattr(audio, "read") or isinstance(audio, (str, bytes, bytearray, memoryview, os.PathLike))):
        raise TypeError("stream() takes a path, bytes, a binary file object or an (async) iterable of bytes")
    return _run(client, audio, dict(params))
