'use strict';
// The demo's chat page, end to end: the page (miniprogram-demo/pages/chat) runs in the page
// sandbox — a Node vm realm with no TextDecoder/TextEncoder/WebAssembly/fetch, WXWebAssembly by
// path, wx.request over real HTTP whose onChunkReceived re-splits the socket's bytes at random —
// against a real relay process with the built-in demo model on an ephemeral loopback port.
// The expected answers come from the relay independently (a non-streamed request).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { createPageSandbox, preparePackage, startRelay, httpRequest, componentBlocks } = require('./mp-page-sandbox');
const { markdownOneShot } = require('./helpers');

const ROOT = path.join(__dirname, '..', '..');
const DEMO = path.join(ROOT, 'miniprogram-demo');
const ZH = '小程序里怎么做流式输出？';
const EN = 'And how does it work in English?';

let relay = null;
let pkg = null;

test.before(async () => {
  pkg = preparePackage(DEMO);
  // A faster demo model than the default (35 ms a token) so that the suite stays short, but
  // still a few seconds an answer: long enough to cut, hide and stop in the middle.
  relay = await startRelay({ RELAY_DEMO_TOKEN_MS: '8', RELAY_DEMO_FIRST_TOKEN_MS: '150', RELAY_MAX_MESSAGE_CHARS: '3000' });
});

test.after(async () => {
  if (relay) await relay.stop();
  if (pkg) pkg.remove();
});

/** What the relay answers to `messages`, asked without streaming (deterministic: cached). */
const answers = new Map();
async function expectedAnswer(messages) {
  const key = JSON.stringify(messages);
  if (!answers.has(key)) answers.set(key, await askRelay(messages));
  return answers.get(key);
}
async function askRelay(messages) {
  const r = await httpRequest(`${relay.base}/v1/chat/completions`, { method: 'POST', body: { model: 'demo', stream: false, messages } });
  assert.equal(r.status, 200, r.body);
  const msg = JSON.parse(r.body).choices[0].message;
  return { text: msg.content, reasoning: msg.reasoning_content || '' };
}

const MARKDOWN = 'components/chunkwise-markdown/chunkwise-markdown';

/** The page's chunkwise-markdown elements: one per assistant message, id md-<key>. */
function components(page, selector) {
  return page.data.msgs.some((m) => m.role === 'assistant' && selector === '#md-' + m.key) ? MARKDOWN : null;
}

/** The answer component of message i (as the page selects it). */
function answerOf(page, i) {
  return page.components.get('#md-' + page.data.msgs[i].key) || null;
}

function newSandbox(opts) {
  const ps = createPageSandbox(Object.assign({ packageRoot: pkg.dir, quiet: false, components }, opts));
  ps.launch();
  ps.app.globalData.relay = relay.base; // config.js points at 8787; the test's relay is elsewhere
  return ps;
}

async function openChat(ps) {
  const page = ps.open('pages/chat/chat');
  await ps.waitFor(() => page.data.ready || page.data.loadError, 10000, 'the wasm to load');
  assert.equal(page.data.loadError, '');
  return page;
}

async function ask(ps, page, text) {
  ps.input(page, 'onInput', text);
  const before = page.setDataCalls.length;
  ps.tap(page, 'onSend');
  assert.equal(page.data.busy, true);
  return before;
}

/** The most setData calls in any 1000 ms window. */
function peakRate(calls) {
  let peak = 0;
  for (let i = 0, j = 0; i < calls.length; i++) {
    while (calls[i].at - calls[j].at >= 1000) j++;
    peak = Math.max(peak, i - j + 1);
  }
  return peak;
}

