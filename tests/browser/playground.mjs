// Drives Debian's chromium (headless, through puppeteer-core) against a running
// listend's playground, as a person would, and prints what the page showed as
// one JSON object. Called by tests/integration/test_playground_browser.py and
// scripts/screenshot.sh; exits non-zero with the reason when the browser
// cannot be driven.
//
//   node playground.mjs SCENARIO URL KEY [FILE] [OUT.png]
//     upload      choose FILE, transcribe, read the transcript from the DOM; with OUT (here a second
//                 audio file, e.g. a headerless call.ul) upload that too: its status and transcript
//     cancel      FILE (long) transcribing is cancelled; FILE again is replaced by OUT (short) before it answers
//     labels      FILE with "who spoke" (diarize) checked, then OUT (here a second audio file) with
//                 "each channel" (multichannel) instead: each utterance's label and text, and the exports
//     mic         FILE is the fake microphone (a WAV chromium plays in a loop); with KEY2 (a key whose day holds
//                 ~2 s of audio) then: Stop at each step of connecting, a stream refused for its language, KEY2
//                 talking past its quota, the server unreachable, the page on plain http:// off localhost
//     micwho      the same with the microphone's "who spoke" (diarize) checked, until a second speaker
//                 is labelled (or 30 s): each final line's label and text
//     badkey      KEY is refused: what the upload, the microphone and the usage line say
//     screenshot  upload FILE and talk with it, then save the page as OUT.png
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const [scenario, url, key, file, out, key2] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required', '--window-size=1280,900',
];
if (['mic', 'micwho', 'badkey', 'screenshot'].includes(scenario)) {
  args.push('--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream');
  if (file) args.push('--use-file-for-fake-audio-capture=' + file);
}

if (scenario === 'mic') args.push('--host-resolver-rules=MAP listend.test 127.0.0.1');

const profile = mkdtempSync(join(tmpdir(), 'listend-chromium-'));
const problems = []; // page errors and CSP violations: the page must have none
let browser;

async function open() {
  browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: false, userDataDir: profile, args,
    defaultViewport: { width: 1280, height: 900 }, protocolTimeout: 120000,
  });
  const page = await browser.newPage();
  page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|WebSocket connection/.test(m.text())) {
      problems.push('console: ' + m.text());
    }
  });
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI);
    });
  });
  await page.goto(url + '/', { waitUntil: 'networkidle0' });
  await page.type('#key', key);
  return page;
}

const text = (page, sel) => page.$eval(sel, (e) => e.innerText.trim());

async function upload(page, audio = file) {
  const input = await page.$('#file');
  await input.uploadFile(audio);
  await page.click('#transcribe');
  await page.waitForFunction(() => /\b(ok|bad)\b/.test(document.getElementById('file-status').className),
    { timeout: 120000 });
  return { status: await text(page, '#file-status'), statusClass: await page.$eval('#file-status', (e) => e.className) };
}

// An upload with a box checked first; each utterance's label and text, and the exports.
async function labelled(page, box, audio) {
  await page.click(box);
  const r = await upload(page, audio);
  r.utts = await page.$$eval('#transcript .utt', (ps) => ps.map((p) => ({
    who: p.querySelector('.who') ? p.querySelector('.who').textContent : '',
    words: [...p.querySelectorAll('.w')].map((w) => w.textContent).join(' ') })));
  r.exports = await page.evaluate(() => Object.fromEntries(['txt', 'srt', 'vtt'].map((f) =>
    [f, window.listendPlayground.exportAs(f, window.__last).text])));
  return r;
}

