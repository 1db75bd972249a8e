"""Graceful shutdown: SIGTERM stops accepting, lets the in-flight request
finish with 200 and exits 0; past --drain-timeout unfinished requests get 503
and the server still exits 0 promptly."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from conftest import GOFORWARD

PCM = open(GOFORWARD, "rb").read()


def post_in_thread(srv, key, data, out):
    def run():
        try:
            out["r"] = requests.post(srv.url + "/v1/listen", data=data, params={"encoding": "linear16"}, timeout=120,
                                     headers={**srv.auth(key), "Content-Type": "application/octet-stream"})
        except requests.RequestException as e:  # pragma: no cover - reported by the asserts
            out["exc"] = e

    t = threading.Thread(target=run)
    t.start()
    return t


def wait_in_flight(srv, timeout=30):
    """Until the server reports a transcription queued or running."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        h = requests.get(srv.url + "/health?detailed=true", timeout=5).json()
        if h["queue_depth"] > 0 or h["asr_busy"] > 0:
            return
        time.sleep(0.02)
    raise AssertionError("request never reached the decoder pool")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])  # SIGHUP (a closed terminal) killed it mid-request
def test_sigterm_lets_in_flight_request_finish(server_factory, sig):
    srv = server_factory(workers=1)
    key = srv.key("drain")
    out = {}
    t = post_in_thread(srv, key, PCM * 3, out)
    wait_in_flight(srv)
    srv.proc.send_signal(sig)
    time.sleep(0.2)
    try:  # no longer accepting new connections
        requests.get(srv.url + "/health", timeout=2)
        accepted = True
    except requests.RequestException:
        accepted = False
    t.join(120)
    assert out.get("r") is not None, out
    assert out["r"].status_code == 200, out["r"].text
    assert "forward" in out["r"].json()["text"].lower()
    assert out["r"].headers.get("Connection", "").lower() == "close"
    assert srv.proc.wait(60) == 0
    assert not accepted
    log = srv.log()
    assert f"Received {signal.Signals(sig).name}" in log and "Shutting down" in log and "Shutdown complete" in log


def test_drain_timeout_answers_503_and_exits_0(server_factory):
    srv = server_factory("--drain-timeout", "1", workers=1)
    key = srv.key("slow")
    out = {}
    t = post_in_thread(srv, key, PCM * 8, out)  # ~22 s of audio: far longer than the 1 s drain timeout
    wait_in_flight(srv)
    t0 = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    t.join(60)
    r = out.get("r")
    assert r is not None, out
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "SERVICE_UNAVAILABLE" and r.json()["retry_after"] >= 1
    assert srv.proc.wait(60) == 0
    assert time.time() - t0 < 30


def test_sigterm_does_not_wait_for_a_starved_decoder_warmer(server_factory):
    """The warmer builds stream decoders at nice 19. Before: SIGTERM joined it while it was
    loading a model, and on a busy machine that took 52 and 141 s (six busy loops), far past
    an orchestrator's 30 s grace. Now it gets 2 s and is left to the exit. Busy machine made
    deterministic: the server and one busy loop share one CPU, where a nice-19 thread gets
    ~1.5 % (a 0.5 s model load takes half a minute)."""
    srv = server_factory(workers=1, env={"LISTEND_STREAM_PREWARM": "8"})  # the warmer builds for ~4 s
    cpu = str(min(os.sched_getaffinity(0)))
    if subprocess.run(["taskset", "-a", "-p", "-c", cpu, str(srv.proc.pid)], capture_output=True).returncode:
        pytest.fail("taskset cannot pin the server's threads here; this check needs it")
    burner = subprocess.Popen(["taskset", "-c", cpu, sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        t0 = time.time()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(60) == 0
        took = time.time() - t0
    finally:
        burner.kill()
        burner.wait()
    assert "stream decoder warmer still loading a model after 2 s: not waiting for it" in srv.log(), srv.log()[-1500:]
    assert took < 15, took  # ~3 s; before: ≥ 20 s (the rest of one model load at ~1.5 % of a CPU)


def test_sigterm_while_decoders_load_exits_at_once(tmp_path):
    """Before: signals were only looked at once every decoder had loaded (8 workers: ~11 s; 1000: until the OOM
    killer). Nothing is served yet, so a signal during start-up ends the process at once."""
    from conftest import BIN, free_port, run_cli
    run_cli("keys", "init", data=tmp_path)
    p = subprocess.Popen([BIN, "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--data", str(tmp_path),
                          "--workers", "16"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Signals are taken from the "Starting" line on (before it, on a loaded machine, SIGTERM's default
        # action could still end the process); 16 decoders then take several seconds on two cores.
        first = p.stdout.readline()
        assert "Starting API Server" in first, first
        t0 = time.time()
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0 and time.time() - t0 < 3
    finally:
        p.kill()
    out = first + p.stdout.read()
    assert "Received SIGTERM while starting" in out and "API server listening" not in out, out[-2000:]


def test_nohup_keeps_sighup_ignored(tmp_path):
    """Under `nohup` SIGHUP is ignored, and a closed terminal must not stop the server: waiting for SIGHUP with
    sigtimedwait took it even so (Linux delivers an ignored signal that is blocked and waited for)."""
    from conftest import BIN, free_port, run_cli
    run_cli("keys", "init", data=tmp_path)
    port = free_port()
    p = subprocess.Popen(["nohup", BIN, "serve", "--host", "127.0.0.1", "--port", str(port), "--data", str(tmp_path),
                          "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         cwd=tmp_path)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        p.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert p.poll() is None and requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    finally:
        p.kill()
