"""A webhook receiver for tests: a threaded HTTP server on 127.0.0.1 that records
every POST (and PUT) and answers with a scripted sequence of statuses.

    rx = WebhookReceiver(statuses=[500, 500])   # then 200 for every later request
    rx.start()
    ... callback_url=rx.url("/hook") ...
    hits = rx.wait_for(3)                       # list of Hit(path, headers, body, at)
    rx.stop()

`WebhookReceiver(port=p)` binds a given port (e.g. one reserved earlier so a test
can start the receiver only after the server has failed to reach it).
`files={"/clip.wav": path}` also serves those files to GET (audio for URL jobs);
any other GET is 404.
"""
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:  # the integration suite's registry of started servers; absent when used on its own
    from conftest import check_servers
except ImportError:
    check_servers = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Hit:
    path: str
    headers: dict
    body: bytes
    at: float = field(default_factory=time.time)
    method: str = "POST"

    def json(self):
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self, port=None, statuses=(), files=None, delays=()):
        self.port = port or free_port()
        self.files = dict(files or {})
        self.statuses = list(statuses)
        self.delays = list(delays)  # seconds to wait before answering the first requests
        self.hits = []
        self._cv = threading.Condition()
        self._httpd = None
        self._thread = None

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def _next_status(self):
        with self._cv:
            return self.statuses.pop(0) if self.statuses else 200

    def _record(self, hit):
        with self._cv:
            self.hits.append(hit)
            self._cv.notify_all()

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                status = receiver._next_status()
                receiver._record(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                     method=self.command))
                with receiver._cv:
                    delay = receiver.delays.pop(0) if receiver.delays else 0
                time.sleep(delay)
                payload = b'{"ok":true}' if status < 300 else b'{"ok":false}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_PUT = do_POST  # Deepgram's callback_method=put, Smallest's webhook_method=PUT

            def do_GET(self):
                path = receiver.files.get(self.path)
                if not path:
                    self.send_error(404)
                    return
                with open(path, "rb") as f:
                    data = f.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def wait_for(self, n=1, timeout=60, job_id=None):
        """Waits until n requests (for job_id, when given) arrived; returns them."""
        deadline = time.time() + timeout

        def matching():
            return [h for h in self.hits if job_id is None or h.json().get("job_id") == job_id]

        with self._cv:
            while len(matching()) < n:
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"expected {n} webhook(s), got {len(matching())}: {matching()}")
                if check_servers:
                    check_servers()  # a crashed sender fails now, not at the deadline
                self._cv.wait(min(left, 0.5))
            return matching()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