async function scenarioUpload(page) {
  const r = await upload(page);
  r.transcript = await text(page, '#transcript');
  r.words = await page.$$eval('#transcript .w', (ws) => ws.map((w) => ({
    word: w.textContent, start: parseFloat(w.dataset.start), cls: w.className })));
  r.meta = await text(page, '#result-meta');
  r.usage = await text(page, '#usage');
  r.srt = await page.evaluate(() => window.listendPlayground.exportAs('srt', JSON.parse(
    JSON.stringify(window.__last || null)) || { text: '' }).text);
  // click the third word: the player jumps to its start
  if (r.words.length > 2) {
    const spans = await page.$$('#transcript .w');
    await spans[2].click();
    await page.waitForFunction((t) => Math.abs(document.getElementById('player').currentTime - t) < 0.6,
      { timeout: 10000 }, r.words[2].start).then(() => { r.seeked = true; }, () => { r.seeked = false; });
    r.playerTime = await page.$eval('#player', (p) => p.currentTime);
  }
  // the keyboard: the transcript is one Tab stop (the word last played), arrow keys move, Enter plays
  r.tabbableWords = await page.$$eval('#transcript .w', (ws) => ws.filter((w) => w.tabIndex >= 0).length);
  if (r.words.length > 4 && r.tabbableWords) {
    await page.evaluate(() => document.querySelector('#transcript .w[tabindex="0"]').focus());
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Enter');
    r.keyFocus = await page.evaluate(() => [...document.querySelectorAll('#transcript .w')].indexOf(document.activeElement));
    await page.waitForFunction((t) => Math.abs(document.getElementById('player').currentTime - t) < 0.3,
      { timeout: 5000 }, r.words[4].start).then(() => { r.keySeeked = true; }, () => { r.keySeeked = false; });
  }
  // what a screen reader is told: the drop zone's role and name, which parts announce their changes
  const cdp = await page.target().createCDPSession();
  const { root } = await cdp.send('DOM.getDocument');
  const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector: '#drop' });
  const { nodes } = await cdp.send('Accessibility.getPartialAXTree', { nodeId, fetchRelatives: false });
  r.drop = { role: nodes[0].role && nodes[0].role.value, name: nodes[0].name ? nodes[0].name.value : '' };
  r.live = await page.evaluate(() => Object.fromEntries(['mic-state', 'live-final', 'file-status', 'usage'].map((id) => {
    const e = document.getElementById(id);
    return [id, e.getAttribute('aria-live') || ({ status: 'polite', alert: 'assertive' })[e.getAttribute('role')] || ''];
  })));
  if (out) { // a second file in the same page (one browser start for both)
    r.second = await upload(page, out);
    r.second.transcript = await text(page, '#transcript');
  }
  // phones: the page with its transcript fits the screen, no sideways scrolling
  r.overflow = {};
  for (const width of [320, 375, 414]) {
    await page.setViewport({ width, height: 740 });
    r.overflow[width] = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  }
  return r;
}

