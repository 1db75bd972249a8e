"""scripts/valgrind.sh when valgrind cannot do its job: it must say so within
seconds, never print "clean", and never wait out its 300 s health deadline.

A stand-in `valgrind` first on PATH plays the two failures: dying on an
instruction it cannot emulate (seen on AMD hosts: RDTSCP in a libhwy
constructor) and a server that exits at once. The real memcheck run is the
last stage of scripts/test.sh.
"""
import os
import stat
import subprocess
import time

from conftest import BIN, ROOT

FAKE = r"""#!/bin/sh
# Stand-in for valgrind: finds --log-file=..., then behaves as $FAKE_VG_MODE says.
log=/dev/null
for a in "$@"; do case "$a" in --log-file=*) log="${a#--log-file=}";; --version) [ "$#" -eq 1 ] && { echo valgrind-3.19.0; exit 0; };; esac; done
case "$FAKE_VG_MODE" in
sigill)
    echo "vex amd64->IR: unhandled instruction bytes: 0xF 0x1 0xF9 0x66" >"$log"
    echo "==1== Process terminating with default action of signal 4 (SIGILL)" >>"$log"
    kill -ILL $$ ;;
serve-dies)
    for a in "$@"; do [ "$a" = serve ] && { echo "listend died" >"$log"; exit 1; }; done
    echo "==1== ERROR SUMMARY: 0 errors" >"$log"
    while [ "$1" != "${1#-}" ] || [ "$1" = env ]; do shift; done
    exec "$@" ;;
esac
"""


def run_with_fake(tmp_path, mode):
    fake_dir = tmp_path / "bin"
    fake_dir.mkdir()
    fake = fake_dir / "valgrind"
    fake.write_text(FAKE)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH=f"{fake_dir}:{os.environ['PATH']}", FAKE_VG_MODE=mode, LD_VG_BIN=BIN)
    t0 = time.monotonic()
    p = subprocess.run([os.path.join(ROOT, "scripts", "valgrind.sh")], env=env, capture_output=True, text=True,
                       timeout=120)
    return p, time.monotonic() - t0


def test_unemulated_instruction_is_reported_as_not_run_within_seconds(tmp_path):
    p, took = run_with_fake(tmp_path, "sigill")
    out = p.stdout + p.stderr
    assert p.returncode == 77, out
    assert "NOT RUN" in out and "unhandled instruction bytes" in out and "ASan+UBSan" in out, out
    assert "clean" not in p.stdout, out
    assert took < 30, took


def test_server_that_dies_under_valgrind_fails_at_once(tmp_path):
    p, took = run_with_fake(tmp_path, "serve-dies")
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "exited with 1 before becoming healthy" in out and "FAILED" in out, out
    assert "clean" not in p.stdout, out
    assert took < 60, took
