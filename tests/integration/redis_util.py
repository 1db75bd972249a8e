"""A throwaway redis-server and haproxy on loopback ports for multi-replica tests.

`RedisServer(port)` runs `redis-server --port N --save '' --appendonly no` as a
subprocess (no persistence: a restart is an empty Redis, the worst case);
`stop()` / `start()` let a test take it away and bring it back on the same
port. `Haproxy(port, backends)` round-robins HTTP over the given ports.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

from conftest import free_port


def have(binary):
    return shutil.which(binary) is not None


def wait_port(port, up=True, timeout=10, proc=None):
    """Waits for a port to accept (or refuse) connections; fails at once if `proc` (the listener) has exited."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if up and proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not become {'reachable' if up else 'free'}")


class RedisServer:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        wait_port(self.port, up=False)

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *map(str, args)],
                              capture_output=True, text=True, timeout=10).stdout.strip()


class Haproxy:
    def __init__(self, backends, port=None):
        self.port = port or free_port()
        self.backends = backends
        self.dir = tempfile.mkdtemp(prefix="ld_haproxy_")
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        servers = "\n".join(f"    server r{i} 127.0.0.1:{p}" for i, p in enumerate(self.backends))
        cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(f"""global
    maxconn 256
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    option http-server-close
frontend api
    bind 127.0.0.1:{self.port}
    default_backend replicas
backend replicas
    balance roundrobin
{servers}
""")
        self.proc = subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
