"""The synchronous client for batch transcription, jobs, license and health, and
the entry point for live streaming (see streaming.py)."""

import os
import time
import urllib.parse

from . import errors
from ._http import Body, Transport
from ._upload import clean_options, form_value, multipart
from .results import Health, Job, License, Quota, TextResult, Transcription

DEFAULT_API_URL = "http://localhost:7100"


class Client:
    """Client(api_url=None, license_key=None, timeout=300, max_retries=3)

    api_url defaults to $LISTEND_API_URL, then http://localhost:7100;
    license_key to $LICENSE_KEY. `timeout` (seconds) bounds each HTTP request
    as a whole (connecting, the upload, the answer; APITimeoutError after it);
    `max_retries` is how often a request refused with 429/503 or hit by a
    connection failure is retried (with exponential backoff and jitter, never
    sooner than the server's retry_after). The client keeps no connection
    open between calls and may be shared between threads."""

    def __init__(self, api_url=None, license_key=None, timeout=300, max_retries=3, *, ssl_context=None,
                 auth_scheme="Token"):
        api_url = api_url or os.environ.get("LISTEND_API_URL") or DEFAULT_API_URL
        license_key = license_key if license_key is not None else os.environ.get("LICENSE_KEY")
        if license_key is not None:
            license_key = license_key.strip()
        self.api_url = api_url.rstrip("/")
        self.license_key = license_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.ssl_context = ssl_context
        self._t = Transport(self.api_url, license_key, timeout, max_retries, ssl_context, auth_scheme)

    def __repr__(self):
        return f"Client(api_url={self.api_url!r})"

    # -- health and license -------------------------------------------------

    def health(self):
        """GET /health. Returns Health (falsy when the server says unhealthy);
        raises APIConnectionError when the server cannot be reached."""
        try:
            resp = self._t.request("GET", "/health", auth=False, retry=False)
            return Health(resp.json())
        except errors.ServiceUnavailableError as exc:
            return Health(exc.body or {"status": "unhealthy"})

    def license(self):
        """GET /v1/license: key id, name, expires_at, limits and today's usage."""
        resp = self._t.request("GET", "/v1/license")
        return License(resp.json(), Quota.from_headers(resp.headers))

    # -- batch transcription -------------------------------------------------

    def transcribe_url(self, url, **options):
        """Transcribes audio the server downloads from `url`. Options: language,
        punctuate, timestamps, diarize, format (json|text|srt|vtt), ... Returns
        a Transcription (TextResult for text/srt/vtt formats)."""
        if options.get("callback_url"):
            raise ValueError("use submit(url=..., callback_url=...) for asynchronous jobs")
        body = dict(clean_options(options), url=url)
        resp = self._t.request("POST", "/v1/listen", Body.json(body))
        return self._result(resp, options)

    def transcribe_file(self, path_or_file, *, filename=None, content_type=None, **options):
        """Uploads a local file (path, bytes, or binary file object) as
        multipart/form-data field `audio` and transcribes it. The file is
        streamed from disk, never read into memory. A seekable file object is
        rewound for retries; an unseekable one (a pipe) is sent once."""
        if options.get("callback_url"):
            raise ValueError("use submit(file=..., callback_url=...) for asynchronous jobs")
        body = multipart(path_or_file, clean_options(options), filename, content_type)
        resp = self._t.request("POST", "/v1/listen", body)
        return self._result(resp, options)

    def transcribe(self, source, **options):
        """transcribe_url for http(s)/s3 URLs, transcribe_file for anything else."""
        if isinstance(source, str) and source.split("://", 1)[0].lower() in ("http", "https", "s3"):
            return self.transcribe_url(source, **options)
        return self.transcribe_file(source, **options)

    def _result(self, resp, options):
        fmt = options.get("format")
        ctype = resp.headers.get("Content-Type", "")
        if fmt in ("text", "srt", "vtt") or not ctype.startswith("application/json"):
            result = TextResult(resp.text(), fmt or "text", resp.request_id)
        else:
            result = Transcription(resp.json())
        result.quota = Quota.from_headers(resp.headers)
        return result

    # -- asynchronous jobs ---------------------------------------------------

    def submit(self, url=None, *, file=None, callback_url, filename=None, content_type=None, **options):
        """Starts an asynchronous job for `url` or `file`; the server POSTs the
        result to `callback_url` and keeps it for job()/wait(). Returns the
        accepted Job (status "processing" or "queued")."""
        if (url is None) == (file is None):
            raise ValueError("submit() needs exactly one of url= or file=")
        if not callback_url:
            raise ValueError("submit() needs callback_url=")
        opts = dict(clean_options(options), callback_url=callback_url)
        if url is not None:
            body = Body.json(dict(opts, url=url))
        else:
            body = multipart(file, opts, filename, content_type)
        resp = self._t.request("POST", "/v1/listen", body)
        return Job(resp.json(), Quota.from_headers(resp.headers))

    def job(self, job_id):
        """GET /v1/jobs/{id}. Raises NotFoundError for unknown ids."""
        resp = self._t.request("GET", "/v1/jobs/" + urllib.parse.quote(_job_id(job_id), safe=""))
        return Job(resp.json(), Quota.from_headers(resp.headers))

    def jobs(self, **filters):
        """GET /v1/jobs (filters become query parameters, e.g. status="failed")."""
        q = urllib.parse.urlencode({k: form_value(v) for k, v in clean_options(filters).items()})
        data = self._t.request("GET", "/v1/jobs" + ("?" + q if q else "")).json()
        items = data.get("jobs", []) if isinstance(data, dict) else data
        return [Job(j) for j in items]

    def cancel(self, job_id):
        """DELETE /v1/jobs/{id}: cancels a queued or running job."""
        resp = self._t.request("DELETE", "/v1/jobs/" + urllib.parse.quote(_job_id(job_id), safe=""))
        data = resp.json()
        return Job(data if data else {"job_id": _job_id(job_id), "status": "cancelled"})

    def wait(self, job_id, timeout=None, poll_interval=0.5, max_poll_interval=5.0):
        """Polls a job until it is completed, failed or cancelled and returns
        it (check `.status`; `.result` holds the Transcription). Raises
        TimeoutError after `timeout` seconds (None: wait as long as it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = poll_interval
        while True:
            job = self.job(job_id)
            if job.done:
                return job
            if deadline is not None and time.monotonic() + interval > deadline:
                raise TimeoutError(f"job {_job_id(job_id)} still {job.status} after {timeout} s")
            time.sleep(interval)
            interval = min(max_poll_interval, interval * 1.5)

    # -- live streaming ------------------------------------------------------

    def stream(self, audio, **params):
        """Live transcription over WebSocket, as an async iterator of
        StreamMessage:

            async for msg in client.stream("speech.wav", interim_results=True):
                print(msg.is_final, msg.transcript)

        `audio` is a path, bytes, a binary file object, or an (async) iterable
        of bytes chunks (which may also yield {"type": "finalize"} controls).
        WAV input sets sample_rate and encoding from its header. Parameters are
        the stream's query parameters (encoding, sample_rate, language,
        interim_results, ...); `chunk_size` and `realtime` (pace audio at
        real-time speed) control sending. Needs the `websockets` package."""
        from .streaming import open_stream  # imported here: websockets is optional
        return open_stream(self, audio, params)


def _job_id(job):
    return job.job_id if isinstance(job, Job) else str(job)


# The name the Smallest Self-Host docs use for the client.
SmallestClient = Client
