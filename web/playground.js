// listend playground: upload a file or talk into the microphone and see the
// words. Plain browser JavaScript, no framework and no build step; it only uses
// the server's public API (docs/api.md). The license key stays in this tab
// (sessionStorage) and is sent in the Authorization header, or as the
// WebSocket subprotocol for the live stream, never in a URL.
'use strict';

const $ = (id) => document.getElementById(id);
const KEY_STORE = 'listend.licenseKey';

// ---- the key and its usage ------------------------------------------------

// The key as typed, without a pasted "Token "/"Bearer " prefix (copied from a curl line).
function key() { return $('key').value.trim().replace(/^(token|bearer)\s+/i, ''); }
// Characters a key cannot have (keys are ld1.<base64url>): they would make the browser refuse the
// request or the WebSocket itself before the server could say anything.
function keyProblem() {
  return /^[\x21-\x7e]+$/.test(key()) ? '' : 'That key has characters no license key has (spaces or non-ASCII); ' +
    'paste it again.';
}

function authHeaders() { return { Authorization: 'Token ' + key() }; }

// The server's JSON error envelope as one line: "License expired (LICENSE_EXPIRED)".
function errorText(body, status) {
  if (body && typeof body.error === 'string') return body.error + (body.code ? ' (' + body.code + ')' : '');
  return 'HTTP ' + status;
}

async function readBody(resp) {
  const text = await resp.text();
  try { return JSON.parse(text); } catch (e) { return { error: text || resp.statusText }; }
}

function fmtSeconds(s) {
  if (s >= 3600) return (s / 3600).toFixed(1) + ' h';
  if (s >= 60) return (s / 60).toFixed(1) + ' min';
  return s.toFixed(1) + ' s';
}

// The key's limits and usage on the usage line. Returns why audio would be refused (the server's
// error body, today's quota used up, or { unreachable: true } when the server cannot be reached), or null.
async function refreshUsage() {
  const el = $('usage');
  if (!key()) {
    el.textContent = 'Paste a license key to start.';
    el.className = 'usage';
    return null;
  }
  if (keyProblem()) {
    el.textContent = keyProblem();
    el.className = 'usage bad';
    return null;
  }
  try {
    const resp = await fetch('/v1/license', { headers: authHeaders(), cache: 'no-store' });
    const body = await readBody(resp);
    if (!resp.ok) {
      el.textContent = 'Key refused: ' + errorText(body, resp.status);
      el.className = 'usage bad';
      return body;
    }
    const l = body.limits || {}, u = body.usage || {};
    el.textContent = `${body.name || body.key_id} · expires ${body.expires_at ? body.expires_at.slice(0, 10) : 'never'} · ` +
      `${u.requests_remaining}/${l.requests_per_minute} requests left this minute · ` +
      `${l.concurrency} at once · audio today ${fmtSeconds(u.audio_seconds_today || 0)}, ` +
      `${fmtSeconds(u.audio_seconds_remaining || 0)} left`;
    el.className = 'usage';
    // a key whose day is used up is valid (200) but refused audio: say so where a refusal needs a reason
    if (u.audio_seconds_remaining !== undefined && u.audio_seconds_remaining <= 0) {
      el.className = 'usage bad';
      return { error: "Today's audio quota is used up", code: 'QUOTA_EXCEEDED' };
    }
    return null;
  } catch (e) {
    el.textContent = 'Cannot reach the server: ' + e.message;
    el.className = 'usage bad';
    return { error: el.textContent, unreachable: true };
  }
}

// ---- file transcription -----------------------------------------------------

let chosen = null;   // the File
let result = null;   // the last JSON response
let playerUrl = null;
let attempt = 0;     // the latest transcription asked for: an older answer arriving later is dropped
let running = null;  // the AbortController of the upload in flight: a server whose client went away
                     // stops transcribing and charges nothing, so an unwanted upload is aborted, not left

function choose(file) {
  chosen = file;
  attempt++; // a transcription of the previous file still running is no longer wanted on screen
  cancelUpload(); // nor on the server
  $('file-name').textContent = file ? `${file.name} (${(file.size / 1024).toFixed(0)} KB)` : '';
  $('transcribe').disabled = !file;
  clearResult();
  setStatus('', '');
}

