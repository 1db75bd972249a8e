"""Builds upload bodies without reading the audio into memory: a multipart/form-data
body produced chunk by chunk from the file object (Content-Length when the file's
size is known, chunked otherwise), and option encoding shared by all request forms."""

import io
import mimetypes
import os
import secrets

from ._http import Body

CHUNK = 64 * 1024

# Formats the server documents, so the part gets a meaningful type even where
# the platform's mimetypes table lacks one (m4a, flac on minimal systems).
AUDIO_TYPES = {
    ".wav": "audio/wav", ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg",
    ".opus": "audio/ogg", ".m4a": "audio/mp4", ".mp4": "audio/mp4", ".webm": "audio/webm",
    ".raw": "application/octet-stream", ".pcm": "application/octet-stream",
}


# Headerless audio by file name, as `listend transcribe` reads it: the bytes
# cannot say what they are, so the name does (encoding, sample_rate).
HEADERLESS = {
    ".raw": ("linear16", 16000), ".pcm": ("linear16", 16000), ".ul": ("mulaw", 8000), ".ulaw": ("mulaw", 8000),
    ".mu": ("mulaw", 8000), ".al": ("alaw", 8000), ".alaw": ("alaw", 8000),
}


def headerless_fields(filename, fields):
    """`fields` plus the encoding and sample_rate a headerless name implies,
    unless the caller gave an encoding."""
    raw = HEADERLESS.get(os.path.splitext(filename or "")[1].lower())
    if not raw or "encoding" in fields:
        return fields
    return {**fields, "encoding": raw[0], "sample_rate": fields.get("sample_rate", raw[1])}


def form_value(value):
    """Options as the server's form fields and query parameters spell them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(form_value(v) for v in value)
    return str(value)


def clean_options(options):
    return {k: v for k, v in options.items() if v is not None}


def guess_type(filename):
    ext = os.path.splitext(filename or "")[1].lower()
    return AUDIO_TYPES.get(ext) or mimetypes.guess_type(filename or "")[0] or "application/octet-stream"


def _quote(s):
    return s.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class _FileSource:
    """Opens paths lazily (and once per attempt), remembers where a caller's
    file object started so a retry can rewind it."""

    def __init__(self, path_or_file):
        self.path = None
        self.file = None
        if isinstance(path_or_file, (str, os.PathLike)):
            self.path = os.fspath(path_or_file)
            self.name = os.path.basename(self.path)
            self.size = os.path.getsize(self.path)
            self.replayable = True
            return
        if isinstance(path_or_file, (bytes, bytearray, memoryview)):
            path_or_file = io.BytesIO(bytes(path_or_file))
        if not hasattr(path_or_file, "read"):
            raise TypeError("transcribe_file() takes a path, bytes or a binary file object")
        self.file = path_or_file
        name = getattr(path_or_file, "name", None)
        self.name = (os.path.basename(name) if isinstance(name, str) else "") or "audio"
        self.start = None
        self.size = None
        try:
            if path_or_file.seekable():
                self.start = path_or_file.tell()
                end = path_or_file.seek(0, io.SEEK_END)
                path_or_file.seek(self.start)
                self.size = end - self.start
        except (AttributeError, OSError, ValueError):
            pass
        self.replayable = self.start is not None

    def chunks(self):
        if self.path is not None:
            with open(self.path, "rb") as f:
                while True:
                    b = f.read(CHUNK)
                    if not b:
                        return
                    yield b
        if self.start is not None:
            self.file.seek(self.start)
        while True:
            b = self.file.read(CHUNK)
            if not b:
                return
            if isinstance(b, str):
                raise TypeError("the audio file object must be opened in binary mode ('rb')")
            yield b


def multipart(path_or_file, fields, filename=None, content_type=None):
    """A multipart body with `fields` (strings) first and the audio last in the
    field `audio`, as the server expects."""
    src = _FileSource(path_or_file)
    filename = filename or src.name
    ctype = content_type or guess_type(filename)
    fields = headerless_fields(filename, fields)
    boundary = "listend-" + secrets.token_hex(16)
    head = io.BytesIO()
    for k, v in fields.items():
        head.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(k)}"\r\n\r\n'.encode())
        head.write(form_value(v).encode() + b"\r\n")
    head.write(f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="{_quote(filename)}"\r\n'
               f"Content-Type: {ctype}\r\n\r\n".encode())
    head = head.getvalue()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks():
        yield head
        yield from src.chunks()
        yield tail

    length = len(head) + src.size + len(tail) if src.size is not None else None
    return Body(f"multipart/form-data; boundary={boundary}", chunks, length, src.replayable)
