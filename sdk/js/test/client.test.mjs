// The JavaScript SDK against a real listend. Run by
// tests/integration/test_sdk_python.py, which starts the server and a loopback
// audio/callback server and passes them in LISTEND_* environment variables.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { createServer } from 'node:net';
import { createReadStream, readFileSync, openSync, closeSync, ftruncateSync, writeSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  SmallestClient, ListendClient, ListendError, InvalidLicenseError, LicenseExpiredError, RateLimitError,
  BadRequestError, NotFoundError, APIConnectionError, APITimeoutError, ServiceUnavailableError, TextResult, QuotaExceededError, Quota,
} from '@listend/client';

const env = process.env;
const skip = env.LICENSE_KEY && env.LISTEND_TEST_AUDIO_URL ? false : 'needs a server: run tests/integration/test_sdk_python.py';
const here = dirname(fileURLToPath(import.meta.url));
const client = () => new ListendClient();

test('health and license', { skip }, async () => {
  const c = client();
  const h = await c.health();
  assert.equal(h.status, 'healthy');
  assert.ok(h.healthy);
  const lic = await c.license();
  assert.equal(lic.name, 'js-sdk');
  assert.equal(lic.raw.key_id, lic.key_id);
});

test('quota: X-Quota-* on results and on the refusal', { skip }, async () => {
  // LISTEND_TEST_QUOTA_KEY has 10 audio seconds a day; goforward is ~2.9 s.
  const c = new ListendClient({ licenseKey: env.LISTEND_TEST_QUOTA_KEY, maxRetries: 0 });
  const lic = await c.license();
  assert.ok(lic.quota instanceof Quota);
  assert.equal(lic.quota.limit, 10);
  assert.equal(lic.quota.remaining, 10);
  assert.ok(lic.quota.reset > 0 && lic.quota.reset <= 86400);
  assert.equal(JSON.stringify(lic), JSON.stringify(lic.raw)); // not part of the server's JSON
  let left = 10;
  for (let i = 0; i < 3; i++) {
    const r = await c.transcribeUrl(env.LISTEND_TEST_AUDIO_URL);
    left -= r.duration;
    assert.equal(r.quota.limit, 10);
    assert.ok(Math.abs(r.quota.remaining - left) < 0.01, `${r.quota.remaining} vs ${left}`);
  }
  const t = await c.transcribeUrl(env.LISTEND_TEST_AUDIO_URL, { format: 'text' });
  assert.equal(t.quota.remaining, 0);
  assert.equal(t.quota.usedRatio, 1);
  await assert.rejects(c.transcribeUrl(env.LISTEND_TEST_AUDIO_URL),
    (e) => e instanceof QuotaExceededError && e.quota.remaining === 0 && e.quota.limit === 10 && e.quota.reset > 0);
  await assert.rejects(new ListendClient({ licenseKey: 'not-a-key', maxRetries: 0 }).license(),
    (e) => e instanceof InvalidLicenseError && e.quota === null);
});

test('seed example shape: new SmallestClient({apiUrl, licenseKey}).transcribeUrl(url)', { skip }, async () => {
  const c = new SmallestClient({ apiUrl: env.LISTEND_API_URL, licenseKey: env.LICENSE_KEY });
  const r = await c.transcribeUrl(env.LISTEND_TEST_AUDIO_URL, { timestamps: true });
  assert.match(r.text, /forward/);
  assert.match(r.request_id, /^req_/);
  assert.ok(r.duration > 2 && r.duration < 3.5);
  assert.ok(r.words.length > 0 && r.words[0].end >= r.words[0].start);
  assert.equal(r.raw.text, r.text);
});

