"""Shared fixtures: the real listend binary on a free loopback port.

`server_factory(**flags)` starts `listend serve` with a fresh data dir (issuer
key created with `listend keys init`) and waits until /health answers 200;
`issue_key(srv, **limits)` runs `listend keys issue` against that data dir.
Every server started here is stopped (SIGTERM, then SIGKILL) at teardown.
"""
import os
import signal
import socket
import subprocess
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("LISTEND_BIN", os.path.join(ROOT, "build", "listend"))
GOFORWARD = "/usr/share/pocketsphinx/test/data/goforward.raw"
# shared/ sits beside the checkout (CI); /work/shared on developer machines.
EVAL_DIR = next((d for d in (os.path.join(os.path.dirname(ROOT), "shared", "eval", "real"), "/work/shared/eval/real")
                 if os.path.isdir(d)), "/work/shared/eval/real")


# Longest files first: with `-n 2 --dist loadfile` each worker takes the next file when it is free, so a long
# file collected last (alphabetical order) kept one worker busy while the other had finished. Relative weights
# (seconds per file in a `--durations=0` run, Dec 5); files not listed keep their order after these.
FILE_WEIGHT = {
    "test_cli_transcribe.py": 294, "test_compat.py": 293, "test_stream.py": 185, "test_diarize.py": 185,
    "test_adapt.py": 173, "test_tenant_isolation.py": 155, "test_keywords.py": 143, "test_listen_inputs.py": 125,
    "test_sdk_python.py": 114, "test_jobs.py": 106, "test_multichannel.py": 93, "test_auth_http.py": 91,
    "test_playground_browser.py": 91, "test_stream_repeatable.py": 85, "test_replicas.py": 80, "test_soak.py": 78,
}


def pytest_collection_modifyitems(items):
    """Orders whole files by FILE_WEIGHT (stable: tests inside a file keep their order)."""
    items.sort(key=lambda item: -FILE_WEIGHT.get(os.path.basename(str(item.fspath)), 0))


# Servers started by start_server and not stopped through Server.stop(): a wait
# helper calls check_servers() so a crashed server fails the test at once
# instead of running out the wait's timeout.
LIVE = set()


def word_errors(ref, hyp):
    """Word-level edit distance (substitutions + deletions + insertions)."""
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)]


def check_servers():
    """Raises if a server this test run started has died with a non-zero status (a crash, not a drain)."""
    for srv in list(LIVE):
        rc = srv.proc.poll()
        if rc is not None:
            LIVE.discard(srv)
            if rc != 0:
                raise AssertionError(f"listend on port {srv.port} exited with {rc}:\n{srv.log()[-3000:]}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, data=None, check=True, **kw):
    cmd = [BIN, *args]
    if data is not None:
        cmd += ["--data", str(data)]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60, **kw)


class Server:
    def __init__(self, data, port, proc, log_path, scheme="http"):
        self.data = data
        self.port = port
        self.proc = proc
        self.log_path = log_path
        self.url = f"{scheme}://127.0.0.1:{port}"

    def key(self, name="test", **limits):
        """Issues a key; limits are `keys issue` flags without dashes, e.g. rpm=3, expires_in="1d"."""
        args = ["keys", "issue", "--name", name]
        for k, v in limits.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        return run_cli(*args, data=self.data).stdout.strip()

    def auth(self, key):
        return {"Authorization": f"Token {key}"}

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, sig=signal.SIGTERM, timeout=30):
        LIVE.discard(self)
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


async def ws_steps(uri, key, steps):
    """A WebSocket client: sends each step in order (bytes: audio in 100 ms frames; a dict: a JSON message),
    then reads every message until the server closes. Returns (messages, close code)."""
    import json
    import websockets
    msgs = []
    async with websockets.connect(uri, extra_headers={"Authorization": f"Token {key}"}, open_timeout=60) as ws:
        for step in steps:
            if isinstance(step, dict):
                await ws.send(json.dumps(step))
            for i in range(0, len(step) if isinstance(step, bytes) else 0, 3200):
                await ws.send(step[i:i + 3200])
        try:
            async for m in ws:
                msgs.append(json.loads(m))
        except websockets.ConnectionClosed:
            pass
        return msgs, ws.close_code