function setStatus(text, cls) {
  const el = $('file-status');
  el.textContent = text;
  el.className = 'status ' + (cls || '');
}

// Headerless files by name, as `listend transcribe` reads them (docs/api.md): their bytes cannot say
// what they are, so the name tells the server (a PBX's call.ul is 8 kHz mu-law).
const HEADERLESS = [['.raw', 'linear16', 16000], ['.pcm', 'linear16', 16000], ['.ul', 'mulaw', 8000],
  ['.ulaw', 'mulaw', 8000], ['.mu', 'mulaw', 8000], ['.al', 'alaw', 8000], ['.alaw', 'alaw', 8000]];

// The transcript on show belongs to the last file transcribed; nothing else may look like it.
function clearResult() {
  result = null;
  $('transcript').textContent = '';
  $('result').hidden = true;
}

async function transcribe() {
  if (!chosen) return;
  if (!key()) { setStatus('Paste a license key first.', 'bad'); return; }
  if (keyProblem()) { setStatus(keyProblem(), 'bad'); return; }
  const mine = ++attempt;
  const file = chosen;
  const form = new FormData();
  form.append('audio', chosen, chosen.name);
  form.append('timestamps', 'true');
  const raw = HEADERLESS.find(([ext]) => chosen.name.toLowerCase().endsWith(ext));
  if (raw) {
    form.append('encoding', raw[1]);
    form.append('sample_rate', String(raw[2]));
  }
  form.append('punctuate', $('punctuate').checked ? 'true' : 'false');
  const lang = $('language').value.trim();
  if (lang) form.append('language', lang);
  // model and keywords are sent as typed; a server that does not know a value says so.
  const model = $('model').value.trim();
  if (model) form.append('model', model);
  const kw = $('keywords').value.trim();
  if (kw) form.append('keywords', kw);
  if ($('diarize').checked) form.append('diarize', 'true');
  if ($('multichannel').checked) form.append('multichannel', 'true');
  if ($('redact').checked) {
    form.append('redact_pci', 'true');
    form.append('redact_pii', 'true');
  }
  cancelUpload(); // the previous one, if it still runs: its answer would not be shown
  const ctl = new AbortController();
  running = ctl;
  $('transcribe').disabled = true;
  $('cancel').hidden = false;
  clearResult();
  setStatus('Transcribing…', '');
  const t0 = performance.now();
  try {
    const resp = await fetch('/v1/listen', { method: 'POST', headers: authHeaders(), body: form, signal: ctl.signal });
    const body = await readBody(resp);
    if (mine !== attempt) return; // another file was transcribed meanwhile: its answer is the one shown
    if (!resp.ok) {
      setStatus('Error: ' + errorText(body, resp.status), 'bad');
      return;
    }
    result = body;
    render(body, file);
    setStatus(`Done in ${((performance.now() - t0) / 1000).toFixed(1)} s.`, 'ok');
  } catch (e) {
    if (mine !== attempt) return;
    if (ctl.signal.aborted) setStatus('Cancelled.', '');
    else setStatus('Cannot reach the server: ' + e.message, 'bad');
  } finally {
    if (running === ctl) running = null;
    if (!running) $('cancel').hidden = true;
    if (mine === attempt) $('transcribe').disabled = !chosen;
    refreshUsage();
  }
}

function cancelUpload() {
  if (running) running.abort();
  running = null;
  $('cancel').hidden = true;
}

function confClass(c) { return c >= 0.8 ? 'c-hi' : c >= 0.5 ? 'c-mid' : 'c-lo'; }

// Who said an utterance: its channel (multichannel=true; left/right for a stereo
// call) and its speaker (diarize=true, numbered from 1 here, per channel), or ''.
function who(u, body) {
  const parts = [];
  if (u.channel !== undefined) {
    const n = (body.channels || []).length;
    parts.push(n === 2 ? (u.channel ? 'Right' : 'Left') : 'Channel ' + (u.channel + 1));
  }
  if (u.speaker !== undefined) parts.push('Speaker ' + (u.speaker + 1));
  return parts.join(' · ');
}

