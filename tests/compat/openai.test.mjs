// OpenAI's official Node SDK (openai, pinned in package-lock.json) against a
// real listend, changed only in its base URL and key. Run by
// tests/integration/test_compat.py (COMPAT_* environment variables).
import assert from 'node:assert/strict';
import { createReadStream, readFileSync } from 'node:fs';
import { test } from 'node:test';

import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';

const env = process.env;
const skip = env.COMPAT_URL ? false : 'needs a server: run tests/integration/test_compat.py';
// The one line an OpenAI user changes (docs/compat.md); maxRetries 0 so errors surface at once.
const client = (apiKey = env.COMPAT_KEY) => new OpenAI({ apiKey, baseURL: `${env.COMPAT_URL}/v1`, maxRetries: 0 });
const file = () => createReadStream(env.COMPAT_AUDIO_FILE);

test('every response_format', { skip }, async () => {
  const c = client();
  const json = await c.audio.transcriptions.create({ file: file(), model: 'whisper-1' });
  assert.equal(json.text, 'Go forward ten meters.');
  const text = await c.audio.transcriptions.create({ file: file(), model: 'whisper-1', response_format: 'text' });
  assert.equal(text.trim(), 'Go forward ten meters.');
  const srt = await c.audio.transcriptions.create({ file: file(), model: 'whisper-1', response_format: 'srt' });
  assert.match(srt, /^1\r?\n00:00:00,\d{3} --> 00:00:0\d,\d{3}\r?\nGo forward ten meters\./);
  const vtt = await c.audio.transcriptions.create({ file: file(), model: 'whisper-1', response_format: 'vtt' });
  assert.match(vtt, /^WEBVTT/);
  assert.match(vtt, /Go forward ten meters\./);
  const v = await c.audio.transcriptions.create({
    file: file(), model: 'gpt-4o-transcribe', response_format: 'verbose_json', timestamp_granularities: ['word', 'segment'],
    language: 'en', prompt: 'ignored', temperature: 0,
  });
  assert.equal(v.task, 'transcribe');
  assert.equal(v.language, 'english');
  assert.ok(v.duration > 2.5 && v.duration < 3.1);
  assert.equal(v.segments[0].text, 'Go forward ten meters.');
  assert.deepEqual(v.words.map((w) => w.word), ['Go', 'forward', 'ten', 'meters']);
});

test('stream: true: transcript.text.delta events as segments finish, then transcript.text.done', { skip }, async () => {
  const stream = await client().audio.transcriptions.create({
    file: createReadStream(env.COMPAT_LONG_FILE), model: 'gpt-4o-mini-transcribe', stream: true,
  });
  const events = [];
  for await (const ev of stream) events.push(ev);
  const deltas = events.filter((e) => e.type === 'transcript.text.delta');
  const done = events.at(-1);
  assert.equal(done.type, 'transcript.text.done');
  assert.equal(events.filter((e) => e.type === 'transcript.text.done').length, 1);
  // A long file comes in pieces, in order, and the pieces add up to the final text.
  assert.ok(deltas.length >= 3, JSON.stringify(events));
  assert.equal(deltas.map((d) => d.delta).join(''), done.text);
  assert.ok(done.text.split(' ').length > 20);
  assert.ok(done.usage.seconds > 20);
});

test('stream: true on a short file', { skip }, async () => {
  const stream = await client().audio.transcriptions.create({ file: file(), model: 'whisper-1', stream: true });
  const events = [];
  for await (const ev of stream) events.push(ev);
  assert.equal(events.at(-1).text, 'Go forward ten meters.');
  assert.equal(events.filter((e) => e.type === 'transcript.text.delta').map((d) => d.delta).join(''), 'Go forward ten meters.');
});

test('gpt-4o-transcribe-diarize: diarized_json speaker segments, also streamed', { skip }, async () => {
  // a real meeting: the LibriVox reader, the sphinx4 digits speaker, the reader again
  const params = {
    model: 'gpt-4o-transcribe-diarize', response_format: 'diarized_json', chunking_strategy: 'auto',
  };
  const d = await client().audio.transcriptions.create({ file: createReadStream(env.COMPAT_MEETING_FILE), ...params });
  assert.equal(d.task, 'transcribe');
  assert.ok(d.duration > 15 && d.usage.seconds === d.duration);
  assert.ok(d.segments.every((s) => s.type === 'transcript.text.segment' && s.end > s.start), JSON.stringify(d));
  assert.deepEqual([...new Set(d.segments.map((s) => s.speaker))].sort(), ['A', 'B']);
  const digits = d.segments.filter((s) => /\b(zero|nine|eight)\b/i.test(s.text));
  assert.ok(digits.length && digits.every((s) => s.speaker === 'B'), JSON.stringify(d.segments));
  const stream = await client().audio.transcriptions.create({
    file: createReadStream(env.COMPAT_MEETING_FILE), ...params, stream: true,
  });
  const events = [];
  for await (const ev of stream) events.push(ev);
  assert.equal(events.at(-1).type, 'transcript.text.done');
  assert.equal(events.at(-1).text, d.text);
  assert.deepEqual(events.filter((e) => e.type === 'transcript.text.segment').map((s) => [s.speaker, s.text]),
    d.segments.map((s) => [s.speaker, s.text]));
});

test('models.list and models.retrieve name what `model` accepts', { skip }, async () => {
  const ids = [];
  for await (const m of client().models.list()) ids.push(m.id);
  assert.ok(ids.includes('whisper-1') && ids.includes('gpt-4o-transcribe'), ids.join());
  const m = await client().models.retrieve('whisper-1');
  assert.equal(m.id, 'whisper-1');
  assert.equal(m.object, 'model');
  await assert.rejects(client().models.retrieve('dall-e-3'), (e) => {
    assert.ok(e instanceof OpenAI.NotFoundError);
    assert.equal(e.code, 'model_not_found');
    return true;
  });
});

