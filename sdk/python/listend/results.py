"""Result objects: attribute access to the fields callers use, plus `.raw`, the
server's JSON exactly as received, so fields added by newer servers are never
lost. Unknown attributes fall through to `.raw` (None when absent)."""


class Quota:
    """The key's daily audio quota as the server's X-Quota-* headers said it
    with this answer: `limit` and `remaining` in audio seconds, `reset` in
    seconds until the UTC day (and the quota) starts over."""

    __slots__ = ("limit", "remaining", "reset")

    def __init__(self, limit, remaining, reset):
        self.limit = limit
        self.remaining = remaining
        self.reset = reset

    @property
    def used_ratio(self):
        """Share of today's quota used, 0.0 to 1.0."""
        return (self.limit - self.remaining) / self.limit if self.limit else 0.0

    @classmethod
    def from_headers(cls, headers):
        """None when the answer carried no X-Quota-* headers (not authenticated)."""
        if headers is None:
            return None
        try:
            limit, remaining, reset = (headers.get(h) for h in ("X-Quota-Limit", "X-Quota-Remaining",
                                                                   "X-Quota-Reset"))
            if limit is None or remaining is None:
                return None
            return cls(float(limit), float(remaining), int(reset) if reset is not None else None)
        except (TypeError, ValueError, AttributeError):
            return None

    def __repr__(self):
        return f"Quota(limit={self.limit!r}, remaining={self.remaining!r}, reset={self.reset!r})"


class _Record:
    """`quota` is the Quota sent with the answer this came from (None when
    unknown, e.g. a job's result read from a webhook)."""

    _fields = ()

    def __init__(self, raw, quota=None):
        self.raw = raw if isinstance(raw, dict) else {}
        self.quota = quota

    def __getattr__(self, name):
        # Only called when normal lookup fails: expose any JSON field.
        if name.startswith("_"):
            raise AttributeError(name)
        return self.raw.get(name)

    def __getitem__(self, key):
        return self.raw[key]

    def get(self, key, default=None):
        return self.raw.get(key, default)

    def to_dict(self):
        return dict(self.raw)

    def __eq__(self, other):
        return isinstance(other, _Record) and type(self) is type(other) and self.raw == other.raw

    def __repr__(self):
        shown = ", ".join(f"{f}={self.raw.get(f)!r}" for f in self._fields if f in self.raw)
        return f"{type(self).__name__}({shown})"


class Word(_Record):
    _fields = ("word", "start", "end", "confidence")

    @property
    def word(self):
        return self.raw.get("word", "")


class Utterance(_Record):
    _fields = ("text", "start", "end")

    @property
    def text(self):
        return self.raw.get("text", "")


class Transcription(_Record):
    """A finished transcription (200 body of /v1/listen, or a job's result).
    `text` is also what str() gives; `words` is [] unless timestamps were asked
    for; `utterances` are the speech segments."""

    _fields = ("request_id", "text", "confidence", "duration", "language")

    @property
    def text(self):
        return self.raw.get("text", "")

    @property
    def words(self):
        return [Word(w) for w in self.raw.get("words") or []]

    @property
    def utterances(self):
        return [Utterance(u) for u in self.raw.get("utterances") or []]

    def __str__(self):
        return self.text


class TextResult(_Record):
    """A transcription requested as format=text|srt|vtt: `.text` is the body."""

    _fields = ("format", "request_id")

    def __init__(self, body, fmt, request_id=None):
        super().__init__({"text": body, "format": fmt, "request_id": request_id})

    @property
    def text(self):
        return self.raw["text"]

    def __str__(self):
        return self.text


class Job(_Record):
    """An asynchronous job. `result` is a Transcription once completed."""

    _fields = ("job_id", "status", "progress", "request_id")
    FINISHED = ("completed", "failed", "cancelled")

    @property
    def id(self):
        return self.raw.get("job_id")

    @property
    def job_id(self):
        return self.raw.get("job_id")

    @property
    def status(self):
        return self.raw.get("status")

    @property
    def done(self):
        return self.status in self.FINISHED

    @property
    def result(self):
        r = self.raw.get("result")
        return Transcription(r) if isinstance(r, dict) else None


class License(_Record):
    _fields = ("key_id", "name", "expires_at")


class Health(_Record):
    """`healthy` is True for HTTP 200 {"status":"healthy"}; a 503 answer is
    returned (not raised) with `healthy` False and the server's `reason`."""

    _fields = ("status", "reason")

    @property
    def healthy(self):
        return self.raw.get("status") == "healthy"

    def __bool__(self):
        return self.healthy


class StreamMessage(_Record):
    """One server message on a live stream. `type` is "transcription",
    "speech_started", "speech_ended", ...; for transcriptions `transcript`
    (also `.text`), `is_final`, `is_last` and `words`."""

    _fields = ("type", "transcript", "is_final", "is_last")

    @property
    def type(self):
        return self.raw.get("type")

    @property
    def transcript(self):
        return self.raw.get("transcript", "")

    @property
    def text(self):
        return self.transcript

    @property
    def is_final(self):
        return bool(self.raw.get("is_final"))

    @property
    def is_last(self):
        return bool(self.raw.get("is_last"))

    @property
    def words(self):
        return [Word(w) for w in self.raw.get("words") or []]