function render(body, file) {
  if (playerUrl) URL.revokeObjectURL(playerUrl);
  playerUrl = URL.createObjectURL(file);
  $('player').src = playerUrl;
  const box = $('transcript');
  box.textContent = '';
  const words = body.words || [];
  const utts = body.utterances && body.utterances.length ? body.utterances
    : [{ start: words.length ? words[0].start : 0, end: 0, text: body.text }];
  // each word belongs to the last utterance of its channel starting at or before it
  // (the channels of a call overlap in time)
  const groups = utts.map(() => []);
  const last = new Map(); // channel -> index of its current utterance
  let ui = -1;
  for (const w of words) {
    const ch = w.channel || 0;
    while (ui + 1 < utts.length && w.start >= utts[ui + 1].start - 1e-6) {
      ui++;
      last.set(utts[ui].channel || 0, ui);
    }
    groups[last.has(ch) ? last.get(ch) : 0].push(w);
  }
  utts.forEach((u, i) => {
    const p = document.createElement('p');
    p.className = 'utt';
    const t = document.createElement('span');
    t.className = 't';
    t.textContent = clock(u.start, '.', false);
    p.appendChild(t);
    const label = who(u, body);
    if (label) {
      const l = document.createElement('span');
      l.className = 'who s' + ((u.speaker || 0) + 2 * (u.channel || 0)) % 6;
      l.textContent = label;
      p.appendChild(l);
    }
    const lead = p.childNodes.length;
    for (const w of groups[i]) {
      const punct = /^[.,?!]$/.test(w.word);
      if (!punct && p.childNodes.length > lead) p.appendChild(document.createTextNode(' '));
      const s = document.createElement('span');
      s.textContent = w.word;
      if (punct) {
        s.className = 'p';
      } else {
        s.className = 'w ' + confClass(w.confidence);
        s.dataset.start = w.start;
        s.dataset.end = w.end;
        s.title = `${w.start.toFixed(2)}–${w.end.toFixed(2)} s · confidence ${(w.confidence * 100).toFixed(0)} %`;
      }
      p.appendChild(s);
    }
    if (!words.length) p.appendChild(document.createTextNode(u.text || ''));
    box.appendChild(p);
  });
  if (!body.text) box.textContent = '(no speech recognised)';
  // the keyboard reaches the words as one stop (Tab), then the arrow keys: not one Tab per word
  box.querySelectorAll('.w').forEach((w, i) => { w.tabIndex = i ? -1 : 0; });
  const chans = (body.channels || []).length;
  const counts = (body.num_speakers ? ` · ${body.num_speakers} speaker${body.num_speakers > 1 ? 's' : ''}` : '') +
    (chans ? ` · ${chans} channel${chans > 1 ? 's' : ''}` : '');
  $('result-meta').textContent = `${(body.duration || 0).toFixed(1)} s of audio${counts} · language ` +
    `${body.language || '?'} · confidence ${((body.confidence || 0) * 100).toFixed(0)} % · request ${body.request_id || ''}`;
  $('result').hidden = false;
}

function onWordClick(ev) {
  const w = ev.target.closest('.w');
  if (!w) return;
  for (const o of $('transcript').querySelectorAll('.w[tabindex="0"]')) o.tabIndex = -1;
  w.tabIndex = 0; // Tab comes back to the word last played
  const player = $('player');
  player.currentTime = parseFloat(w.dataset.start);
  player.play().catch(() => {});
}

// Arrow keys move between the words, Home/End to the first/last, Enter or Space plays from the word.
function onWordKey(ev) {
  const w = ev.target.closest('.w');
  if (!w) return;
  if (ev.key === 'Enter' || ev.key === ' ') {
    ev.preventDefault();
    onWordClick(ev);
    return;
  }
  const all = [...$('transcript').querySelectorAll('.w')];
  const i = all.indexOf(w);
  const to = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: all.length - 1 }[ev.key];
  if (to === undefined || !all[to]) return;
  ev.preventDefault();
  w.tabIndex = -1;
  all[to].tabIndex = 0;
  all[to].focus();
}

function onTimeUpdate() {
  const t = $('player').currentTime;
  for (const w of $('transcript').querySelectorAll('.w')) {
    w.classList.toggle('now', t >= parseFloat(w.dataset.start) && t < parseFloat(w.dataset.end));
  }
}

