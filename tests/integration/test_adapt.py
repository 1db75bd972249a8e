"""`listend adapt` on real recordings (issue 13): a model pack that `serve --models`
loads and `model=NAME` selects, clear errors for bad input, and the built-in
telephony pack reproduced by its script (sphinxtrain's bw, mllr_solve)."""
import csv
import os
import signal
import subprocess
import wave

import pytest
import requests

from conftest import BIN, EVAL_DIR, ROOT, start_server


def run_adapt(*args, timeout=300):
    return subprocess.run([BIN, "adapt", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def manifest_rows():
    with open(os.path.join(EVAL_DIR, "manifest.tsv")) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def mulaw(src, dst):
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", src, "-ar", "8000", "-c:a", "pcm_mulaw",
                    str(dst)], check=True)


@pytest.fixture(scope="module")
def agent_pack(tmp_path_factory):
    """One speaker's calls (15 real clips as 8 kHz mu-law, clip.wav + clip.txt; every third one headerless,
    clip.ul, as a PBX records it) -> pack 'callcenter'."""
    d = tmp_path_factory.mktemp("adapt")
    audio = d / "calls"
    audio.mkdir()
    rows = [r for r in manifest_rows() if r["id"].startswith("cathy_")][:15]
    for i, r in enumerate(rows):
        if i % 3:
            mulaw(os.path.join(EVAL_DIR, r["file"]), audio / (r["id"] + ".wav"))
        else:
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", os.path.join(EVAL_DIR, r["file"]),
                            "-ar", "8000", "-f", "mulaw", str(audio / (r["id"] + ".ul"))], check=True)
        (audio / (r["id"] + ".txt")).write_text(r["reference_text"] + "\n")
    out = d / "models" / "callcenter"
    p = run_adapt("--audio", audio, "--out", out, "--workers", "1")
    return p, out


def test_adapt_writes_a_pack_and_measures_it(agent_pack):
    p, out = agent_pack
    assert p.returncode == 0, p.stderr
    assert "held-out WER: before" in p.stdout and "after" in p.stdout
    assert "collecting statistics (sphinxtrain bw)" in p.stderr  # progress on the terminal
    assert "15 of 15 clips are telephone band" in p.stderr
    assert (out / "mllr_matrix").exists() and (out / "pack.json").exists()
    import json
    meta = json.loads((out / "pack.json").read_text())
    assert meta["name"] == "callcenter" and len(meta["mean_cepstrum"]) == 13
    assert meta["held_out"]["clips"] == 3 and meta["held_out"]["words"] > 0
    # adapting to the speaker and the line helps on clips it did not see
    assert meta["held_out"]["wer_after"] < meta["held_out"]["wer_before"], p.stdout