test('transcribeFile: path, Buffer, Blob, stream, raw PCM with options', { skip }, async () => {
  const c = client();
  const plain = await c.transcribeFile(env.LISTEND_TEST_AUDIO_FILE);
  assert.match(plain.text, /forward/);
  // no timestamps: `words` is there to read, but JSON.stringify gives the server's JSON
  assert.deepEqual(plain.words, []);
  assert.equal(JSON.stringify(plain), JSON.stringify(plain.raw));
  const buf = readFileSync(env.LISTEND_TEST_AUDIO_FILE);
  assert.match((await c.transcribeFile(buf, { filename: 'speech.wav' })).text, /forward/);
  assert.match((await c.transcribeFile(new Blob([buf], { type: 'audio/wav' }))).text, /forward/);
  assert.match((await c.transcribeFile(createReadStream(env.LISTEND_TEST_AUDIO_FILE))).text, /forward/);
  const raw = await c.transcribeFile(env.LISTEND_TEST_RAW_FILE, { encoding: 'linear16', sampleRate: 16000 });
  assert.match(raw.text, /forward/);
  // a headerless name (goforward.raw) says its encoding, as for `listend transcribe`
  assert.match((await c.transcribeFile(env.LISTEND_TEST_RAW_FILE)).text, /forward/);
  assert.match((await c.transcribeFile(readFileSync(env.LISTEND_TEST_RAW_FILE), { filename: 'go.raw' })).text, /forward/);
});

test('text formats', { skip }, async () => {
  const srt = await client().transcribeUrl(env.LISTEND_TEST_AUDIO_URL, { format: 'srt' });
  assert.ok(srt instanceof TextResult);
  assert.match(srt.text, /-->/);
});

test('jobs: submit, wait, list, not found', { skip }, async () => {
  const c = client();
  const job = await c.submit({ url: env.LISTEND_TEST_AUDIO_URL, callbackUrl: env.LISTEND_TEST_CALLBACK_URL });
  assert.match(job.job_id, /^job_/);
  const done = await c.wait(job.job_id, { timeoutMs: 60000, pollIntervalMs: 200 });
  assert.equal(done.status, 'completed');
  assert.match(done.result.text, /forward/);
  assert.ok((await c.jobs()).some((j) => j.job_id === job.job_id));
  const fileJob = await c.submit({ file: env.LISTEND_TEST_AUDIO_FILE, callbackUrl: env.LISTEND_TEST_CALLBACK_URL });
  assert.match((await c.wait(fileJob, { timeoutMs: 60000, pollIntervalMs: 200 })).result.text, /forward/);
  await assert.rejects(c.job('job_doesnotexist'), (e) => e instanceof NotFoundError && e.status === 404 && e.code === 'NOT_FOUND');
});

test('errors from real responses', { skip }, async () => {
  const url = env.LISTEND_API_URL;
  for (const key of ['not-a-key', env.LISTEND_TEST_REVOKED_KEY]) {
    await assert.rejects(new ListendClient({ apiUrl: url, licenseKey: key }).license(),
      (e) => e instanceof InvalidLicenseError && e instanceof ListendError && e.status === 401 && e.code === 'INVALID_LICENSE');
  }
  await assert.rejects(new ListendClient({ apiUrl: url, licenseKey: env.LISTEND_TEST_EXPIRED_KEY }).transcribeUrl(env.LISTEND_TEST_AUDIO_URL),
    (e) => e instanceof LicenseExpiredError && e.status === 403 && e.expiresAt.startsWith('2020-01-01'));
  await assert.rejects(client().transcribeUrl(env.LISTEND_TEST_AUDIO_URL.replace('speech.wav', 'missing.wav')),
    (e) => e instanceof BadRequestError && e.code === 'URL_FETCH_FAILED');
  await assert.rejects(new ListendClient({ apiUrl: 'http://127.0.0.1:9', licenseKey: 'x', maxRetries: 1 }).license(),
    (e) => e instanceof APIConnectionError);
});