test('translations: a clear 400 in OpenAI\'s envelope', { skip }, async () => {
  await assert.rejects(client().audio.translations.create({ file: file(), model: 'whisper-1' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.status, 400);
    assert.equal(e.code, 'translation_not_supported');
    assert.equal(e.type, 'invalid_request_error');
    assert.match(e.message, /^400 Translation is not supported/);
    return true;
  });
});

test('typed errors: bad key, expired key, bad parameter', { skip }, async () => {
  await assert.rejects(client('not-a-key').audio.transcriptions.create({ file: file(), model: 'whisper-1' }), (e) => {
    assert.ok(e instanceof OpenAI.AuthenticationError);
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    assert.equal(e.message, '401 Invalid license key');
    assert.match(e.requestID, /^req_/);
    return true;
  });
  await assert.rejects(client(env.COMPAT_EXPIRED_KEY).audio.transcriptions.create({ file: file(), model: 'whisper-1' }), (e) => {
    assert.ok(e instanceof OpenAI.PermissionDeniedError);
    assert.equal(e.status, 403);
    assert.equal(e.code, 'license_expired');
    assert.match(e.error.expires_at, /^2020-01-01/);
    return true;
  });
  await assert.rejects(client().audio.transcriptions.create({ file: file(), model: 'whisper-1', response_format: 'mp3' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.code, 'invalid_parameter');
    assert.equal(e.param, 'response_format');
    return true;
  });
});

test('typed errors: 429 with the key\'s rate used up', { skip }, async () => {
  const c = client(env.COMPAT_OA_RPM_KEY);
  await c.audio.transcriptions.create({ file: file(), model: 'whisper-1' });
  await assert.rejects(c.audio.transcriptions.create({ file: file(), model: 'whisper-1' }), (e) => {
    assert.ok(e instanceof OpenAI.RateLimitError);
    assert.equal(e.status, 429);
    assert.equal(e.code, 'rate_limit_exceeded');
    assert.ok(e.error.retry_after > 0);
    return true;
  });
});

// The Realtime client always dials wss://, so this one runs against the TLS server (its certificate trusted
// through NODE_EXTRA_CA_CERTS).
// A realtime session on the TLS server (the SDK dials only wss://): the socket, every event type seen, and a
// promise of the first completed transcription (rejected on an error event).
async function openRealtime(model) {
  const c = new OpenAI({ apiKey: env.COMPAT_TLS_KEY, baseURL: `${env.COMPAT_TLS_URL}/v1`, maxRetries: 0 });
  const rt = new OpenAIRealtimeWS({ model }, c);
  const seen = [];
  rt.on('event', (e) => seen.push(e.type));
  const completed = new Promise((resolve, reject) => {
    rt.on('conversation.item.input_audio_transcription.completed', resolve);
    rt.on('error', reject);
  });
  await new Promise((resolve, reject) => { rt.socket.once('open', resolve); rt.socket.once('error', reject); });
  return { rt, seen, completed };
}

test('realtime transcription session through OpenAIRealtimeWS', { skip: env.COMPAT_TLS_URL ? false : 'needs a TLS server' }, async () => {
  const { rt, seen, completed } = await openRealtime('gpt-4o-transcribe');
  try {
    rt.send({
      type: 'session.update',
      session: {
        type: 'transcription',
        audio: { input: { format: { type: 'audio/pcm', rate: 24000 }, transcription: { model: 'gpt-4o-transcribe', language: 'en' },
                          turn_detection: { type: 'server_vad', silence_duration_ms: 500 } } },
      },
    });
    const pcm = Buffer.concat([readFileSync(env.COMPAT_PCM24_FILE), Buffer.alloc(48000)]); // + 1 s of silence
    for (let i = 0; i < pcm.length; i += 4800) {
      rt.send({ type: 'input_audio_buffer.append', audio: pcm.subarray(i, i + 4800).toString('base64') });
    }
    const done = await completed;
    assert.equal(done.transcript, 'Go forward ten meters.');
    assert.equal(done.usage.type, 'duration');
    for (const t of ['session.created', 'session.updated', 'input_audio_buffer.speech_started', 'input_audio_buffer.committed',
      'conversation.item.input_audio_transcription.delta']) {
      assert.ok(seen.includes(t), `${t} in ${seen}`);
    }
  } finally {
    rt.close();
  }
});

test('push-to-talk realtime session (no turn detection): clear cancels, commit ends the item', { skip: env.COMPAT_TLS_URL ? false : 'needs a TLS server' }, async () => {
  const { rt, seen, completed } = await openRealtime('gpt-realtime-whisper');
  try {
    rt.send({ type: 'session.update', session: { type: 'transcription', audio: { input: { turn_detection: null } } } });
    const pcm = readFileSync(env.COMPAT_PCM24_FILE);
    const append = () => {
      for (let i = 0; i < pcm.length; i += 4800) {
        rt.send({ type: 'input_audio_buffer.append', audio: pcm.subarray(i, i + 4800).toString('base64') });
      }
    };
    append(); // the user lets go of the button too early: cancelled
    rt.send({ type: 'input_audio_buffer.clear' });
    append();
    rt.send({ type: 'input_audio_buffer.commit' });
    const done = await completed;
    assert.equal(done.transcript, 'Go forward ten meters.'); // once: the cleared audio is not in it
    assert.ok(seen.includes('input_audio_buffer.cleared'), `cleared in ${seen}`);
    assert.ok(!seen.some((t) => t.startsWith('input_audio_buffer.speech_')), `no VAD events in ${seen}`);
  } finally {
    rt.close();
  }
});