async function scenarioMic(page, who = false) {
  if (who) await page.click('#mic-diarize');
  const states = [];
  await page.exposeFunction('__state', (s) => states.push(s));
  await page.evaluate(() => {
    const el = document.getElementById('mic-state');
    new MutationObserver(() => window.__state(el.textContent)).observe(el, { childList: true });
  });
  const interims = [];
  await page.exposeFunction('__interim', (s) => { if (s) interims.push(s); });
  await page.evaluate(() => {
    const el = document.getElementById('live-interim');
    new MutationObserver(() => window.__interim(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
  });
  await page.click('#mic-start');
  await page.waitForFunction(() => document.getElementById('mic-state').textContent !== 'connecting', { timeout: 30000 });
  const r = { state: await text(page, '#mic-state') };
  if (r.state === 'listening') {
    // a final at the first pause, or 20 s of talking; then Stop flushes the rest
    if (who) {
      await page.waitForFunction(() => [...document.querySelectorAll('#live-final .who')]
        .some((e) => e.textContent === 'Speaker 2'), { timeout: 30000 }).catch(() => {});
    } else {
      await page.waitForFunction(() => document.getElementById('live-final').innerText.trim() !== '',
        { timeout: 20000 }).catch(() => {});
    }
    r.finalBeforeStop = await text(page, '#live-final');
    r.level = await page.$eval('#level', (m) => m.value);
    await page.click('#mic-stop');
    await page.waitForFunction(() => document.getElementById('mic-state').textContent !== 'listening',
      { timeout: 60000 });
  }
  r.final = await text(page, '#live-final');
  r.endState = await text(page, '#mic-state');
  r.error = await text(page, '#mic-error');
  r.states = states;
  r.interimCount = interims.length;
  r.interims = interims.slice(0, 3).concat(interims.slice(-3));
  r.lines = await page.$$eval('#live-final .final', (ds) => ds.map((d) => {
    const w = d.querySelector('.who');
    return { who: w ? w.textContent : '', text: d.textContent.slice(w ? w.textContent.length : 0).trim() };
  }));
  return r;
}

async function scenarioBadKey(page) {
  const r = {};
  await page.waitForFunction(() => /refused/.test(document.getElementById('usage').innerText), { timeout: 10000 })
    .catch(() => {});
  r.usage = await text(page, '#usage');
  if (file) Object.assign(r, await upload(page));
  await page.click('#mic-start');
  await page.waitForFunction(() => document.getElementById('mic-state').textContent === 'error', { timeout: 30000 })
    .catch(() => {});
  r.micState = await text(page, '#mic-state');
  r.micError = await text(page, '#mic-error');
  return r;
}

// Stop while the microphone is still connecting, at each step of the start (the worklet loading, the
// microphone being granted, the socket opening): each time the page is idle at once and stays so, shows no
// error, and every microphone track it got and every socket it opened is released.
async function micStops(page) {
  await page.evaluate(() => {
    window.__tracks = [];
    window.__sockets = [];
    window.__stopAt = '';
    const stop = (at) => { if (window.__stopAt === at) { window.__stopAt = ''; document.getElementById('mic-stop').click(); } };
    const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = async (c) => {
      const m = await gum(c);
      window.__tracks.push(...m.getTracks());
      stop('media');
      return m;
    };
    const add = AudioWorklet.prototype.addModule;
    AudioWorklet.prototype.addModule = function (...a) { const p = add.apply(this, a); stop('worklet'); return p; };
    const WS = window.WebSocket;
    window.WebSocket = function (...a) { const w = new WS(...a); window.__sockets.push(w); stop('socket'); return w; };
    window.WebSocket.prototype = WS.prototype;
    Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  });
  const r = { stops: {} };
  for (const at of ['worklet', 'media', 'socket']) {
    await page.evaluate((a) => { window.__stopAt = a; document.getElementById('mic-start').click(); }, at);
    await new Promise((res) => setTimeout(res, 700)); // what the start would have done by now, it did
    r.stops[at] = await page.evaluate(() => ({
      state: document.getElementById('mic-state').textContent,
      error: document.getElementById('mic-error').textContent,
      startEnabled: !document.getElementById('mic-start').disabled,
      stopEnabled: !document.getElementById('mic-stop').disabled,
      liveTracks: window.__tracks.filter((t) => t.readyState !== 'ended').length,
      openSockets: window.__sockets.filter((w) => w.readyState < 2).length,
      stopped: window.__stopAt === '',
    }));
  }
  return r.stops;
}

// The server gone: every request from the page fails as a network error.
async function serverGone(page) {
  await page.setRequestInterception(true);
  page.on('request', (q) => q.abort('connectionrefused'));
  await page.click('#mic-start');
  await page.waitForFunction(() => document.getElementById('mic-state').textContent === 'error', { timeout: 10000 })
    .catch(() => {});
  const r = { state: await text(page, '#mic-state'), error: await text(page, '#mic-error'), usage: await text(page, '#usage'),
    liveTracks: await page.evaluate(() => window.__tracks.filter((t) => t.readyState !== 'ended').length) };
  page.removeAllListeners('request');
  await page.setRequestInterception(false); // the server is back for what follows
  return r;
}

// A key with a quota of about 2 s of audio talks on past it: the server's error is shown, the usage line
// is refreshed to say the day is spent, and no interim text is left looking as if still coming.
async function micQuota(page, quotaKey) {
  await page.$eval('#key', (e) => { e.value = ''; });
  await page.type('#key', quotaKey);
  await page.waitForFunction(() => /left/.test(document.getElementById('usage').innerText), { timeout: 10000 });
  await page.click('#mic-start');
  await page.waitForFunction(() => document.getElementById('mic-state').textContent === 'error', { timeout: 20000 })
    .catch(() => {});
  await page.waitForFunction(() => /bad/.test(document.getElementById('usage').className), { timeout: 5000 })
    .catch(() => {});
  await new Promise((res) => setTimeout(res, 300));
  return {
    state: await text(page, '#mic-state'), error: await text(page, '#mic-error'), usage: await text(page, '#usage'),
    usageClass: await page.$eval('#usage', (e) => e.className), interim: await text(page, '#live-interim'),
    final: await text(page, '#live-final'), startEnabled: await page.$eval('#mic-start', (b) => !b.disabled),
  };
}

// FILE is long, OUT short. Cancel while FILE transcribes; then FILE again, replaced by OUT before it
// answers. Each POST's outcome (an aborted one failed with net::ERR_ABORTED) and what the page showed.
async function scenarioCancel(page) {
  const posts = [];
  page.on('requestfinished', (q) => { if (q.method() === 'POST') posts.push('finished ' + q.response().status()); });
  page.on('requestfailed', (q) => { if (q.method() === 'POST') posts.push('failed ' + q.failure().errorText); });
  const input = await page.$('#file');
  const r = {};
  await input.uploadFile(file);
  await page.click('#transcribe');
  await new Promise((res) => setTimeout(res, 300));
  r.cancelShown = await page.$eval('#cancel', (b) => !b.hidden && b.offsetParent !== null).catch(() => false);
  if (r.cancelShown) await page.click('#cancel');
  await page.waitForFunction(() => /Cancelled/.test(document.getElementById('file-status').textContent), { timeout: 3000 })
    .catch(() => {});
  r.cancelled = { status: await text(page, '#file-status'), cancelShown: await page.$eval('#cancel', (b) => !b.hidden).catch(() => false),
    transcribeEnabled: await page.$eval('#transcribe', (b) => !b.disabled) };
  await page.click('#transcribe');
  await new Promise((res) => setTimeout(res, 300));
  r.replaced = await upload(page, out);
  r.replaced.transcript = await text(page, '#transcript');
  r.replaced.cancelShown = await page.$eval('#cancel', (b) => !b.hidden).catch(() => false);
  await new Promise((res) => setTimeout(res, 200));
  r.posts = posts;
  return r;
}

// A stream the server refuses for an option (language "xx"): the message names the options sent.
async function refusedOption(page) {
  await page.$eval('#language', (e) => { e.value = 'xx'; });
  await page.click('#mic-start');
  await page.waitForFunction(() => document.getElementById('mic-state').textContent === 'error', { timeout: 10000 })
    .catch(() => {});
  await page.$eval('#language', (e) => { e.value = 'en'; });
  return text(page, '#mic-error');
}

// The same page from a host name on plain http:// (not a secure context): before any click, the page says
// the microphone needs https:// or localhost, and Start is disabled.
async function insecureOrigin(page) {
  const u = new URL(url);
  await page.goto(`http://listend.test:${u.port}/`, { waitUntil: 'networkidle0' });
  return page.evaluate(() => ({ secure: window.isSecureContext,
    note: document.getElementById('mic-note') ? document.getElementById('mic-note').innerText.trim() : '',
    startEnabled: !document.getElementById('mic-start').disabled }));
}

async function scenarioScreenshot(page) {
  const r = await upload(page);
  // and the microphone, caught while listening after its first final
  await page.click('#mic-start');
  await page.waitForFunction(() => document.getElementById('live-final').innerText.trim() !== '' &&
    document.getElementById('live-interim').innerText.trim() !== '', { timeout: 30000 }).catch(() => {});
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: out, fullPage: true });
  r.screenshot = out;
  await page.click('#mic-stop');
  return r;
}