test('a timeout is an APITimeoutError (a ListendError), never retried, whatever the body', async () => {
  // A server that answers 200 and then trickles its body a byte at a time:
  // each read succeeds, only a deadline on the whole request stops it.
  let requests = 0;
  const sockets = new Set();
  const srv = createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    sock.once('data', () => {
      requests++; // not connections: undici may open one it does not use
      sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n');
      const t = setInterval(() => sock.write(' '), 100);
      sock.on('close', () => clearInterval(t));
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const c = new ListendClient({ apiUrl: `http://127.0.0.1:${srv.address().port}`, licenseKey: 'k', timeoutMs: 800, maxRetries: 2 });
  const audio = readFileSync(join(here, '..', 'package.json')); // any bytes: the answer never completes
  const pathFile = join(here, '..', 'package.json');
  try {
    for (const [name, call] of [
      ['license', () => c.license()],
      ['transcribeUrl', () => c.transcribeUrl('http://example.com/a.wav')],
      ['Buffer upload', () => c.transcribeFile(audio, { filename: 'a.wav' })],
      ['path upload', () => c.transcribeFile(pathFile)],
    ]) {
      const before = requests;
      const t0 = Date.now();
      await assert.rejects(call(), (e) => e instanceof APITimeoutError && e instanceof ListendError, name);
      assert.equal(requests - before, 1, `${name} was retried after a timeout`);
      assert.ok(Date.now() - t0 < 3000, `${name} took ${Date.now() - t0} ms`);
    }
  } finally {
    for (const s of sockets) s.destroy();
    srv.close();
  }
});

test('Retry-After as an HTTP date gives retryAfter in seconds', async () => {
  const srv = http.createServer((req, res) => {
    res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': new Date(Date.now() + 90000).toUTCString() });
    res.end('{"error":"busy","code":"SERVICE_UNAVAILABLE"}');
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const c = new ListendClient({ apiUrl: `http://127.0.0.1:${srv.address().port}`, licenseKey: 'k', maxRetries: 0 });
    await assert.rejects(c.license(), (e) => e instanceof ServiceUnavailableError && e.retryAfter > 85 && e.retryAfter <= 90);
  } finally {
    srv.close();
  }
});

test('a large upload is streamed, not loaded', { skip }, () => {
  // 300 MB sparse file in a child process; the server refuses it (default
  // 100 MB limit), and the child's peak RSS shows it never held the file
  // (Node's own baseline plus garbage is ~50-90 MB).
  const big = join(env.LISTEND_TEST_TMP, 'big.wav');
  const fd = openSync(big, 'w');
  writeSync(fd, 'RIFF');
  ftruncateSync(fd, 300 * 1024 * 1024);
  closeSync(fd);
  const child = `
    import { ListendClient } from '@listend/client';
    const c = new ListendClient({ maxRetries: 0 });
    let out;
    try { out = 'ok ' + (await c.transcribeFile(${JSON.stringify(big)})).text; }
    catch (e) { out = 'error ' + e.status + ' ' + e.code; }
    console.log(process.resourceUsage().maxRSS, out);`;
  const p = spawnSync(process.execPath, ['--input-type=module', '-e', child], { cwd: here, env, encoding: 'utf8', timeout: 120000 });
  assert.equal(p.status, 0, p.stderr);
  const [rss, ...rest] = p.stdout.trim().split(' ');
  assert.equal(rest.join(' '), 'error 422 FILE_TOO_LARGE');
  assert.ok(Number(rss) < 200 * 1024, `peak RSS ${rss} kB for a 300 MB upload`);
});

test('an upload of unknown size past the server limit from a bad key gets the 401', { skip }, async () => {
  // The server stops reading an anonymous chunked upload past --max-body-mb
  // (100 MB here) and closes; Expect: 100-continue lets the 401 through first.
  async function* zeros() {
    for (let i = 0; i < 120; i++) yield Buffer.alloc(1 << 20);
  }
  const c = new ListendClient({ licenseKey: 'not-a-key', maxRetries: 0 });
  await assert.rejects(c.transcribeFile(zeros(), { filename: 'pipe.raw' }),
    (e) => e instanceof InvalidLicenseError && e.code === 'INVALID_LICENSE');
});

test('streaming: interim and final results, async iterable source with finalize', { skip }, async () => {
  const c = client();
  const msgs = [];
  for await (const m of c.stream(env.LISTEND_TEST_AUDIO_FILE, { interimResults: true, chunkSize: 3200 })) msgs.push(m);
  const tr = msgs.filter((m) => m.type === 'transcription');
  assert.ok(tr.some((m) => !m.is_final), JSON.stringify(msgs));
  const finals = tr.filter((m) => m.is_final);
  assert.ok(finals.at(-1).is_last);
  assert.match(finals.map((m) => m.transcript).join(' '), /forward/);
  assert.equal(tr[0].quota.limit, 100 * 3600); // from the 101 handshake

  async function* chunks() {
    for await (const b of createReadStream(env.LISTEND_TEST_RAW_FILE, { highWaterMark: 4096 })) yield b;
    yield { type: 'finalize' };
  }
  const out = [];
  for await (const m of c.stream(chunks(), { encoding: 'linear16', sampleRate: 16000 })) out.push(m);
  assert.match(out.filter((m) => m.is_final).map((m) => m.transcript).join(' '), /forward/);
  assert.ok(out.at(-1).isLast);

  const bad = new ListendClient({ licenseKey: env.LISTEND_TEST_REVOKED_KEY }).stream(Buffer.alloc(3200));
  await assert.rejects(async () => { for await (const _ of bad) { /* none */ } }, (e) => e instanceof InvalidLicenseError);
});

test('streaming: leaving the loop returns at once while the audio source is silent', { skip }, async () => {
  // A microphone-like source: one second of speech, then silence until released.
  let wake;
  const silent = new Promise((r) => { wake = r; });
  const timer = setTimeout(() => wake(), 15000); // unfixed, the loop waited this long
  let finished = false;
  async function* mic() {
    try {
      yield readFileSync(env.LISTEND_TEST_RAW_FILE).subarray(0, 32000);
      await silent;
      yield Buffer.alloc(3200);
    } finally {
      finished = true;
    }
  }
  const t0 = Date.now();
  for await (const m of client().stream(mic(), { encoding: 'linear16', sampleRate: 16000, interimResults: true })) {
    assert.equal(m.type, 'transcription');
    break;
  }
  const elapsed = Date.now() - t0;
  clearTimeout(timer);
  wake();
  assert.ok(elapsed < 10000, `leaving the loop took ${elapsed} ms`);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(finished, 'the source was told to stop (return())');
});

test('examples run', { skip }, () => {
  const run = (name, ...args) => {
    const p = spawnSync(process.execPath, [join(here, '..', 'examples', name), ...args], { env, encoding: 'utf8', timeout: 120000 });
    assert.equal(p.status, 0, p.stdout + p.stderr);
    return p.stdout;
  };
  assert.match(run('transcribe_url.mjs', env.LISTEND_TEST_AUDIO_URL), /forward/);
  assert.match(run('transcribe_file.mjs', env.LISTEND_TEST_AUDIO_FILE), /forward.*confidence/s);
  assert.match(run('async_job.mjs', env.LISTEND_TEST_AUDIO_URL, env.LISTEND_TEST_CALLBACK_URL), /forward/);
  assert.match(run('stream_file.mjs', env.LISTEND_TEST_AUDIO_FILE), /final.*forward/s);
});

test('rate limit: RateLimitError with retry_after, then success after the SDK waits', { skip }, async () => {
  const key = env.LISTEND_TEST_RPM_KEY;
  const c0 = new ListendClient({ licenseKey: key, maxRetries: 0 });
  assert.match((await c0.transcribeUrl(env.LISTEND_TEST_AUDIO_URL)).text, /forward/);
  let retryAfter = null;
  await assert.rejects(c0.transcribeUrl(env.LISTEND_TEST_AUDIO_URL), (e) => {
    retryAfter = e.retryAfter;
    return e instanceof RateLimitError && e.status === 429 && e.code === 'RATE_LIMIT_EXCEEDED' && e.retryAfter > 0 && e.retryAfter <= 60;
  });
  const t0 = Date.now();
  const r = await new ListendClient({ licenseKey: key, maxRetries: 1 }).transcribeUrl(env.LISTEND_TEST_AUDIO_URL);
  assert.match(r.text, /forward/);
  assert.ok(Date.now() - t0 >= (retryAfter - 2) * 1000);
});