// ---- downloads (made here from the JSON: no second transcription) -----------

function clock(s, sep, hours) {
  const ms = Math.round(s * 1000);
  const h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, sec = Math.floor(ms / 1000) % 60;
  const pad = (n, w) => String(n).padStart(w, '0');
  return (hours || h ? pad(h, 2) + ':' : '') + pad(m, 2) + ':' + pad(sec, 2) + sep + pad(ms % 1000, 3);
}

// Cues: the utterances (or one cue for the whole text).
function cues(body) {
  if (body.utterances && body.utterances.length) return body.utterances;
  return body.text ? [{ start: 0, end: body.duration || 0, text: body.text }] : [];
}

// With speakers or channels, each cue says who: "Speaker 1: …" (SRT, TXT) or a
// WebVTT voice tag <v Speaker 1>, which players show as the speaker's name.
function toSrt(body) {
  return cues(body).map((c, i) => {
    const w = who(c, body);
    return `${i + 1}\n${clock(c.start, ',', true)} --> ${clock(c.end, ',', true)}\n${w ? w + ': ' : ''}${c.text}\n`;
  }).join('\n');
}

function toVtt(body) {
  return 'WEBVTT\n\n' + cues(body).map((c) => {
    const w = who(c, body);
    return `${clock(c.start, '.', true)} --> ${clock(c.end, '.', true)}\n${w ? '<v ' + w + '>' : ''}${c.text}\n`;
  }).join('\n');
}

function toTxt(body) {
  const labelled = cues(body).filter((c) => who(c, body));
  if (!labelled.length) return (body.text || '') + '\n';
  return labelled.map((c) => `${who(c, body)}: ${c.text}`).join('\n') + '\n';
}

function exportAs(format, body) {
  switch (format) {
    case 'txt': return { text: toTxt(body), type: 'text/plain' };
    case 'srt': return { text: toSrt(body), type: 'application/x-subrip' };
    case 'vtt': return { text: toVtt(body), type: 'text/vtt' };
    default: return { text: JSON.stringify(body, null, 2) + '\n', type: 'application/json' };
  }
}

function download(format) {
  if (!result) return;
  const { text, type } = exportAs(format, result);
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type: type + ';charset=utf-8' }));
  a.download = (chosen ? chosen.name.replace(/\.[^.]+$/, '') : 'transcript') + '.' + format;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// ---- live microphone -----------------------------------------------------------

// One session per Start: its socket, audio context and microphone. Every await in startMic is
// followed by a check that the session is still the page's and not stopped, so a Stop (or a page
// state change) while the worklet, the microphone or the socket is still coming releases what
// arrives late instead of leaving a microphone open that nothing sends.
let mic = null;

function setMicState(state, message) {
  const el = $('mic-state');
  el.textContent = state;
  el.className = 'state ' + state;
  const err = $('mic-error');
  err.hidden = !message;
  err.textContent = message || '';
  const busy = state === 'connecting' || state === 'listening';
  $('mic-start').disabled = busy || !micSupported();
  $('mic-stop').disabled = !busy;
}

// Browsers give pages the microphone (and AudioWorklet) only in a secure context: https:// or localhost.
function micSupported() {
  return window.isSecureContext && !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia) &&
    typeof AudioWorkletNode === 'function';
}
const INSECURE = 'The microphone needs https:// or http://localhost: browsers do not give it to pages on ' +
  'plain http:// from another host (serve with --tls-cert/--tls-key).';

// A final's text; with "who spoke" (diarize=true) one line per run of one
// speaker's words, labelled as in the file transcript (Speaker 1, 2, ...).
function addFinal(m) {
  if (!m.transcript) return;
  const words = m.words || [];
  const runs = [];
  for (const w of words) {
    if (w.speaker === undefined) { runs.length = 0; break; }
    const last = runs[runs.length - 1];
    if (last && last.speaker === w.speaker) last.words.push(w.word);
    else runs.push({ speaker: w.speaker, words: [w.word] });
  }
  if (!runs.length) runs.push({ speaker: undefined, words: [m.transcript] });
  for (const r of runs) {
    const d = document.createElement('div');
    d.className = 'final';
    if (r.speaker !== undefined) {
      const l = document.createElement('span');
      l.className = 'who s' + (r.speaker % 6);
      l.textContent = 'Speaker ' + (r.speaker + 1);
      d.appendChild(l);
    }
    d.appendChild(document.createTextNode(r.words.join(' ').replace(/ ([.,?!])/g, '$1')));
    $('live-final').appendChild(d);
  }
}