def test_serve_loads_the_pack_and_model_selects_it(agent_pack, tmp_path):
    p, out = agent_pack
    assert p.returncode == 0, p.stderr
    srv = start_server(tmp_path / "data", "--models", out.parent)
    try:
        key = srv.key("adapt")
        wav = tmp_path / "call.wav"
        mulaw(os.path.join(EVAL_DIR, "cathy_arctic_b0011.wav"), wav)
        with open(wav, "rb") as f:
            r = requests.post(srv.url + "/v1/listen", headers=srv.auth(key), params={"model": "callcenter"},
                              files={"audio": f}, timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "callcenter" and r.json()["text"]
        with open(wav, "rb") as f:
            r = requests.post(srv.url + "/v1/listen", headers=srv.auth(key), params={"model": "nope"},
                              files={"audio": f}, timeout=120)
        assert r.status_code == 400 and "callcenter" in r.json()["error"]
        assert "model pack 'callcenter' (en) loaded" in srv.log()
    finally:
        srv.stop()


def write_wav(path, samples, rate=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)


def test_missing_transcript_is_named(tmp_path):
    src = os.path.join(EVAL_DIR, "cathy_arctic_a0013.wav")
    for n in ("a", "b"):
        subprocess.run(["cp", src, str(tmp_path / (n + ".wav"))], check=True)
    (tmp_path / "a.txt").write_text("he was a head shorter than his companion\n")
    p = run_adapt("--audio", tmp_path, "--out", tmp_path / "pack1")
    assert p.returncode == 1 and "have no transcript" in p.stderr and "b.txt" in p.stderr, p.stderr


def test_empty_audio_is_refused(tmp_path):
    write_wav(tmp_path / "silent.wav", b"\0\0" * 16000)
    (tmp_path / "silent.txt").write_text("hello there\n")
    p = run_adapt("--audio", tmp_path, "--out", tmp_path / "pack2")
    assert p.returncode == 1 and "silent.wav: the audio is empty" in p.stderr, p.stderr


def test_too_little_data_says_how_much_is_needed(tmp_path):
    for r in manifest_rows()[:3]:  # three LibriVox clips, ~15 s
        subprocess.run(["cp", os.path.join(EVAL_DIR, r["file"]), str(tmp_path / r["file"])], check=True)
        (tmp_path / (r["id"] + ".txt")).write_text(r["reference_text"])
    p = run_adapt("--audio", tmp_path, "--out", tmp_path / "pack3")
    assert p.returncode == 1 and "too little data" in p.stderr and "at least 20 s" in p.stderr, p.stderr


@pytest.mark.parametrize("how,stage", [("ctrl-c", "collecting statistics"), ("kill", "collecting statistics"),
                                       ("kill", "measuring WER")])
def test_interrupted_adapt_removes_its_temporary_folder(tmp_path, how, stage):
    """Ctrl-C reaches adapt and the running sphinxtrain tool (the terminal's process group); a kill reaches adapt
    alone, which stops the tool. Either way: no temporary folder left, no pack (not even a half one while the
    held-out part is measured: serve would load it), the signal's exit status."""
    audio, tmp = tmp_path / "clips", tmp_path / "tmp"
    audio.mkdir(), tmp.mkdir()
    for r in [r for r in manifest_rows() if r["id"].startswith("cathy_")][:15]:
        subprocess.run(["cp", os.path.join(EVAL_DIR, r["file"]), str(audio / r["file"])], check=True)
        (audio / (r["id"] + ".txt")).write_text(r["reference_text"])
    p = subprocess.Popen([BIN, "adapt", "--audio", str(audio), "--out", str(tmp_path / "pack"), "--workers", "1"],
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp)},
                         start_new_session=True)
    try:
        for line in p.stderr:
            if stage in line:  # sphinxtrain's bw is running, or the pool decodes the held-out part
                break
        else:
            pytest.fail("adapt ended before bw ran")
        assert os.listdir(tmp), "adapt works in a temporary folder"
        if how == "ctrl-c":
            os.killpg(p.pid, signal.SIGINT)
        else:
            p.send_signal(signal.SIGTERM)
        rest = p.stderr.read()
        p.wait(timeout=60)
    finally:
        p.kill()
    sig = signal.SIGINT if how == "ctrl-c" else signal.SIGTERM
    assert p.returncode == -sig and "listend adapt: interrupted" in rest, (p.returncode, rest)
    assert os.listdir(tmp) == [] and not (tmp_path / "pack").exists()


def test_bad_pack_name_is_a_usage_error(tmp_path):
    p = run_adapt("--audio", tmp_path, "--out", tmp_path / "Bad Name")
    assert p.returncode == 2 and "model name" in p.stderr


def numbers(path):
    with open(path) as f:
        return [float(x) for x in f.read().split()]


def test_builtin_packs_are_reproduced_by_their_scripts(tmp_path):
    """models/<pack>/ (compiled in: telephony) is what scripts/<pack>-pack.sh makes from shared/eval/real
    and flite. The scripts run at once: each is one process at a time, and the suite's time matters."""
    env = dict(os.environ, LISTEND_BIN=BIN, LISTEND_EVAL_DIR=EVAL_DIR)
    packs = sorted(d for d in os.listdir(os.path.join(ROOT, "models"))
                   if os.path.isdir(os.path.join(ROOT, "models", d)))
    assert "telephony" in packs
    procs = {pack: subprocess.Popen([os.path.join(ROOT, "scripts", pack + "-pack.sh"), str(tmp_path / pack)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for pack in packs}
    for pack, p in procs.items():
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        want = numbers(os.path.join(ROOT, "models", pack, "mllr_matrix"))
        got = numbers(tmp_path / pack / "mllr_matrix")
        assert len(got) == len(want), pack
        assert max(abs(a - b) for a, b in zip(got, want)) < 2e-3, pack