let code = 0;
try {
  const page = await open();
  await page.evaluate(() => {
    // keep the last JSON answer for the download check
    const orig = window.fetch;
    window.fetch = async (...a) => {
      const resp = await orig(...a);
      if (String(a[0]).startsWith('/v1/listen')) resp.clone().json().then((j) => { window.__last = j; }, () => {});
      return resp;
    };
  });
  const run = {
    redact: (page) => labelled(page, '#redact', file),
    upload: scenarioUpload, cancel: scenarioCancel, micwho: (page) => scenarioMic(page, true), badkey: scenarioBadKey, screenshot: scenarioScreenshot,
    mic: async (page) => { // with KEY2, the edges after it in the same browser (starting chromium is most of the time)
      const r = await scenarioMic(page);
      if (key2) {
        r.stops = await micStops(page);
        r.refused = await refusedOption(page);
        r.quota = await micQuota(page, key2);
        r.down = await serverGone(page);
        r.insecure = await insecureOrigin(page);
      }
      return r;
    },
    labels: async (page) => { // one browser for both: starting chromium is most of the time
      const speakers = await labelled(page, '#diarize', file);
      await page.click('#diarize'); // off again
      return { speakers, channels: await labelled(page, '#multichannel', out) };
    },
  }[scenario];
  if (!run) throw new Error('unknown scenario ' + scenario);
  const result = await run(page);
  result.problems = problems;
  process.stdout.write(JSON.stringify(result) + '\n');
} catch (e) {
  process.stderr.write('browser test driver failed: ' + (e.stack || e) + '\n');
  code = 2;
} finally {
  if (browser) await browser.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
