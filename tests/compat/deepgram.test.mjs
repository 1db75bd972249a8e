// Deepgram's official JavaScript SDK (@deepgram/sdk, pinned in package-lock.json)
// against a real listend, changed only in its base URL and key. Run by
// tests/integration/test_compat.py, which starts the server and passes
// it in COMPAT_* environment variables.
import assert from 'node:assert/strict';
import { createReadStream, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { test } from 'node:test';

import { DeepgramClient, DeepgramError, Deepgram } from '@deepgram/sdk';

const env = process.env;
const skip = env.COMPAT_URL ? false : 'needs a server: run tests/integration/test_compat.py';
// The one line a Deepgram user changes (docs/compat.md).
const client = (apiKey = env.COMPAT_KEY, extra = {}) =>
  new DeepgramClient({ apiKey, baseUrl: `${env.COMPAT_URL}/deepgram`, ...extra });

const alt = (r) => r.results.channels[0].alternatives[0];

test('prerecorded from a file: transcript, words with punctuated_word, utterances, paragraphs, metadata', { skip }, async () => {
  const r = await client().listen.v1.media.transcribeFile(createReadStream(env.COMPAT_AUDIO_FILE), {
    model: 'nova-3', smart_format: true, utterances: true, language: 'en-US',
  });
  assert.match(alt(r).transcript, /^Go forward ten meters\.$/i);
  assert.ok(alt(r).confidence > 0 && alt(r).confidence <= 1);
  const words = alt(r).words;
  assert.deepEqual(words.map((w) => w.word), ['go', 'forward', 'ten', 'meters']);
  assert.equal(words[0].punctuated_word, 'Go');
  assert.equal(words.at(-1).punctuated_word, 'meters.');
  assert.ok(words.every((w) => w.end >= w.start && w.confidence > 0));
  assert.equal(r.results.utterances.length, 1);
  assert.equal(r.results.utterances[0].transcript, 'Go forward ten meters.');
  assert.equal(r.results.utterances[0].words.length, 4);
  assert.match(alt(r).paragraphs.transcript, /Go forward ten meters\./);
  assert.equal(alt(r).paragraphs.paragraphs[0].sentences[0].text, 'Go forward ten meters.');
  assert.match(r.metadata.request_id, /^req_/);
  assert.ok(r.metadata.duration > 2.5 && r.metadata.duration < 3.1);
  assert.equal(r.metadata.channels, 1);
  assert.match(r.metadata.sha256, /^[0-9a-f]{64}$/);
  assert.ok(r.metadata.model_info[r.metadata.models[0]].name);
});

test('prerecorded from a URL; Deepgram defaults: no punctuation unless asked', { skip }, async () => {
  const plain = await client().listen.v1.media.transcribeUrl({ url: env.COMPAT_AUDIO_URL });
  assert.equal(alt(plain).transcript, 'go forward ten meters');
  assert.equal(plain.results.utterances, undefined);
  const punct = await client().listen.v1.media.transcribeUrl({ url: env.COMPAT_AUDIO_URL, punctuate: true });
  assert.equal(alt(punct).transcript, 'Go forward ten meters.');
});

test('callback: request_id at once, then Deepgram\'s own body at the callback URL (callback_method PUT)', { skip }, async () => {
  let resolveHit;
  const hit = new Promise((r) => { resolveHit = r; });
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      res.end('ok');
      resolveHit({ method: req.method, token: req.headers['dg-token'], body: JSON.parse(body) });
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  try {
    const accepted = await client().listen.v1.media.transcribeUrl({
      url: env.COMPAT_AUDIO_URL, punctuate: true, utterances: true,
      callback: `http://127.0.0.1:${receiver.address().port}/dg`, callback_method: 'PUT',
    });
    assert.match(accepted.request_id, /^req_/);
    const { method, token, body } = await hit;
    assert.equal(method, 'PUT');
    assert.match(token, /^k_/);
    assert.equal(body.metadata.request_id, accepted.request_id);
    assert.equal(alt(body).transcript, 'Go forward ten meters.');
    assert.equal(body.results.utterances[0].transcript, 'Go forward ten meters.');
  } finally {
    receiver.close();
  }
});

test('prerecorded raw linear16 with encoding and sample_rate', { skip }, async () => {
  const r = await client().listen.v1.media.transcribeFile(readFileSync(env.COMPAT_RAW_FILE), {
    encoding: 'linear16', sample_rate: 16000,
  });
  assert.match(alt(r).transcript, /forward/);
});

test('prerecorded raw 8 kHz mu-law (a phone recording) with encoding and sample_rate', { skip }, async () => {
  const r = await client().listen.v1.media.transcribeFile(readFileSync(env.COMPAT_MULAW_FILE), {
    encoding: 'mulaw', sample_rate: 8000,
  });
  assert.match(alt(r).transcript, /forward ten/);
  assert.match(r.metadata.model_info[r.metadata.models[0]].name, /telephony/);
  assert.ok(r.metadata.duration > 2.7 && r.metadata.duration < 2.9);
});

test('live: interim and final Results, SpeechStarted, UtteranceEnd, CloseStream then Metadata', { skip }, async () => {
  const conn = await client().listen.v1.connect({
    model: 'nova-3', language: 'en-US', encoding: 'linear16', sample_rate: 16000, channels: 1,
    interim_results: 'true', punctuate: 'true', vad_events: 'true', utterance_end_ms: '1000',
    reconnectAttempts: 0,
  });
  const msgs = [];
  let done;
  const metadata = new Promise((resolve) => { done = resolve; });
  conn.on('message', (m) => {
    msgs.push(m);
    if (m.type === 'Metadata') done(m);
  });
  const closed = new Promise((resolve) => conn.on('close', resolve));
  conn.connect();
  await conn.waitForOpen();
  const pcm = readFileSync(env.COMPAT_RAW_FILE);
  for (let i = 0; i < pcm.length; i += 3200) conn.sendMedia(pcm.subarray(i, i + 3200));
  conn.sendMedia(Buffer.alloc(2 * 16000 * 2)); // 2 s of silence: the utterance ends
  conn.sendKeepAlive({ type: 'KeepAlive' });
  conn.sendCloseStream({ type: 'CloseStream' });
  const meta = await metadata;
  const ev = await closed;
  assert.equal(ev.code, 1000);
  const results = msgs.filter((m) => m.type === 'Results');
  const interim = results.filter((m) => !m.is_final);
  const finals = results.filter((m) => m.is_final);
  assert.ok(interim.length > 0, JSON.stringify(msgs));
  assert.ok(interim.every((m) => m.speech_final === false));
  const spoken = finals.find((m) => m.channel.alternatives[0].transcript);
  assert.equal(spoken.channel.alternatives[0].transcript, 'Go forward ten meters.');
  assert.equal(spoken.speech_final, true);
  assert.equal(spoken.channel.alternatives[0].words.at(-1).punctuated_word, 'meters.');
  assert.ok(spoken.start > 0 && spoken.duration > 1);
  assert.deepEqual(spoken.channel_index, [0, 1]);
  assert.ok(msgs.findIndex((m) => m.type === 'SpeechStarted') < msgs.indexOf(interim[0]));
  const ue = msgs.find((m) => m.type === 'UtteranceEnd');
  assert.ok(ue && Math.abs(ue.last_word_end - spoken.channel.alternatives[0].words.at(-1).end) < 1e-6);
  assert.equal(msgs.at(-1), meta);
  assert.ok(meta.duration > 4.5 && meta.request_id === spoken.metadata.request_id);
});

test('live: Finalize answers with from_finalize', { skip }, async () => {
  const conn = await client().listen.v1.connect({ model: 'nova-3', encoding: 'linear16', sample_rate: 16000, reconnectAttempts: 0 });
  const msgs = [];
  let got;
  const finalized = new Promise((resolve) => { got = resolve; });
  conn.on('message', (m) => {
    msgs.push(m);
    if (m.type === 'Results' && m.from_finalize) got(m);
  });
  const closed = new Promise((resolve) => conn.on('close', resolve));
  conn.connect();
  await conn.waitForOpen();
  const pcm = readFileSync(env.COMPAT_RAW_FILE);
  conn.sendMedia(pcm.subarray(0, 16000 * 2 * 2)); // "go forward ..." without the trailing silence
  conn.sendFinalize({ type: 'Finalize' });
  const m = await finalized;
  assert.equal(m.is_final, true);
  assert.equal(m.speech_final, false);
  assert.match(m.channel.alternatives[0].transcript, /forward/);
  assert.ok(msgs.every((x) => x.type !== 'Results' || x.is_final)); // interim_results is off by default
  conn.sendCloseStream({ type: 'CloseStream' });
  await closed;
});

// maxRetries: 0 so each error surfaces at once (the SDK retries 429 and 5xx by default).
test('typed errors: bad key 401, expired key 403, 400 is BadRequestError; the body is Deepgram\'s', { skip }, async () => {
  const file = () => readFileSync(env.COMPAT_AUDIO_FILE);
  await assert.rejects(client('not-a-key').listen.v1.media.transcribeFile(file(), {}), (e) => {
    assert.ok(e instanceof DeepgramError);
    assert.equal(e.statusCode, 401);
    assert.equal(e.body.err_code, 'INVALID_AUTH');
    assert.equal(e.body.err_msg, 'Invalid license key');
    assert.match(e.body.request_id, /^req_/);
    return true;
  });
  await assert.rejects(client(env.COMPAT_EXPIRED_KEY).listen.v1.media.transcribeFile(file(), {}), (e) => {
    assert.ok(e instanceof DeepgramError);
    assert.equal(e.statusCode, 403);
    assert.equal(e.body.err_code, 'LICENSE_EXPIRED');
    assert.match(e.body.expires_at, /^2020-01-01/);
    return true;
  });
  await assert.rejects(client().listen.v1.media.transcribeFile(file(), { language: 'xx' }), (e) => {
    assert.ok(e instanceof Deepgram.BadRequestError);
    assert.equal(e.statusCode, 400);
    assert.equal(e.body.err_code, 'INVALID_QUERY_PARAMETER');
    assert.match(e.body.err_msg, /xx/);
    return true;
  });
});

test('typed errors: 429 with the key\'s rate used up', { skip }, async () => {
  const c = client(env.COMPAT_DG_RPM_KEY, { maxRetries: 0 });
  await c.listen.v1.media.transcribeUrl({ url: env.COMPAT_AUDIO_URL });
  await assert.rejects(c.listen.v1.media.transcribeUrl({ url: env.COMPAT_AUDIO_URL }), (e) => {
    assert.ok(e instanceof DeepgramError);
    assert.equal(e.statusCode, 429);
    assert.equal(e.body.err_code, 'TOO_MANY_REQUESTS');
    assert.ok(e.body.retry_after > 0);
    assert.ok(Number(e.rawResponse.headers.get('retry-after')) > 0);
    return true;
  });
});

test('live with a bad key: the upgrade is refused with 401', { skip }, async () => {
  const conn = await client('not-a-key').listen.v1.connect({ model: 'nova-3', reconnectAttempts: 0 });
  const failed = new Promise((resolve) => conn.on('error', resolve));
  conn.connect();
  const err = await failed;
  assert.match(String(err.message), /401/);
  conn.close();
});

test('Flux (listen.v2): Connected, a turn from StartOfTurn through Updates to EndOfTurn, CloseStream', { skip }, async () => {
  const conn = await client().listen.v2.connect({
    model: 'flux-general-en', encoding: 'linear16', sample_rate: 16000, eot_timeout_ms: 3000, reconnectAttempts: 0,
  });
  const msgs = [];
  let ended;
  const endOfTurn = new Promise((resolve) => { ended = resolve; });
  conn.on('message', (m) => {
    msgs.push(m);
    if (m.type === 'TurnInfo' && m.event === 'EndOfTurn') ended(m);
  });
  const closed = new Promise((resolve) => conn.on('close', resolve));
  conn.connect();
  await conn.waitForOpen();
  const pcm = readFileSync(env.COMPAT_RAW_FILE);
  for (let i = 0; i < pcm.length; i += 2560) conn.sendMedia(pcm.subarray(i, i + 2560)); // 80 ms chunks, as Flux asks
  conn.sendMedia(Buffer.alloc(16000 * 2)); // 1 s of silence: the turn ends
  const end = await endOfTurn;
  conn.sendCloseStream({ type: 'CloseStream' });
  const ev = await closed;
  assert.equal(ev.code, 1000);
  assert.equal(msgs[0].type, 'Connected');
  assert.deepEqual(msgs.map((m) => m.sequence_id), msgs.map((_, i) => i));
  const turn = msgs.filter((m) => m.type === 'TurnInfo');
  assert.equal(turn[0].event, 'StartOfTurn');
  assert.ok(turn.some((m) => m.event === 'Update' && m.transcript), JSON.stringify(turn));
  assert.equal(end.transcript, 'Go forward ten meters.');
  assert.equal(end.trigger, 'model');
  assert.equal(end.turn_index, 0);
  assert.deepEqual(end.words.map((w) => w.word), ['Go', 'forward', 'ten', 'meters.']);
  assert.ok(end.words.every((w) => w.end > w.start && w.confidence > 0));
  assert.ok(end.audio_window_start > 0.2 && end.audio_window_end > end.words.at(-1).end);
  assert.ok(end.audio_window_start <= end.words[0].start, 'the window holds its first word');
});

test('Flux (listen.v2) without its own turn ends: eot_threshold 1.0, sendForceEndTurn, sendConfigure', { skip }, async () => {
  const conn = await client().listen.v2.connect({
    model: 'flux-general-en', encoding: 'linear16', sample_rate: 16000, eot_threshold: 1.0, eot_timeout_ms: 30000,
    keyterm: ['forward'], reconnectAttempts: 0,
  });
  const msgs = [];
  const waiters = [];
  const next = (pred) => new Promise((resolve) => waiters.push({ pred, resolve }));
  conn.on('message', (m) => {
    msgs.push(m);
    for (const w of waiters.splice(0)) (w.pred(m) ? w.resolve(m) : waiters.push(w));
  });
  const closed = new Promise((resolve) => conn.on('close', resolve));
  conn.connect();
  await conn.waitForOpen();
  const pcm = readFileSync(env.COMPAT_RAW_FILE);
  const speak = () => {
    for (let i = 0; i < pcm.length; i += 2560) conn.sendMedia(pcm.subarray(i, i + 2560));
    conn.sendMedia(Buffer.alloc(16000 * 2 * 2)); // 2 s of silence: a turn at the default threshold would end
  };
  speak();
  const configured = next((m) => m.type === 'ConfigureSuccess');
  conn.sendConfigure({ type: 'Configure', thresholds: { eot_timeout_ms: 20000 } }); // after the audio: in order
  const ok = await configured;
  assert.deepEqual(ok.thresholds, { eot_threshold: 1, eot_timeout_ms: 20000 });
  assert.deepEqual(ok.keyterms, ['forward']);
  assert.ok(!msgs.some((m) => m.event === 'EndOfTurn'), 'no turn ended on the pause');
  const ended = next((m) => m.event === 'EndOfTurn');
  conn.sendForceEndTurn({ type: 'ForceEndTurn' });
  const end = await ended;
  assert.equal(end.trigger, 'manual');
  assert.equal(end.transcript, 'Go forward ten meters.');
  const refused = next((m) => m.type === 'ConfigureFailure');
  conn.sendConfigure({ type: 'Configure', thresholds: { eot_threshold: 0.1 } });
  await refused;
  conn.sendCloseStream({ type: 'CloseStream' });
  assert.equal((await closed).code, 1000);
  assert.deepEqual(msgs.map((m) => m.sequence_id), msgs.map((_, i) => i));
});
