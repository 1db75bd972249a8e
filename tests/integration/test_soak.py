"""Soak (issue #8 item 6): bench/soak for about a minute of mixed traffic —
health, license, batch transcriptions of real clips, WebSocket streams, callback
jobs and bad requests — must end with no 5xx other than designed 503s, every job
delivered, and server RSS flat after warm-up (end <= middle * 1.1 + 10 MB)."""
import os
import subprocess
import sys

from conftest import BIN, ROOT


def test_soak_one_minute_mixed_traffic():
    cmd = [sys.executable, os.path.join(ROOT, "bench", "soak"), "--duration", "60", "--bin", BIN]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    assert "OK" in p.stdout