def tmpfs_mount_ok():
    """Whether this host lets an unprivileged namespace mount a tmpfs (the disk-full tests need it)."""
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def start_server_on_tmpfs(stage, tmp_path, size="3m"):
    """A server whose data dir is a `size` tmpfs of its own (a private mount namespace), holding a copy of
    `stage` (keys issued there beforehand); returns it once /health answers 200. srv.inside is the tmpfs as
    this process sees it (/proc/<pid>/root/...), for fill_disk."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    port = free_port()
    log_path = tmp_path / "server.log"
    script = (f"mount -t tmpfs -o size={size} tmpfs {mnt} && cp -a {stage}/. {mnt}/ && "
              f"exec {BIN} serve --host 127.0.0.1 --port {port} --data {mnt} --workers 1")
    with open(log_path, "w") as logf:
        proc = subprocess.Popen(["unshare", "-rm", "sh", "-c", script], stdout=logf, stderr=subprocess.STDOUT,
                                env=dict(os.environ, LISTEND_STREAM_PREWARM="0"))
    srv = Server(str(mnt), port, proc, str(log_path))
    LIVE.add(srv)
    srv.inside = f"/proc/{proc.pid}/root{mnt}"  # the server's own view of its tmpfs
    deadline = time.time() + 60
    while True:
        if proc.poll() is not None or time.time() > deadline:
            srv.stop()
            raise AssertionError(srv.log())
        try:
            if requests.get(srv.url + "/health", timeout=2).status_code == 200:
                return srv
        except requests.RequestException:
            pass
        time.sleep(0.1)


def fill_disk(srv):
    """Fills the tmpfs of start_server_on_tmpfs to its last byte (srv.inside/fill; unlink it to free it)."""
    fd = os.open(f"{srv.inside}/fill", os.O_WRONLY | os.O_CREAT, 0o600)
    for chunk in (65536, 512):
        try:
            while True:
                os.write(fd, b"\0" * chunk)
        except OSError:
            pass
    os.close(fd)


def start_server(data, *extra, port=None, workers=2, env=None, scheme="http", verify=False, wait=True):
    data = str(data)
    if not os.path.exists(os.path.join(data, "issuer.pub")):
        run_cli("keys", "init", data=data)
    port = port or free_port()
    log_path = os.path.join(data, f"server-{port}.log")
    cmd = [BIN, "serve", "--host", "127.0.0.1", "--port", str(port), "--data", data,
           "--workers", str(workers), *map(str, extra)]
    full_env = dict(os.environ)
    # Warm stream decoders cost ~0.5 s CPU each at start: tests create them on demand
    # unless they ask (test_stream_prewarm.py checks the default).
    full_env.setdefault("LISTEND_STREAM_PREWARM", "0")
    full_env.update(env or {})
    logf = open(log_path, "a")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=full_env)
    logf.close()
    srv = Server(data, port, proc, log_path, scheme)
    LIVE.add(srv)
    if wait:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"listend exited with {proc.returncode}:\n{srv.log()}")
            try:
                if requests.get(srv.url + "/health", timeout=2, verify=verify).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline:
                srv.stop(signal.SIGKILL)
                raise RuntimeError(f"listend did not become healthy:\n{srv.log()}")
            time.sleep(0.1)
    return srv


def start_tls_server(d, *extra, **kw):
    """A server on https with a self-signed certificate for 127.0.0.1 and localhost made in `d`; the
    certificate's path is `srv.cert` (verify against it, or hand it to node as NODE_EXTRA_CA_CERTS)."""
    d = str(d)
    os.makedirs(d, exist_ok=True)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    srv = start_server(os.path.join(d, "data"), "--tls-cert", cert, "--tls-key", key, *extra, scheme="https",
                       verify=cert, **kw)
    srv.cert = cert
    return srv


@pytest.fixture
def server_factory(tmp_path):
    started = []

    def factory(*extra, data=None, **kw):
        srv = start_server(data or tmp_path / f"data{len(started)}", *extra, **kw)
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server per test module for tests that do not change its state."""
    srv = start_server(tmp_path_factory.mktemp("shared"))
    yield srv
    srv.stop()
