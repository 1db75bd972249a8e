"""Asynchronous jobs (callback_url): accept, run, poll, deliver signed webhooks
with retries, cancel, key isolation, address policy, crash recovery.

One module-scoped server (--allow-private-urls, 100 ms webhook backoff, 2
workers -> 1 job runner) serves the tests that do not need their own; the
crash test and the address-policy test start their own servers.
"""
import json
import os
import re
import signal
import time

import pytest
import requests

from audio_fixtures import long_file
from conftest import EVAL_DIR, ROOT, start_server
from webhook_receiver import WebhookReceiver, free_port

BACKOFF_ENV = {"LISTEND_WEBHOOK_BACKOFF_MS": "100"}
POLL_RPM = 6000  # tests poll at 10 Hz; the default 60 requests/minute would answer 429
MEDIUM_CLIP = os.path.join(EVAL_DIR, "ps_librivox_sns01_0870.wav")  # 7.1 s
SHORT_CLIP = os.path.join(EVAL_DIR, "ps_librivox_sns01_0880.wav")  # 3 s: "he was not an ill disposed young man"


def _verify_fn():
    """The signature check exactly as docs/jobs.md shows it."""
    with open(os.path.join(ROOT, "docs", "jobs.md")) as f:
        doc = f.read()
    m = re.search(r"<!-- verify-snippet -->\s*```python\n(.*?)```", doc, re.S)
    assert m, "docs/jobs.md lost its verification snippet"
    ns = {}
    exec(compile(m.group(1), "docs/jobs.md", "exec"), ns)
    return ns["verify_listend_signature"]


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    d = tmp_path_factory.mktemp("jobs_audio")
    return {"medium": long_file(d / "medium.wav", 15), "long": long_file(d / "long.wav", 60)}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("jobs"), "--allow-private-urls", env=BACKOFF_ENV)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def key(srv):
    return srv.key("jobs", rpm=POLL_RPM)


def submit(srv, key, path, callback_url, **fields):
    with open(path, "rb") as f:
        return requests.post(srv.url + "/v1/listen", headers=srv.auth(key),
                             files={"audio": (os.path.basename(path), f, "audio/wav")},
                             data={"callback_url": callback_url, **fields}, timeout=30)


def accepted(r):
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["job_id"].startswith("job_") and body["status"] == "processing"
    assert body["request_id"]
    return body


