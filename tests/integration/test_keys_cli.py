"""`listend keys …` on its own (no server): init, issue, list, inspect, revoke."""
import json
import os
import re
import stat
import subprocess

import pytest

from conftest import run_cli

SUBCOMMANDS = ["init", "issue", "list", "inspect", "revoke"]
HEADER_SAFE = re.compile(r"^ld1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    run_cli("keys", "init", data=d)
    return d


def issue(data, *args, name="client"):
    r = run_cli("keys", "issue", "--name", name, *args, data=data)
    return r.stdout.strip()


def inspect(data, key):
    r = run_cli("keys", "inspect", key, data=data, check=False)
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None)


def list_json(data):
    return json.loads(run_cli("keys", "list", "--json", data=data).stdout)


def test_help_for_each_subcommand():
    top = run_cli("keys", "--help")
    for sub in SUBCOMMANDS:
        assert sub in top.stdout
        r = run_cli("keys", sub, "--help")
        assert r.returncode == 0
        assert r.stdout.startswith(f"usage: listend keys {sub}")
        assert "--data DIR" in r.stdout


def test_unknown_subcommand_and_option_fail(tmp_path):
    assert run_cli("keys", "frobnicate", check=False).returncode != 0
    r = run_cli("keys", "list", "--bogus", data=tmp_path, check=False)
    assert r.returncode != 0 and "--bogus" in r.stderr


def test_init_creates_private_files_and_refuses_overwrite(tmp_path):
    d = tmp_path / "nested" / "data"
    r = run_cli("keys", "init", data=d)
    assert re.search(r"\b[0-9a-f]{8}\b", r.stdout)  # issuer fingerprint
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(d / "issuer.key").st_mode) == 0o600
    assert (d / "issuer.pub").exists() and (d / "listend.db").exists()
    secret = (d / "issuer.key").read_bytes()

    again = run_cli("keys", "init", data=d, check=False)
    assert again.returncode != 0
    assert "refusing to overwrite" in again.stderr
    assert (d / "issuer.key").read_bytes() == secret


def test_issue_prints_only_a_short_header_safe_key(data):
    r = run_cli("keys", "issue", "--name", "acme", data=data)
    key = r.stdout[:-1]
    assert r.stdout.endswith("\n") and "\n" not in key
    assert HEADER_SAFE.match(key)
    # Longest name and largest limits still fit in 200 characters.
    big = issue(data, "--rpm", "100000", "--concurrency", "100000", "--hours-per-day", "1000000",
                "--expires", "2100-01-01", name="n" * 47)
    assert len(big) <= 200 and HEADER_SAFE.match(big)


def test_issue_rejects_bad_input_without_printing_a_key(data, tmp_path):
    cases = [
        ["--name", "n" * 48],
        ["--name", "x", "--rpm", "0"],
        ["--name", "x", "--rpm", "ten"],
        ["--name", "x", "--concurrency", "-1"],
        ["--name", "x", "--hours-per-day", "0"],
        ["--name", "x", "--expires", "not-a-date"],
        ["--name", "x", "--expires", "2027-02-30"],  # no such day: it rolled over to March 2
        ["--name", "x", "--expires-in", "soon"],
        ["--name", "x", "--expires", "2030-01-01", "--expires-in", "1d"],
        [],
    ]
    for args in cases:
        r = run_cli("keys", "issue", *args, data=data, check=False)
        assert r.returncode != 0, args
        assert r.stdout == "", args
        assert r.stderr.strip(), args
    missing = run_cli("keys", "issue", "--name", "x", data=tmp_path / "nowhere", check=False)
    assert missing.returncode != 0 and "keys init" in missing.stderr


def test_list_in_a_fresh_or_a_wrong_data_dir(data, tmp_path):
    """No keys yet: an empty table; no data dir at all (a mistyped --data) was an empty table too, exit 0."""
    r = run_cli("keys", "list", data=data)
    assert r.returncode == 0 and r.stdout.startswith("ID") and len(r.stdout.splitlines()) == 1
    r = run_cli("keys", "list", data=tmp_path / "typo", check=False)
    assert r.returncode == 1 and "no listend data" in r.stderr and r.stdout == "", r.stderr


def test_issue_list_inspect_revoke(data):
    key = issue(data, "--rpm", "5", "--concurrency", "2", "--hours-per-day", "1.5", "--expires-in", "30d",
                name="Acme Corp")
    rc, info = inspect(data, key)
    assert rc == 0
    assert info["name"] == "Acme Corp"
    assert info["rpm"] == 5 and info["concurrency"] == 2 and info["hours_per_day"] == 1.5
    assert info["signature_valid"] and info["issuer_known"] and info["valid"]
    assert not info["expired"] and not info["revoked"]
    assert re.match(r"^k_[0-9a-f]{16}$", info["key_id"])
    assert info["expires_at"].endswith("Z")

    default = issue(data, name="defaults")
    _, dinfo = inspect(data, default)
    assert (dinfo["rpm"], dinfo["concurrency"], dinfo["hours_per_day"]) == (60, 10, 100.0)
    assert dinfo["expires_at"] is None

    table = run_cli("keys", "list", data=data).stdout
    assert info["key_id"] in table and "Acme Corp" in table and "active" in table
    assert key not in table and key.split(".")[2] not in table
    listed = {k["key_id"]: k for k in list_json(data)}
    assert set(listed) == {info["key_id"], dinfo["key_id"]}
    assert listed[info["key_id"]]["rpm"] == 5 and listed[info["key_id"]]["status"] == "active"
    assert key not in json.dumps(listed)
    assert key not in (data / "listend.db").read_bytes().decode("latin-1")

    r = run_cli("keys", "revoke", info["key_id"], data=data)
    assert info["key_id"] in r.stdout
    rc, after = inspect(data, key)
    assert rc == 1 and after["revoked"] and not after["valid"] and after["signature_valid"]
    assert {k["key_id"]: k for k in list_json(data)}[info["key_id"]]["status"] == "revoked"
    # Revoking again is harmless; revoking by the key text works too.
    assert run_cli("keys", "revoke", info["key_id"], data=data).returncode == 0
    run_cli("keys", "revoke", default, data=data)
    assert inspect(data, default)[1]["revoked"]