// The stream ended with words still interim (an error, or the server closed it): they stay as
// plain text marked as never settled, not in the grey of text that is still changing.
function settleInterim() {
  const el = $('live-interim');
  const t = el.textContent.trim();
  el.textContent = '';
  if (!t) return;
  const d = document.createElement('div');
  d.className = 'final unsettled';
  d.appendChild(document.createTextNode(t + ' '));
  const note = document.createElement('span');
  note.className = 'note';
  note.textContent = '(not final: the stream ended first)';
  d.appendChild(note);
  $('live-final').appendChild(d);
}

function onStreamMessage(s, ev) {
  if (mic !== s) return;
  let m;
  try { m = JSON.parse(ev.data); } catch (e) { return; }
  if (m.type === 'transcription') {
    if (m.is_final) {
      addFinal(m);
      $('live-interim').textContent = '';
    } else {
      $('live-interim').textContent = m.transcript;
    }
    if (m.is_last && s.ws) s.ws.close(1000);
  } else if (m.type === 'error') {
    s.failed = true;
    setMicState('error', errorText({ error: m.message, code: m.code }));
  }
}

// A refused WebSocket handshake shows no status or body to the page; ask
// /v1/license, whose answer names the problem with the key (expired, invalid,
// rate limited, or the server cannot be reached) in the server's words.
async function explainRefusal() {
  if (!key()) return 'Paste a license key first.';
  const refused = await refreshUsage();
  if (refused) return errorText(refused, 0);
  const opts = [];
  const lang = $('language').value.trim();
  if (lang) opts.push(`language "${lang}"`);
  if ($('mic-diarize').checked) opts.push('who spoke');
  if ($('mic-redact').checked) opts.push('hide card/personal data');
  return 'The server refused the stream: too many live streams at once, or an option it does not accept' +
    (opts.length ? ' (' + opts.join(', ') + ')' : '') + '; its log says which.';
}

async function startMic() {
  if (!micSupported()) { setMicState('error', INSECURE); return; }
  if (!key()) { setMicState('error', 'Paste a license key first.'); return; }
  if (keyProblem()) { setMicState('error', keyProblem()); return; }
  if (mic) endMic(mic);
  $('live-final').textContent = '';
  $('live-interim').textContent = '';
  const s = { ws: null, ctx: null, media: null, opened: false, stopping: false, failed: false };
  mic = s;
  const current = () => mic === s && !s.stopping;
  setMicState('connecting');
  // The worklet first: it comes from the server, so a server that cannot be reached is found
  // before the browser asks for the microphone, and is not mistaken for a microphone problem.
  try {
    s.ctx = new AudioContext();
    await s.ctx.audioWorklet.addModule('/playground/playground-worklet.js');
  } catch (e) {
    releaseAudio(s);
    if (!current()) return;
    const refused = await refreshUsage();
    if (!current()) return;
    endMic(s);
    setMicState('error', refused && refused.unreachable ? refused.error
      : 'Cannot load the audio worklet from the server: ' + e.message);
    return;
  }
  if (!current()) { releaseAudio(s); return; }
  try {
    s.media = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
  } catch (e) {
    releaseAudio(s);
    if (!current()) return;
    endMic(s);
    setMicState('error', 'Microphone unavailable: ' + e.message);
    return;
  }
  if (!current()) { releaseAudio(s); return; }
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const params = new URLSearchParams({ encoding: 'linear16', sample_rate: String(s.ctx.sampleRate) });
  const lang = $('language').value.trim();
  if (lang) params.set('language', lang);
  if ($('mic-diarize').checked) params.set('diarize', 'true');
  if ($('mic-redact').checked) {
    params.set('redact_pci', 'true');
    params.set('redact_pii', 'true');
  }
  const ws = new WebSocket(`${proto}//${location.host}/v1/listen/stream?${params}`, ['token', key()]);
  ws.binaryType = 'arraybuffer';
  s.ws = ws;
  ws.onmessage = (ev) => onStreamMessage(s, ev);
  ws.onopen = () => {
    if (!current()) { ws.close(1000); return; }
    s.opened = true;
    const src = s.ctx.createMediaStreamSource(s.media);
    const node = new AudioWorkletNode(s.ctx, 'pcm-capture');
    const mute = s.ctx.createGain();
    mute.gain.value = 0; // keeps the graph pulled without playing the microphone back
    src.connect(node).connect(mute).connect(s.ctx.destination);
    node.port.onmessage = (e) => {
      $('level').value = Math.min(1, e.data.level * 4);
      if (ws.readyState === WebSocket.OPEN && !s.stopping) ws.send(e.data.pcm);
    };
    setMicState('listening');
  };
  ws.onclose = async (ev) => {
    releaseAudio(s);
    if (mic !== s) return; // stopped while connecting, or replaced: the page has moved on
    mic = null;
    settleInterim();
    if (s.failed) {
      refreshUsage(); // the error is shown; the usage line says what it cost (e.g. the quota used up)
    } else if (!s.opened) {
      setMicState('error', await explainRefusal()); // it refreshed the usage line
    } else {
      if (ev.code !== 1000 && !s.stopping) {
        setMicState('error', `Stream closed by the server (${ev.code}${ev.reason ? ': ' + ev.reason : ''})`);
      } else {
        setMicState('idle');
      }
      refreshUsage();
    }
  };
}