def get_job(srv, key, job_id):
    r = requests.get(f"{srv.url}/v1/jobs/{job_id}", headers=srv.auth(key), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def wait_job(srv, key, job_id, pred, timeout=90, what="condition"):
    deadline = time.time() + timeout
    while True:
        job = get_job(srv, key, job_id)
        if pred(job):
            return job
        assert time.time() < deadline, f"job never reached {what}: {job}"
        time.sleep(0.1)


def delivered(job):
    return job.get("callback", {}).get("state") == "delivered"


def test_job_completes_and_signature_verifies(srv, key):
    verify = _verify_fn()
    with open(os.path.join(srv.data, "webhook.secret")) as f:
        secret = f.read()
    assert re.fullmatch(r"[0-9a-f]{64}\n?", secret)
    for private in ("webhook.secret", "jobs.db", "jobs.db-wal", "listend.db"):  # transcripts, callback URLs
        assert os.stat(os.path.join(srv.data, private)).st_mode & 0o777 == 0o600, private
    with WebhookReceiver() as rx:
        job = accepted(submit(srv, key, SHORT_CLIP, rx.url("/done"), timestamps="true"))
        hit = rx.wait_for(1, job_id=job["job_id"])[0]
        assert hit.path == "/done"
        assert hit.headers["content-type"] == "application/json"
        assert re.fullmatch(r"listend/\d+\.\d+\.\d+", hit.headers["user-agent"])
        sig = hit.headers["x-listend-signature"]
        assert verify(secret, sig, hit.body)
        assert not verify(secret, sig, hit.body.replace(b"completed", b"complete "))
        assert not verify("0" * 64, sig, hit.body)
        payload = hit.json()
        assert payload["job_id"] == job["job_id"] and payload["status"] == "completed"
        result = payload["result"]
        assert result["request_id"] == job["request_id"]
        assert "disposed" in result["text"].lower() or "young" in result["text"].lower(), result["text"]
        assert 2.5 < result["duration"] < 3.5 and result["words"]

        polled = wait_job(srv, key, job["job_id"], delivered, what="delivered")
        assert polled["status"] == "completed" and polled["progress"] == 1
        assert polled["result"] == result
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", polled["completed_at"])
        assert polled["created_at"] <= polled["completed_at"]
        cb = polled["callback"]
        assert cb["url"] == rx.url("/done") and cb["delivered_at"] and cb["next_attempt_at"] is None
        assert [a["status"] for a in cb["attempts"]] == [200]
    # the audio is gone once the job finished
    assert not os.path.exists(os.path.join(srv.data, "jobs", job["job_id"] + ".audio"))
    # and its audio seconds are counted as job audio
    metrics = requests.get(srv.url + "/metrics", timeout=10).text
    job_audio = [float(line.split()[-1]) for line in metrics.splitlines()
                 if line.startswith('listend_audio_seconds_total{mode="job"}')]
    assert job_audio and job_audio[0] >= result["duration"] - 0.01, job_audio


def test_receiver_500_twice_then_200_delivers_on_third_try(srv, key):
    with WebhookReceiver(statuses=[500, 503]) as rx:
        job = accepted(submit(srv, key, SHORT_CLIP, rx.url()))
        hits = rx.wait_for(3, job_id=job["job_id"])
        assert [h.json()["job_id"] for h in hits] == [job["job_id"]] * 3
        assert hits[1].at - hits[0].at >= 0.07  # backoff, not a tight loop
        polled = wait_job(srv, key, job["job_id"], delivered, what="delivered")
        assert [a["status"] for a in polled["callback"]["attempts"]] == [500, 503, 200]
        time.sleep(0.5)
        assert len(rx.wait_for(3, job_id=job["job_id"])) == 3  # nothing after the 2xx


def test_backoff_counts_from_the_end_of_a_slow_attempt(srv, key):
    """Before: the next attempt was due `backoff` after the failed one *started*, so a receiver slower than the
    back-off (one timing out after 15 s) was retried the moment it answered."""
    with WebhookReceiver(statuses=[500], delays=[0.5]) as rx:
        job = accepted(submit(srv, key, SHORT_CLIP, rx.url()))
        hits = rx.wait_for(2, job_id=job["job_id"])
        assert hits[1].at - hits[0].at >= 0.5 + 0.08 - 0.01, hits[1].at - hits[0].at  # 100 ms base, -20 % jitter


def test_a_2xx_with_an_endless_body_is_delivered(srv, key):
    """Before: the body was read until the 15 s attempt timeout, and the delivered webhook counted as a timeout
    and was sent again. Only the status counts: the body is read up to 64 KiB."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    hits = []

    class Endless(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            hits.append(time.time())
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 40))
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"x" * 65536)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Endless)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        job = accepted(submit(srv, key, SHORT_CLIP, f"http://127.0.0.1:{httpd.server_address[1]}/hook"))
        polled = wait_job(srv, key, job["job_id"], lambda j: j.get("callback", {}).get("attempts"), timeout=30,
                          what="an attempt")
        assert polled["callback"]["state"] == "delivered", polled["callback"]
        assert [a.get("status") for a in polled["callback"]["attempts"]] == [200]
        assert len(hits) == 1
    finally:
        httpd.shutdown()


def test_final_4xx_is_not_retried(srv, key):
    with WebhookReceiver(statuses=[410]) as rx:
        job = accepted(submit(srv, key, SHORT_CLIP, rx.url()))
        rx.wait_for(1, job_id=job["job_id"])
        polled = wait_job(srv, key, job["job_id"], lambda j: j["callback"]["state"] == "failed", what="failed")
        assert [a["status"] for a in polled["callback"]["attempts"]] == [410]
        assert polled["status"] == "completed"  # the job itself succeeded
        time.sleep(1.0)
        assert len(rx.hits) == 1


def test_receiver_down_then_up_is_delivered(srv, key):
    rx = WebhookReceiver(port=free_port())
    job = accepted(submit(srv, key, SHORT_CLIP, rx.url()))
    polled = wait_job(srv, key, job["job_id"],
                      lambda j: len(j.get("callback", {}).get("attempts", [])) >= 2, what="two failed attempts")
    assert all("error" in a and "status" not in a for a in polled["callback"]["attempts"])
    assert polled["callback"]["state"] == "pending" and polled["callback"]["next_attempt_at"]
    with rx:
        hit = rx.wait_for(1, timeout=60, job_id=job["job_id"])[0]
        assert hit.json()["status"] == "completed"
        polled = wait_job(srv, key, job["job_id"], delivered, what="delivered")
        assert polled["callback"]["attempts"][-1]["status"] == 200


def submit_url(srv, key, audio_url, callback_url):
    return requests.post(srv.url + "/v1/listen", headers=srv.auth(key),
                         json={"url": audio_url, "callback_url": callback_url, "timestamps": True}, timeout=30)


def test_url_jobs_fetch_their_audio_and_report_fetch_failures(srv, key):
    with WebhookReceiver(files={"/clip.wav": SHORT_CLIP}) as rx:
        good = accepted(submit_url(srv, key, rx.url("/clip.wav"), rx.url()))
        bad = accepted(submit_url(srv, key, rx.url("/missing.wav"), rx.url()))
        ok = rx.wait_for(1, job_id=good["job_id"])[0].json()
        assert ok["status"] == "completed" and 2.5 < ok["result"]["duration"] < 3.5
        assert ok["result"]["words"]
        failed = rx.wait_for(1, job_id=bad["job_id"])[0].json()
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "URL_FETCH_FAILED" and "404" in failed["error"]["error"]
        job = get_job(srv, key, bad["job_id"])
        assert job["status"] == "failed" and job["error"] == failed["error"]
        assert any(f'"job_id":"{bad["job_id"]}"' in x for x in srv.log().splitlines() if '"url fetch failed' in x)
    leftovers = [f for f in os.listdir(os.path.join(srv.data, "jobs")) if f.startswith((good["job_id"], bad["job_id"]))]
    assert leftovers == []


def test_pulse_and_deepgram_jobs_call_back_in_their_own_schema(srv, key):
    """A webhook_url on the Lightning/Pulse paths gets Pulse's webhook body (spec §9) with
    webhook_extra's pairs and webhook_method; Deepgram's callback gets Deepgram's batch body
    (or error body) with dg-token naming the key; /v1/listen keeps listend's own."""
    kid = requests.get(srv.url + "/v1/license", headers=srv.auth(key), timeout=10).json()["key_id"]
    with open(SHORT_CLIP, "rb") as f:
        clip = f.read()
    raw = {**srv.auth(key), "Content-Type": "application/octet-stream"}
    with WebhookReceiver(files={"/clip.wav": SHORT_CLIP}) as rx:
        pulse = accepted(requests.post(
            srv.url + "/waves/v1/pulse/get_text", data=clip, headers=raw, timeout=30,
            params={"language": "en", "word_timestamps": "true", "webhook_url": rx.url("/pulse"),
                    "webhook_method": "PUT", "webhook_extra": "call_id:c-42,agent:ana:b,status:x"}))
        failing = accepted(requests.post(
            srv.url + "/api/v1/lightning/get_text", json={"url": rx.url("/missing.wav")}, timeout=30,
            headers=srv.auth(key), params={"webhook_url": rx.url("/pulse-fail")}))
        dg = accepted(requests.post(
            srv.url + "/deepgram/v1/listen", data=clip, timeout=30, headers={**srv.auth(key), "Content-Type": "audio/wav"},
            params={"callback": rx.url("/dg"), "punctuate": "true", "utterances": "true"}))
        dg_fail = accepted(requests.post(
            srv.url + "/deepgram/v1/listen", json={"url": rx.url("/missing.wav")}, timeout=30, headers=srv.auth(key),
            params={"callback": rx.url("/dg-fail"), "callback_method": "put"}))
        hits = {h.path: h for h in rx.wait_for(4)}
    assert set(hits) == {"/pulse", "/pulse-fail", "/dg", "/dg-fail"}, list(hits)
    assert all(h.headers["x-listend-signature"].startswith("t=") for h in hits.values())

    p = hits["/pulse"]
    b = p.json()
    assert p.method == "PUT" and "dg-token" not in p.headers
    assert b["status"] == "success" and "job_id" not in b and b["request_id"] == pulse["request_id"]
    assert "young" in b["transcription"].lower() and b["language"] == "en"
    assert b["words"] and {"word", "start", "end", "confidence"} <= set(b["words"][0])
    assert b["utterances"] and b["utterances"][0]["text"]
    m = b["metadata"]
    assert 2.5 < m["duration"] < 3.5 and m["duration"] == b["audio_length"]
    assert isinstance(m["processing_time_ms"], int) and m["processing_time_ms"] > 0
    assert m["rtfx"] == pytest.approx(m["duration"] * 1000 / m["processing_time_ms"], rel=0.05)
    # webhook_extra: its pairs as members (a value keeps its own colons); never over the body's own
    assert b["call_id"] == "c-42" and b["agent"] == "ana:b" and b["status"] == "success"

    f = hits["/pulse-fail"]
    assert f.method == "POST"
    assert f.json() == {"status": "error", "message": f.json()["message"], "error_code": "URL_FETCH_FAILED",
                        "request_id": failing["request_id"]} and "404" in f.json()["message"]

    d = hits["/dg"]
    b = d.json()
    assert d.method == "POST" and d.headers["dg-token"] == kid
    assert list(b) == ["metadata", "results"] and b["metadata"]["request_id"] == dg["request_id"]
    alt = b["results"]["channels"][0]["alternatives"][0]
    assert "young" in alt["transcript"].lower() and alt["transcript"][-1] in ".?!"
    assert alt["words"][0]["punctuated_word"] and b["results"]["utterances"]

    e = hits["/dg-fail"]
    assert e.method == "PUT" and e.headers["dg-token"] == kid
    assert e.json()["request_id"] == dg_fail["request_id"] and e.json()["err_msg"]
    assert set(e.json()) == {"err_code", "err_msg", "request_id"}


def test_webhook_method_and_extra_are_checked(srv, key):
    for params in ({"webhook_method": "GET"}, {"webhook_extra": "novalue"}, {"webhook_extra": ":v"},
                   {"webhook_extra": "k:" + "v" * 600}):
        r = requests.post(srv.url + "/waves/v1/pulse/get_text", params={"webhook_url": "http://127.0.0.1:9/x", **params},
                          data=b"\0" * 3200, headers={**srv.auth(key), "Content-Type": "application/octet-stream"},
                          timeout=30)
        assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER", (params, r.text)
        assert next(iter(params)) in r.json()["error"]


def test_other_key_cannot_see_or_cancel_the_job(srv, key):
    other = srv.key("someone-else", rpm=POLL_RPM)
    with WebhookReceiver() as rx:
        job = accepted(submit(srv, key, SHORT_CLIP, rx.url()))
        for method in ("GET", "DELETE"):
            r = requests.request(method, f"{srv.url}/v1/jobs/{job['job_id']}", headers=srv.auth(other), timeout=10)
            assert r.status_code == 404, r.text
            assert r.json()["code"] == "NOT_FOUND"
        r = requests.get(f"{srv.url}/v1/jobs/job_doesnotexist", headers=srv.auth(key), timeout=10)
        assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
        r = requests.get(f"{srv.url}/v1/jobs", headers=srv.auth(other), timeout=10)
        assert r.status_code == 200 and r.json()["jobs"] == []
        second = accepted(submit(srv, key, SHORT_CLIP, rx.url()))
        r = requests.get(f"{srv.url}/v1/jobs?limit=2", headers=srv.auth(key), timeout=10)
        assert r.status_code == 200
        listed = r.json()["jobs"]
        assert [j["job_id"] for j in listed] == [second["job_id"], job["job_id"]]  # newest first
        assert all("result" not in j for j in listed)
        for bad in ("0", "101", "x"):
            r = requests.get(f"{srv.url}/v1/jobs?limit={bad}", headers=srv.auth(key), timeout=10)
            assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER"
        r = requests.get(f"{srv.url}/v1/jobs", timeout=10)
        assert r.status_code == 401
        rx.wait_for(1, job_id=second["job_id"])
        # ?status= filters (the SDKs' jobs(status=...)); a name that is not a status is 400, not ignored
        wait_job(srv, key, job["job_id"], lambda j: j["status"] == "completed", what="completed")
        r = requests.get(f"{srv.url}/v1/jobs?status=completed&limit=100", headers=srv.auth(key), timeout=10)
        ids = [j["job_id"] for j in r.json()["jobs"]]
        assert r.status_code == 200 and {job["job_id"], second["job_id"]} <= set(ids), r.text
        assert {j["status"] for j in r.json()["jobs"]} == {"completed"}
        r = requests.get(f"{srv.url}/v1/jobs?status=queued&limit=100", headers=srv.auth(key), timeout=10)
        assert r.status_code == 200 and job["job_id"] not in [j["job_id"] for j in r.json()["jobs"]]
        assert all(j["status"] == "queued" for j in r.json()["jobs"])
        r = requests.get(f"{srv.url}/v1/jobs?status=done", headers=srv.auth(key), timeout=10)
        assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER" and "status" in r.json()["error"]


def test_cancel_queued_and_processing_jobs(srv, key, audio):
    with WebhookReceiver() as rx:
        running = accepted(submit(srv, key, audio["medium"], rx.url()))
        waiting = accepted(submit(srv, key, SHORT_CLIP, rx.url()))  # one runner: this one waits
        wait_job(srv, key, running["job_id"], lambda j: j["status"] == "processing", what="processing")
        assert get_job(srv, key, waiting["job_id"])["status"] == "queued"
        # jobs decode on their own runners: /health shows them (queue_depth and preparing do not)
        health = requests.get(f"{srv.url}/health?detailed=true", timeout=10).json()
        assert health["jobs"]["queued"] >= 1 and health["jobs"]["processing"] >= 1, health  # (the module's server)

        r = requests.delete(f"{srv.url}/v1/jobs/{waiting['job_id']}", headers=srv.auth(key), timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
        assert not os.path.exists(os.path.join(srv.data, "jobs", waiting["job_id"] + ".audio"))

        r = requests.delete(f"{srv.url}/v1/jobs/{running['job_id']}", headers=srv.auth(key), timeout=10)
        body = r.json()
        if r.status_code == 202:
            assert body["status"] == "processing" and body["cancel_requested"] is True
        else:  # it may have finished in between; DELETE then reports the final state
            pytest.skip(f"job finished before it could be cancelled: {body['status']}")
        job = wait_job(srv, key, running["job_id"], lambda j: j["status"] != "processing", timeout=5,
                       what="cancelled")
        assert job["status"] == "cancelled" and "result" not in job
        assert job["callback"]["state"] == "none" and job["callback"]["attempts"] == []
        # cancelling again changes nothing
        r = requests.delete(f"{srv.url}/v1/jobs/{running['job_id']}", headers=srv.auth(key), timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        time.sleep(0.5)
        assert not [h for h in rx.hits if h.json()["job_id"] in (running["job_id"], waiting["job_id"])]


def test_cancel_a_job_while_its_audio_url_trickles_in(srv, key):
    """DELETE on a job still downloading its audio: the download stopped only when it ended (a URL sending
    2 KB/s held the runner for a minute; with the default --fetch-timeout up to 5 minutes)."""
    httpd = trickle_server()
    try:
        with WebhookReceiver() as rx:
            job = accepted(submit_url(srv, key, f"http://127.0.0.1:{httpd.server_address[1]}/slow.wav", rx.url()))
            wait_job(srv, key, job["job_id"], lambda j: j["status"] == "processing", what="processing")
            r = requests.delete(f"{srv.url}/v1/jobs/{job['job_id']}", headers=srv.auth(key), timeout=10)
            assert r.status_code == 202 and r.json()["cancel_requested"] is True, r.text
            t0 = time.time()
            done = wait_job(srv, key, job["job_id"], lambda j: j["status"] != "processing", timeout=10,
                            what="cancelled")
            assert done["status"] == "cancelled" and time.time() - t0 < 5, done
    finally:
        httpd.shutdown()


def test_callback_url_of_2048_characters(srv, key):
    """jobs.md: at most 2048 characters (2048 itself was refused as "longer than 2047")."""
    with WebhookReceiver() as rx:
        base = rx.url("/")
        r = submit(srv, key, SHORT_CLIP, base + "y" * (2048 - len(base)))
        assert r.status_code == 202, r.text
        r = submit(srv, key, SHORT_CLIP, base + "y" * (2049 - len(base)))
        assert r.status_code == 400 and "2048" in r.json()["error"], r.text
        rx.wait_for(1)


def test_job_over_quota_fails_with_quota_exceeded(srv):
    tiny = srv.key("tiny", hours_per_day="0.001", rpm=POLL_RPM)  # 3.6 s of audio a day
    with WebhookReceiver() as rx:
        first = accepted(submit(srv, tiny, MEDIUM_CLIP, rx.url()))
        second = accepted(submit(srv, tiny, SHORT_CLIP, rx.url()))  # admitted: nothing used yet
        ok = rx.wait_for(1, job_id=first["job_id"])[0].json()
        assert ok["status"] == "completed"
        failed = rx.wait_for(1, job_id=second["job_id"])[0].json()
        assert failed["status"] == "failed" and "result" not in failed
        assert failed["error"]["code"] == "QUOTA_EXCEEDED"
        assert failed["error"]["request_id"] == second["request_id"]
        # the job's refusal is counted like a request's (it used to be forgotten)
        assert quota_refusals(srv) >= 1


def quota_refusals(srv):
    text = requests.get(srv.url + "/metrics", timeout=10).text
    m = re.search(r'^listend_rate_limited_total\{[^}]*kind="quota"[^}]*\} (\S+)$', text, re.M)
    assert m, "no quota series in /metrics"
    return float(m.group(1))


def http_requests(srv, route, method, status):
    text = requests.get(srv.url + "/metrics", timeout=10).text
    want = {"route": route, "method": method, "status": str(status)}
    total = 0.0
    for m in re.finditer(r'^listend_http_requests_total\{(.*)\} (\S+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels == want:
            total += float(m.group(2))
    return total


def test_jobs_endpoints_are_logged_metered_and_rate_limited(srv, key):
    """The /v1/jobs answers go through the server's one response path: the
    access log and /metrics see their real status (they used to say 0), and
    they carry X-RateLimit-* like every authenticated route."""
    before = {(r, m, s): http_requests(srv, r, m, s) for r, m, s in
              (("/v1/jobs", "GET", 200), ("/v1/jobs/{id}", "GET", 404), ("/v1/jobs/{id}", "DELETE", 404),
               ("/v1/jobs", "GET", 0), ("/v1/jobs/{id}", "GET", 0))}
    r = requests.get(f"{srv.url}/v1/jobs", headers=srv.auth(key), timeout=10)
    assert r.status_code == 200, r.text
    assert int(r.headers["X-RateLimit-Limit"]) == POLL_RPM
    assert 0 <= int(r.headers["X-RateLimit-Remaining"]) < POLL_RPM
    assert "X-RateLimit-Reset" in r.headers and r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Request-ID"] == r.json()["request_id"]
    r = requests.get(f"{srv.url}/v1/jobs/job_nope404", headers=srv.auth(key), timeout=10)
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND" and "X-RateLimit-Limit" in r.headers
    r = requests.delete(f"{srv.url}/v1/jobs/job_nope404", headers=srv.auth(key), timeout=10)
    assert r.status_code == 404 and "X-RateLimit-Remaining" in r.headers

    def logged(path, method):
        lines = [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]
        return [line["status"] for line in lines if line.get("path") == path and line.get("method") == method]
    # each access log line is written when its request completes, on the thread that served it: the client
    # may have its answer before that, and one request's line may come after a later one's (seen once in
    # the sanitizer run: the DELETE logged, the GET before it not yet) -- so wait for all three
    deadline = time.time() + 5
    while time.time() < deadline and not (200 in logged("/v1/jobs", "GET") and
                                          404 in logged("/v1/jobs/job_nope404", "GET") and
                                          404 in logged("/v1/jobs/job_nope404", "DELETE")):
        time.sleep(0.05)
    assert 200 in logged("/v1/jobs", "GET")
    assert logged("/v1/jobs/job_nope404", "GET") == [404]
    assert logged("/v1/jobs/job_nope404", "DELETE") == [404]
    assert 0 not in logged("/v1/jobs", "GET")
    after = {k: http_requests(srv, *k) for k in before}
    while time.time() < deadline and after[("/v1/jobs/{id}", "DELETE", 404)] == before[("/v1/jobs/{id}", "DELETE", 404)]:
        time.sleep(0.05)  # counted right after the log line
        after = {k: http_requests(srv, *k) for k in before}
    assert after[("/v1/jobs", "GET", 200)] >= before[("/v1/jobs", "GET", 200)] + 1
    assert after[("/v1/jobs/{id}", "GET", 404)] == before[("/v1/jobs/{id}", "GET", 404)] + 1
    assert after[("/v1/jobs/{id}", "DELETE", 404)] == before[("/v1/jobs/{id}", "DELETE", 404)] + 1
    assert after[("/v1/jobs", "GET", 0)] == 0 and after[("/v1/jobs/{id}", "GET", 0)] == 0


def test_callback_to_private_address_refused_without_flag(server_factory):
    strict = server_factory()
    k = strict.key("strict", rpm=POLL_RPM)
    for url in ("http://127.0.0.1:9/hook", "http://10.0.0.1/hook", "http://169.254.169.254/latest",
                "http://[::1]:9/hook"):
        r = submit(strict, k, SHORT_CLIP, url)
        assert r.status_code == 400, (url, r.text)
        assert r.json()["code"] == "INVALID_PARAMETER" and "callback_url" in r.json()["error"]
    r = submit(strict, k, SHORT_CLIP, "ftp://example.com/hook")
    assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER"
    r = requests.get(strict.url + "/v1/jobs", headers=strict.auth(k), timeout=10)
    assert r.json()["jobs"] == []  # nothing was stored


def test_kill9_during_long_job_then_restart_completes_and_delivers(server_factory, tmp_path, audio):
    data = tmp_path / "crash"
    first = server_factory("--allow-private-urls", data=data, env=BACKOFF_ENV)
    k = first.key("crash", rpm=POLL_RPM)
    with WebhookReceiver() as rx:
        job = accepted(submit(first, k, audio["long"], rx.url()))
        audio_file = os.path.join(str(data), "jobs", job["job_id"] + ".audio")
        assert os.path.exists(audio_file)
        seen = []
        deadline = time.time() + 120
        while len(set(seen)) < 2:  # progress must be seen rising before the crash
            j = get_job(first, k, job["job_id"])
            assert j["status"] in ("queued", "processing"), j
            if 0 < j["progress"] < 1 and (not seen or j["progress"] > seen[-1]):
                seen.append(j["progress"])
            assert time.time() < deadline, f"no rising progress: {seen}"
            time.sleep(0.1)
        assert seen == sorted(seen) and seen[-1] < 1
        first.stop(signal.SIGKILL)
        assert not rx.hits
        assert os.path.exists(audio_file)  # nothing accepted is lost

        second = server_factory("--allow-private-urls", data=data, env=BACKOFF_ENV)
        hit = rx.wait_for(1, timeout=180, job_id=job["job_id"])[0]
        payload = hit.json()
        assert payload["status"] == "completed"
        assert payload["result"]["duration"] > 55 and len(payload["result"]["text"].split()) > 80
        polled = wait_job(second, k, job["job_id"], delivered, what="delivered")
        assert polled["progress"] == 1 and polled["result"] == payload["result"]
        assert not os.path.exists(audio_file)


def test_delivery_gives_up_after_max_age_and_finished_jobs_are_purged(server_factory, tmp_path):
    data = tmp_path / "aging"
    first = server_factory("--allow-private-urls", "--webhook-max-age", "2s", "--job-retention", "3s", data=data,
                           env=BACKOFF_ENV)
    k = first.key("aging", rpm=POLL_RPM)
    rx = WebhookReceiver(port=free_port())  # never started: every attempt fails
    job = accepted(submit(first, k, SHORT_CLIP, rx.url()))
    polled = wait_job(first, k, job["job_id"], lambda j: j.get("callback", {}).get("state") == "failed",
                      timeout=60, what="delivery given up")
    attempts = polled["callback"]["attempts"]
    assert len(attempts) >= 3 and all("error" in a for a in attempts)
    assert polled["callback"]["next_attempt_at"] is None and polled["status"] == "completed"
    n = len(attempts)
    time.sleep(0.5)
    assert len(get_job(first, k, job["job_id"])["callback"]["attempts"]) == n  # no more tries
    first.stop()
    # retention: 3 s after it finished the job is purged (at start, then hourly)
    time.sleep(3.5)
    second = server_factory("--allow-private-urls", "--job-retention", "3s", data=data, env=BACKOFF_ENV)
    r = requests.get(f"{second.url}/v1/jobs/{job['job_id']}", headers=second.auth(k), timeout=10)
    assert r.status_code == 404
    assert requests.get(f"{second.url}/v1/jobs", headers=second.auth(k), timeout=10).json()["jobs"] == []


def trickle_server():
    """An audio URL that sends 2 KB every 0.2 s (~20 s for the file): a job downloading it holds a runner."""
    import http.server
    import threading

    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", "200000")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"\0" * 2000)
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass

        def log_message(self, *a):
            pass
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def test_queued_jobs_survive_a_restart_with_the_data_dir_spelled_differently(server_factory, tmp_path,
                                                                             monkeypatch):
    """jobs.db held the audio path as --data was typed ("rel/jobs/job_….audio"): started again from another
    cwd or with the absolute path, every queued job failed "Cannot read the audio file" and its audio stayed.
    One job here is queued by this version, one has its row rewritten as an older version stored it."""
    import sqlite3
    monkeypatch.chdir(tmp_path)
    first = server_factory("--allow-private-urls", data="rel", env=BACKOFF_ENV)
    k = first.key("paths", rpm=POLL_RPM)
    slow = trickle_server()
    try:
        with WebhookReceiver() as rx:
            busy = accepted(submit_url(first, k, f"http://127.0.0.1:{slow.server_address[1]}/slow.wav", rx.url()))
            wait_job(first, k, busy["job_id"], lambda j: j["status"] == "processing", what="processing")
            new = accepted(submit(first, k, SHORT_CLIP, rx.url()))
            old = accepted(submit(first, k, SHORT_CLIP, rx.url()))
            assert get_job(first, k, new["job_id"])["status"] == "queued"
            first.stop(signal.SIGKILL)
    finally:
        slow.shutdown()  # closed: the URL job fails fast after the restart instead of holding the runner
        slow.server_close()
    db = sqlite3.connect(os.path.join("rel", "jobs.db"))
    db.execute("UPDATE jobs SET audio_path = 'rel/jobs/' || id || '.audio' WHERE id = ?", (old["job_id"],))
    db.commit()
    db.close()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    second = server_factory("--allow-private-urls", data=tmp_path / "rel", env=BACKOFF_ENV)
    with WebhookReceiver() as rx:
        for job in (new, old):
            done = wait_job(second, k, job["job_id"], lambda j: j["status"] not in ("queued", "processing"),
                            timeout=60, what="finished")
            assert done["status"] == "completed", done
            assert done["result"]["duration"] > 2.5
    assert sorted(os.listdir(tmp_path / "rel" / "jobs")) == []


@pytest.fixture
def full_jobs_db(tmp_path):
    """A data dir whose jobs.db (and its -wal, which SQLite puts beside the file a symlink points at) lives on
    an 8 MB tmpfs, with fill()/free() to run that file system out of space and back: the store's writes fail
    with "database or disk is full" while the audio, listend.db and the server's log stay writable."""
    import errno
    import subprocess
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    small = tmp_path / "small"
    small.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(small / "jobs.db", data / "jobs.db")
    filler = small / "filler"

    class Disk:
        def fill(self):
            with open(filler, "ab") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e

        def free(self):
            os.unlink(filler)
    disk = Disk()
    disk.data = data
    yield disk
    subprocess.run(["umount", "-l", str(small)], check=False)


def log_lines(srv, job_id, text):
    return [x for x in srv.log().splitlines() if job_id in x and text in x]


def test_disk_full_when_a_job_finishes_keeps_its_audio_and_stores_the_outcome_later(server_factory, full_jobs_db,
                                                                                      audio):
    """The store's finish failed (disk full), yet the audio was deleted and "job finished" logged; the job stayed
    processing and after a restart failed "Cannot read the audio file". Now the runner keeps the audio and
    retries until the outcome is stored, then delivers once."""
    srv = server_factory("--allow-private-urls", data=full_jobs_db.data, env=BACKOFF_ENV)
    k = srv.key("full", rpm=POLL_RPM)
    with WebhookReceiver() as rx:
        job = accepted(submit(srv, k, audio["medium"], rx.url()))
        audio_file = os.path.join(str(full_jobs_db.data), "jobs", job["job_id"] + ".audio")
        wait_job(srv, k, job["job_id"], lambda j: j["status"] == "processing", what="processing")
        full_jobs_db.fill()
        deadline = time.time() + 60
        while not (log_lines(srv, job["job_id"], "cannot store the outcome")
                   or log_lines(srv, job["job_id"], "cannot finish")):
            assert time.time() < deadline, srv.log()[-3000:]
            time.sleep(0.1)
        assert os.path.exists(audio_file)  # the outcome is not stored: the audio must stay
        assert get_job(srv, k, job["job_id"])["status"] == "processing"
        assert not log_lines(srv, job["job_id"], '"job finished"')
        assert not rx.hits
        full_jobs_db.free()
        done = wait_job(srv, k, job["job_id"], delivered, timeout=30, what="stored and delivered")
        assert done["status"] == "completed" and done["result"]["duration"] > 14
        assert not os.path.exists(audio_file)
        assert len(rx.wait_for(1, job_id=job["job_id"])) == 1
        assert len(log_lines(srv, job["job_id"], '"job finished"')) == 1


def test_disk_full_keeps_the_webhook_backoff_and_does_not_resend_a_delivered_webhook(server_factory, full_jobs_db):
    """record_attempt failed (disk full), so next_attempt_ms never moved: 7,752 POSTs in 10 s to a receiver
    answering 500, and a receiver answering 200 got the same delivery again and again. The attempts are kept in
    memory meanwhile and stored once there is room."""
    srv = server_factory("--allow-private-urls", data=full_jobs_db.data, env={"LISTEND_WEBHOOK_BACKOFF_MS": "1000"})
    k = srv.key("full", rpm=POLL_RPM)
    with WebhookReceiver(statuses=[500] * 1000) as down, WebhookReceiver(statuses=[500]) as flaky:
        a = accepted(submit(srv, k, SHORT_CLIP, down.url()))
        b = accepted(submit(srv, k, SHORT_CLIP, flaky.url()))
        for job in (a, b):  # each first attempt (500) is recorded before the disk fills
            wait_job(srv, k, job["job_id"], lambda j: len(j.get("callback", {}).get("attempts", [])) >= 1,
                     timeout=60, what="a recorded attempt")
        full_jobs_db.fill()
        time.sleep(4)  # backoff 1 s, 2 s, 4 s (x0.8..1.2): at most three more attempts each
        assert len(down.hits) <= 5, len(down.hits)
        assert [h.json()["job_id"] for h in flaky.hits] == [b["job_id"]] * 2  # 500, then the 200: once
        assert get_job(srv, k, b["job_id"])["callback"]["state"] == "pending"  # the store is behind
        full_jobs_db.free()
        done = wait_job(srv, k, b["job_id"], delivered, timeout=20, what="delivery recorded")
        assert [x["status"] for x in done["callback"]["attempts"]] == [500, 200]
        sent = len(down.hits)
        pending = wait_job(srv, k, a["job_id"], lambda j: len(j["callback"]["attempts"]) >= sent, timeout=20,
                           what="attempts recorded")
        assert pending["callback"]["state"] == "pending"
        assert [x["attempt"] for x in pending["callback"]["attempts"]] == list(range(1, len(pending["callback"]["attempts"]) + 1))
        assert len(flaky.hits) == 2


def test_purge_deletes_a_backlog_past_10000_in_one_run_and_serves_requests_meanwhile(server_factory, tmp_path):
    """The purge deleted at most 10,000 rows per hourly run, one fsynced commit each under the store's mutex
    (submits, GET /v1/jobs and /metrics waited 19-42 s); the rest waited another hour. Now it deletes in
    batched transactions until no expired row is left."""
    import sqlite3
    data = tmp_path / "backlog"
    first = server_factory(data=data)
    k = first.key("old", rpm=POLL_RPM)
    kid = requests.get(first.url + "/v1/license", headers=first.auth(k), timeout=10).json()["key_id"]
    first.stop()
    db = sqlite3.connect(str(data / "jobs.db"))
    cols = [r[1] for r in db.execute("PRAGMA table_info(jobs)")]
    old_ms = int(time.time() * 1000) - 30 * 86400 * 1000
    result = json.dumps({"request_id": "r", "text": "yes " * 200})

    def row(i, finished):
        values = {"id": "job_old%06d" % i, "key_id": kid, "request_id": "r", "state": "completed", "progress": 1,
                  "created_ms": finished, "started_ms": finished, "finished_ms": finished, "result_json": result,
                  "callback_url": "http://127.0.0.1:9/", "attempts_json": "[]"}
        return [values.get(c, 0 if c not in ("key_json", "opts_json", "url", "audio_path", "error_json") else None)
                for c in cols]
    db.executemany(f"INSERT INTO jobs ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                   [row(i, old_ms) for i in range(12000)] + [row(99999, int(time.time() * 1000))])
    db.commit()
    db.close()

    second = server_factory(data=data)
    r = requests.get(second.url + "/v1/jobs", headers=second.auth(k), timeout=30)
    assert r.status_code == 200
    deadline = time.time() + 30
    while True:
        db = sqlite3.connect(str(data / "jobs.db"))
        left = db.execute("SELECT COUNT(*) FROM jobs WHERE finished_ms < ?", (old_ms + 1,)).fetchone()[0]
        recent = db.execute("SELECT COUNT(*) FROM jobs WHERE id = 'job_old099999'").fetchone()[0]
        db.close()
        if left == 0 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert left == 0 and recent == 1
    assert any("purged 12000 finished jobs" in x for x in second.log().splitlines())