/** Renders the page data with wcc's $gwx and returns the ids of the answers' chunkwise-markdown elements. */
function renderedAnswers(data) {
  let compiler;
  try {
    compiler = require('miniprogram-compiler');
  } catch (e) {
    return null;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  const js = compiler.wxmlToJs(DEMO, { wxmlList: ['pages/chat/chat.wxml'] });
  const ctx = vm.createContext({ console: { log() {}, warn() {}, error() {} } });
  ctx.window = ctx;
  const $gwx = vm.runInContext(`(function (global) {${js}\n})`, ctx)({});
  const tree = $gwx('pages/chat/chat.wxml')(JSON.parse(JSON.stringify(data)), {}, {});
  const out = [];
  (function walk(n) {
    if (!n || typeof n !== 'object') return;
    if (n.attr && typeof n.attr.class === 'string' && n.attr.class.split(' ').includes('answer')) out.push(n.tag + '#' + n.attr.id);
    (n.children || []).forEach(walk);
  })(tree);
  return out;
}

/** The blocks an answer component shows, in order. */
function blocksOf(md) {
  return componentBlocks(md.data);
}

/** The relay's events of generation `id` from the start: { content, reasoning, finishReason }. */
async function generationLog(id) {
  const r = await httpRequest(`${relay.base}/v1/chat/stream/${id}?after=0`, { timeoutMs: 10000 });
  assert.equal(r.status, 200, r.body);
  let content = '';
  let reasoning = '';
  let finishReason = null;
  for (const block of r.body.split('\n\n')) {
    const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    if (!data || data === '[DONE]') continue;
    const chunk = JSON.parse(data);
    for (const c of chunk.choices || []) {
      if (c.delta && c.delta.content) content += c.delta.content;
      if (c.delta && c.delta.reasoning_content) reasoning += c.delta.reasoning_content;
      if (c.finish_reason) finishReason = c.finish_reason;
    }
  }
  return { content, reasoning, finishReason };
}

test('the chat page streams the demo answers of a two-turn chat, ≤ ~20 setData a second, path keys only, linear bytes', async () => {
  const ps = newSandbox({ network: { split: { seed: 42, maxBytes: 48 } } });
  try {
    assert.deepEqual(ps.sandbox.leakedGlobals(), [], 'the realm has only what a device has');
    const page = await openChat(ps);

    const first = await ask(ps, page, ZH);
    await ps.waitFor(() => !page.data.busy, 60000, 'the first answer');
    const zh = await expectedAnswer([{ role: 'user', content: ZH }]);
    assert.equal(page.data.msgs.length, 2);
    assert.equal(page.data.msgs[0].text, ZH);
    const a1 = page.data.msgs[1];
    assert.equal(a1.error, '');
    assert.equal(a1.status, 'done');
    assert.equal(page.textOf(a1), zh.text);
    assert.equal(a1.reasoningParts.join(''), zh.reasoning);
    assert.ok(zh.text.length > 300 && /[\u4e00-\u9fff]/.test(zh.text));
    assert.equal(a1.showReasoning, false, 'the reasoning collapses once the answer starts');

    const streamCalls = page.setDataCalls.slice(first + 1);
    assert.ok(streamCalls.length > 10, `the typewriter shows the reasoning in many steps (${streamCalls.length})`);
    assert.ok(peakRate(streamCalls) <= 21, `at most ~20 setData calls a second, got ${peakRate(streamCalls)}`);
    for (const c of streamCalls) {
      for (const key of Object.keys(c.patch)) assert.match(key, /^(msgs\[1\]\.(answering|reasoningParts\[\d+\]|status|statusText|error|showReasoning)|busy)$/, 'path keys only');
      assert.ok(c.bytes < 2048, `small setData payloads: ${c.bytes} bytes`);
    }
    // The answer went to its component in deltas; it rendered it as a one-shot render would.
    const md = answerOf(page, 1);
    assert.ok(md, 'the page selected the answer component');
    assert.ok(md.setDataCalls.length > 20, `the typewriter shows the answer in many steps (${md.setDataCalls.length})`);
    assert.deepEqual(blocksOf(md), JSON.parse(JSON.stringify(markdownOneShot(zh.text, { patches: 'children' }))));
    // One component setData per update (~20 a second), plus the one of finish().
    assert.ok(peakRate(md.setDataCalls) <= 22, `the component too: ${peakRate(md.setDataCalls)} a second`);
    // Linear: what crossed setData (page and component) is a small multiple of the final data,
    // not the square of the answer (the whole text on every tick was ~100× here).
    const crossed = streamCalls.concat(md.setDataCalls).reduce((n, c) => n + c.bytes, 0);
    const final = Buffer.byteLength(JSON.stringify(a1)) + Buffer.byteLength(JSON.stringify(md.data));
    assert.ok(crossed < 40 * final, `${crossed} bytes crossed for ${final} bytes of final data`);

    // The second turn sends the history and gets the English answer.
    const second = await ask(ps, page, EN);
    await ps.waitFor(() => !page.data.busy, 60000, 'the second answer');
    const history = [
      { role: 'user', content: ZH },
      { role: 'assistant', content: zh.text },
      { role: 'user', content: EN },
    ];
    const sent = ps.requestLog.filter((r) => r.method === 'POST' && r.url.endsWith('/v1/chat/completions'));
    assert.equal(sent.length, 2);
    const body = JSON.parse(sent[1].data);
    assert.deepEqual(body.messages, history);
    assert.equal(body.stream, true);
    assert.equal(body.model, 'demo');
    const en = await expectedAnswer(history);
    assert.equal(page.textOf(page.data.msgs[3]), en.text);
    assert.deepEqual(blocksOf(answerOf(page, 3)), JSON.parse(JSON.stringify(markdownOneShot(en.text, { patches: 'children' }))));
    assert.equal(page.data.msgs[3].reasoningParts.join(''), en.reasoning);
    assert.ok(peakRate(page.setDataCalls.slice(second + 1)) <= 21);

    // What the render layer shows for the final data.
    const shown = renderedAnswers(page.data);
    if (shown !== null) assert.deepEqual(shown, [1, 3].map((i) => 'wx-chunkwise-markdown#md-' + page.data.msgs[i].key));
    assert.deepEqual(ps.sandbox.errors, []);
    assert.deepEqual(ps.warnings, []);
  } finally {
    ps.close();
  }
});

test('the page follows the typing answer until the reader scrolls up, and again once back at the bottom', async () => {
  const ps = newSandbox({});
  try {
    const page = await openChat(ps);
    await ask(ps, page, ZH);
    await ps.waitFor(() => ps.scrolls.length >= 2, 30000, 'the page following the answer');
    // The reader scrolls down with the answer, then up by more than the slack.
    page.onPageScroll({ scrollTop: 900 });
    page.onPageScroll({ scrollTop: 600 });
    const before = ps.scrolls.length;
    await ps.waitFor(() => !page.data.busy, 60000, 'the answer');
    assert.equal(ps.scrolls.length, before, 'no pageScrollTo while the reader reads above (not even at the end)');
    // Back at the bottom: the next answer is followed again.
    page.onPageScroll({ scrollTop: 950 });
    await ask(ps, page, EN);
    await ps.waitFor(() => ps.scrolls.length > before, 30000, 'following again');
    await ps.waitFor(() => !page.data.busy, 60000, 'the second answer');
  } finally {
    ps.close();
  }
});

test('requests cut by the wx.request cap (60 s, here 1.2 s) resume: nothing lost, nothing repeated', async () => {
  const ps = newSandbox({ maxTimeoutMs: 1200, network: { split: { seed: 7, maxBytes: 64 } } });
  try {
    const page = await openChat(ps);
    await ask(ps, page, ZH);
    await ps.waitFor(() => !page.data.busy, 60000, 'the answer');
    const zh = await expectedAnswer([{ role: 'user', content: ZH }]);
    const a = page.data.msgs[1];
    assert.equal(a.error, '');
    assert.equal(page.textOf(a), zh.text);
    assert.deepEqual(blocksOf(answerOf(page, 1)), JSON.parse(JSON.stringify(markdownOneShot(zh.text, { patches: 'children' }))));
    assert.equal(a.reasoningParts.join(''), zh.reasoning);
    const cuts = ps.sandbox.requests.filter((r) => r.outcome === 'fail: timeout');
    const resumes = ps.requestLog.filter((r) => r.method === 'GET' && /\/v1\/chat\/stream\/[^/?]+\?after=\d+$/.test(r.url));
    assert.ok(cuts.length >= 1, 'the stream was cut at least once');
    assert.ok(resumes.length >= cuts.length, `${resumes.length} resumes for ${cuts.length} cuts`);
    // Each resume continues after a later event than the one before.
    const afters = resumes.map((r) => Number(/after=(\d+)/.exec(r.url)[1]));
    for (let i = 1; i < afters.length; i++) assert.ok(afters[i] > afters[i - 1], afters.join(','));
    assert.equal(resumes[0].header['last-event-id'], String(afters[0]));
  } finally {
    ps.close();
  }
});

test('to the background and back: the interrupted request resumes on onShow', async () => {
  const ps = newSandbox({ backgroundKillMs: 300, network: { split: { seed: 3, maxBytes: 32 } } });
  try {
    const page = await openChat(ps);
    await ask(ps, page, ZH);
    await ps.waitFor(() => page.data.msgs[1].answering, 30000, 'some answer text');
    ps.hide();
    await ps.waitFor(() => page.data.msgs[1].status === 'paused', 5000, 'the paused status');
    assert.equal(page.data.msgs[1].statusText, '已暂停，回到前台后继续');
    const requestsWhileHidden = ps.requestLog.filter((r) => r.hidden).length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(ps.requestLog.filter((r) => r.hidden).length, requestsWhileHidden, 'no retry loop in the background');
    assert.ok(ps.sandbox.requests.some((r) => r.outcome === 'abort'), 'the platform killed the request');
    ps.show();
    await ps.waitFor(() => !page.data.busy, 60000, 'the answer');
    const zh = await expectedAnswer([{ role: 'user', content: ZH }]);
    assert.equal(page.data.msgs[1].error, '');
    assert.equal(page.textOf(page.data.msgs[1]), zh.text);
    assert.equal(page.data.msgs[1].reasoningParts.join(''), zh.reasoning);
    assert.ok(ps.requestLog.some((r) => r.method === 'GET' && r.url.includes('/v1/chat/stream/') && !r.hidden));
  } finally {
    ps.close();
  }
});

test('stop: aborts the request and the relay cancels the generation', async () => {
  const ps = newSandbox();
  try {
    const page = await openChat(ps);
    await ask(ps, page, ZH);
    await ps.waitFor(() => page.data.msgs[1].answering, 30000, 'some answer text');
    ps.tap(page, 'onStop');
    assert.equal(page.data.busy, false);
    const a = page.data.msgs[1];
    assert.equal(a.status, 'stopped');
    assert.equal(a.statusText, '已停止');
    const cancel = ps.requestLog.find((r) => r.method === 'POST' && /\/v1\/chat\/stream\/[^/]+\/cancel$/.test(r.url));
    assert.ok(cancel, 'the cancel request');
    const id = /\/stream\/([^/]+)\/cancel$/.exec(cancel.url)[1];
    await ps.waitFor(() => ps.sandbox.requests.some((r) => r.url === cancel.url && r.outcome === 'ok'), 5000, 'the cancel to complete');
    // The relay stopped the generation: its log ends with finish_reason "cancelled", short of
    // the full answer, and it already shows everything the page showed.
    const log = await generationLog(id);
    const zh = await expectedAnswer([{ role: 'user', content: ZH }]);
    assert.equal(log.finishReason, 'cancelled');
    assert.ok(log.content.length < zh.text.length, 'cancelled before the end');
    assert.ok(page.textOf(a).length > 0 && log.content.startsWith(page.textOf(a)), 'the page shows a prefix of what the relay produced');
    // Nothing moves after stop.
    const calls = page.setDataCalls.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(page.setDataCalls.length, calls);
  } finally {
    ps.close();
  }
});

test('errors show with a retry: a refused connection, then an HTTP 400 with the relay message', async () => {
  const ps = newSandbox({ network: { errorStatusNoChunks: false } });
  try {
    const page = await openChat(ps);
    // 1. Nothing listens on the configured address: the error shows, retry works once fixed.
    ps.app.globalData.relay = `http://127.0.0.1:${relay.port === 1 ? 2 : 1}`;
    await ask(ps, page, 'hello');
    await ps.waitFor(() => !page.data.busy, 10000, 'the error');
    assert.match(page.data.msgs[1].error, /request:fail/);
    assert.equal(page.data.msgs[1].status, 'error');
    ps.app.globalData.relay = relay.base;
    ps.tap(page, 'onRetry', { index: 1 });
    await ps.waitFor(() => !page.data.busy, 60000, 'the retried answer');
    const en = await expectedAnswer([{ role: 'user', content: 'hello' }]);
    assert.equal(page.data.msgs[1].error, '');
    assert.equal(page.textOf(page.data.msgs[1]), en.text);
    assert.deepEqual(blocksOf(answerOf(page, 1)), JSON.parse(JSON.stringify(markdownOneShot(en.text, { patches: 'children' }))), 'the retry starts the component over');

    // 2. A message over the relay's limit (3000 characters here): 400 and its message.
    await ask(ps, page, 'x'.repeat(3001));
    await ps.waitFor(() => !page.data.busy, 10000, 'the 400');
    assert.match(page.data.msgs[3].error, /3001 characters, more than this relay's limit of 3000/);
    assert.match(page.data.msgs[3].error, /HTTP 400/);
  } finally {
    ps.close();
  }
});

test('PC WeChat: onChunkReceived never fires, the success body is decoded at once', async () => {
  const ps = newSandbox({ network: { successOnly: true } });
  try {
    const page = await openChat(ps);
    await ask(ps, page, ZH);
    await ps.waitFor(() => !page.data.busy, 60000, 'the answer');
    const zh = await expectedAnswer([{ role: 'user', content: ZH }]);
    assert.equal(page.data.msgs[1].error, '');
    assert.equal(page.textOf(page.data.msgs[1]), zh.text);
    assert.equal(page.data.msgs[1].reasoningParts.join(''), zh.reasoning);
    assert.ok(ps.sandbox.requests.every((r) => r.chunks === 0));
  } finally {
    ps.close();
  }
});

test('the 4xx quirk (no chunk, success data ""): the status alone still makes a clear error', async () => {
  const ps = newSandbox({ network: { errorStatusNoChunks: true } });
  try {
    const page = await openChat(ps);
    await ask(ps, page, 'y'.repeat(3001));
    await ps.waitFor(() => !page.data.busy, 10000, 'the error');
    assert.equal(page.data.msgs[1].error, 'HTTP 400');
    assert.equal(page.data.msgs[1].status, 'error');
  } finally {
    ps.close();
  }
});

test('the demo package loads its chunkwise build from miniprogram_npm, as DevTools places it', () => {
  const lib = fs.readFileSync(path.join(DEMO, 'lib', 'chunkwise.js'), 'utf8');
  assert.match(lib, /require\('\.\.\/miniprogram_npm\/chunkwise\/index\.js'\)/);
  for (const f of ['index.js', 'client.js', 'chunkwise.wasm.br']) assert.ok(fs.existsSync(path.join(DEMO, 'miniprogram_npm', 'chunkwise', f)), f);
});