function releaseAudio(s) {
  if (s.media) s.media.getTracks().forEach((t) => t.stop());
  if (s.ctx) s.ctx.close().catch(() => {});
  s.media = null;
  s.ctx = null;
  if (mic === s || !mic) $('level').value = 0;
}

// Drops a session that has not streamed yet: its audio released, its socket closed, the page idle.
function endMic(s) {
  s.stopping = true;
  releaseAudio(s);
  if (s.ws && s.ws.readyState !== WebSocket.CLOSED) s.ws.close(1000);
  if (mic === s) mic = null;
}

// Stop: once streaming, the server flushes what it heard and sends the last final (is_last),
// then closes; before that there is nothing to flush and the page is idle at once.
function stopMic() {
  const s = mic;
  if (!s) return;
  if (s.opened && s.ws && s.ws.readyState === WebSocket.OPEN) {
    s.stopping = true;
    releaseAudio(s);
    s.ws.send(JSON.stringify({ type: 'close_stream' }));
    $('mic-stop').disabled = true;
    return;
  }
  endMic(s);
  setMicState('idle');
}

// ---- wiring -------------------------------------------------------------------

function init() {
  const k = $('key');
  k.value = sessionStorage.getItem(KEY_STORE) || '';
  let timer = null;
  k.addEventListener('input', () => {
    sessionStorage.setItem(KEY_STORE, key());
    clearTimeout(timer);
    timer = setTimeout(refreshUsage, 400);
  });
  $('key-show').addEventListener('click', () => {
    k.type = k.type === 'password' ? 'text' : 'password';
    $('key-show').textContent = k.type === 'password' ? 'show' : 'hide';
  });
  $('key-form').addEventListener('submit', (e) => e.preventDefault());
  $('file').addEventListener('change', (e) => choose(e.target.files[0] || null));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]);
  });
  drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') $('file').click(); });
  $('transcribe').addEventListener('click', transcribe);
  $('cancel').addEventListener('click', cancelUpload);
  $('transcript').addEventListener('click', onWordClick);
  $('transcript').addEventListener('keydown', onWordKey);
  $('player').addEventListener('timeupdate', onTimeUpdate);
  for (const b of document.querySelectorAll('.downloads button')) {
    b.addEventListener('click', () => download(b.dataset.format));
  }
  $('mic-start').addEventListener('click', startMic);
  $('mic-stop').addEventListener('click', stopMic);
  if (!micSupported()) { // said before anyone clicks Start, not as a script error after
    $('mic-note').textContent = INSECURE;
    $('mic-note').hidden = false;
    $('mic-start').disabled = true;
  }
  refreshUsage();
}

window.listendPlayground = { exportAs, toSrt, toVtt }; // for tests and curious users
document.addEventListener('DOMContentLoaded', init);