def test_revoke_reads_key_from_stdin_and_rejects_garbage(data):
    key = issue(data, name="stdin")
    run_cli("keys", "revoke", "-", data=data, input=key + "\n")
    assert inspect(data, key)[1]["revoked"]
    bad = run_cli("keys", "revoke", "hello", data=data, check=False)
    assert bad.returncode != 0 and "neither" in bad.stderr


def test_past_expiry_is_allowed_with_a_warning(data):
    r = run_cli("keys", "issue", "--name", "old", "--expires", "2020-01-01T00:00:00Z", data=data)
    assert "warning" in r.stderr.lower() and "past" in r.stderr
    key = r.stdout.strip()
    assert HEADER_SAFE.match(key)
    rc, info = inspect(data, key)
    assert rc == 1 and info["expired"] and info["signature_valid"] and not info["valid"]
    assert info["expires_at"] == "2020-01-01T00:00:00Z"
    assert list_json(data)[0]["status"] == "expired"


def test_inspect_detects_tampering_and_foreign_issuers(data, tmp_path):
    key = issue(data, name="tamper")
    head, payload, sig = key.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    rc, info = inspect(data, f"{head}.{payload}.{flipped}")
    assert rc == 1 and not info["signature_valid"] and not info["valid"]
    rc, _ = inspect(data, "ld1.garbage")
    assert rc == 2

    other = tmp_path / "other"
    run_cli("keys", "init", data=other)
    rc, info = inspect(other, key)
    assert rc == 1 and not info["issuer_known"] and not info["signature_valid"]


def test_rotation_keeps_old_keys_valid(data):
    old_key = issue(data, name="before")
    old_fp = inspect(data, old_key)[1]["issuer"]
    r = run_cli("keys", "init", "--rotate", data=data)
    assert (data / "trusted" / f"{old_fp}.pub").exists()
    new_key = issue(data, name="after")
    rc_old, info_old = inspect(data, old_key)
    rc_new, info_new = inspect(data, new_key)
    assert rc_old == 0 and info_old["signature_valid"]
    assert rc_new == 0 and info_new["issuer"] != old_fp
    assert info_new["issuer"] in r.stdout
    assert stat.S_IMODE(os.stat(data / "issuer.key").st_mode) == 0o600


def test_data_dir_from_environment(tmp_path):
    env = dict(os.environ, LISTEND_DATA=str(tmp_path / "envdata"))
    run_cli("keys", "init", env=env)
    assert (tmp_path / "envdata" / "issuer.key").exists()
    key = run_cli("keys", "issue", "--name", "env", env=env).stdout.strip()
    assert json.loads(run_cli("keys", "inspect", key, env=env).stdout)["valid"]


def test_help_command_and_version():
    """`listend help CMD` is `listend CMD --help` (it printed the top-level help); --version is listed."""
    from conftest import BIN
    for cmd in ("serve", "keys", "transcribe", "stream", "adapt"):
        a = subprocess.run([BIN, "help", cmd], capture_output=True, text=True, timeout=30)
        b = subprocess.run([BIN, cmd, "--help"], capture_output=True, text=True, timeout=30)
        assert a.returncode == 0 and a.stdout == b.stdout and a.stdout.startswith(f"usage: listend {cmd}"), cmd
    top = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=30).stdout
    assert "--version" in top and "listend help <command>" in top


def test_corrupt_listend_db_is_reported_with_sqlites_reason(data):
    """A listend.db with damaged pages (valid header) was refused as "read revocations: not an error":
    the message was read from the connection after another statement had run."""
    import random
    import sqlite3
    path = os.path.join(str(data), "listend.db")
    db = sqlite3.connect(path)
    rnd = random.Random(7)
    db.executemany("INSERT INTO revocations VALUES (?, ?)",
                   [("k_%016x" % rnd.getrandbits(64), 1) for _ in range(10000)])
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        for off in range(8192, size, size // 6):
            f.seek(off)
            f.write(bytes(rnd.getrandbits(8) for _ in range(4096)))
    r = run_cli("keys", "list", data=data, check=False)
    assert r.returncode != 0
    assert "not an error" not in r.stderr, r.stderr
    assert "malformed" in r.stderr, r.stderr
