#!/usr/bin/env node
'use strict';
// What crosses setData while an answer streams into a mini-program page, in one run.
//
//   node bench/setdata.js            (pkg/ built and tests/js/node_modules installed)
//
// Each page runs in tests/js/mp-page-sandbox.js (the phone's logic layer: no TextDecoder or
// WebAssembly, WXWebAssembly by path; setData applies path keys and records the JSON of every
// call). The answer is bench/corpus/answer-zh.md (23.5 KB of Chinese with code blocks and
// tables), sent as OpenAI SSE events of 2 characters, one event per 50 ms of a virtual clock
// (the page's timers and Date.now run on it): with the default typewriter (40 characters a
// second, a timer every 50 ms) a tick shows 2 characters.
//   total:  the bytes of every setData call's JSON, against the JSON of the final page data;
//           target ≤ 4×.
//   max:    the largest single call; target ≤ 2 KB.
//   keys:   the path keys alone (each with its quotes and colon), against the same final data:
//           what one setData per tick cannot avoid; and the plain-text floor (each tick's key
//           and the two characters it adds).
// Pages:
//   whole text per tick   the README's example before view.setData: `setData({'msgs[0].text':
//                         shown += more})` (the anchor)
//   README example        the README's mini-program example as written (view.setData: parts)
//   partLength: 16        the same with shorter parts (smaller ticks, more text nodes)
//   Markdown              streamChat with a MarkdownRenderer, view.setData (blocks), in both
//                         of the renderer's patch modes
//   the demo page         miniprogram-demo as it is: view.setData for the reasoning and the
//                         status, view.delta appended to its chunkwise-markdown component
//                         (the page's and the component's setData both counted)
// Results: a Markdown report printed and written to bench/results/setdata.md.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const PKG = path.join(ROOT, 'pkg', 'miniprogram');
const { createPageSandbox, preparePackage } = require(path.join(ROOT, 'tests', 'js', 'mp-page-sandbox.js'));
const ANSWER = fs.readFileSync(path.join(ROOT, 'bench', 'corpus', 'answer-zh.md'), 'utf8');
const TICK_MS = 50;
const URL = 'https://your.domain/v1/chat/completions';

const WHOLE_TEXT_PAGE = `
const { init, StreamDecoder } = require('chunkwise');
Page({
  data: { msgs: [{ role: 'assistant', text: '' }] },
  async ask(messages) {
    await init();
    const i = this.data.msgs.length - 1;
    const decoder = new StreamDecoder({ format: 'openai' });
    let shown = '', done = false;
    const timer = setInterval(() => {
      const more = decoder.tick(Date.now());
      if (more) this.setData({ [\`msgs[\${i}].text\`]: (shown += more) });
      if (done && decoder.pending === 0) { clearInterval(timer); decoder.free(); this.finished = true; }
    }, 50);
    const task = wx.request({
      url: '${URL}', method: 'POST',
      enableChunked: true, responseType: 'arraybuffer',
      data: { model: 'demo', stream: true, messages },
      complete: () => { done = decoder.finish().done; },
    });
    task.onChunkReceived((res) => { decoder.push(res.data); });
  },
});
`;

const markdownPage = (options) => `
const { init, streamChat } = require('chunkwise');
const markdown = require('chunkwise/markdown.js');
Page({
  data: { msgs: [{ role: 'assistant', blocks: [] }] },
  async ask(messages) {
    await Promise.all([init(), markdown.init()]);
    const i = this.data.msgs.length - 1;
    this.task = streamChat({
      request: wx.request,
      url: '${URL}',
      body: { model: 'demo', messages },
      markdown: new markdown.MarkdownRenderer(${JSON.stringify(options)}),
      onUpdate: (view) => this.setData(view.setData(\`msgs[\${i}]\`)),
      onDone: () => { this.finished = true; },
    });
  },
});
`;

/** The README's mini-program example, as tests/js/readme-example.test.js finds it. */
function readmePage() {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const page = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]).find((b) => b.includes('Page(') && b.includes('streamChat'));
  if (!page) throw new Error('README.md has no mini-program example');
  // The benchmark learns the end from the page's status; the example itself needs nothing else.
  return page;
}

/** SSE events of the answer, 2 characters (code points) each, then the end. */
function events(text) {
  const chars = Array.from(text);
  const out = [];
  for (let i = 0; i < chars.length; i += 2) {
    out.push('data: ' + JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: chars.slice(i, i + 2).join('') }, finish_reason: null }] }) + '\n\n');
  }
  out.push('data: {"id":"chatcmpl-bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n');
  return out;
}

function makePackage(pages) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-setdata-'));
  const npm = path.join(dir, 'miniprogram_npm', 'chunkwise');
  fs.mkdirSync(npm, { recursive: true });
  for (const f of fs.readdirSync(PKG)) fs.copyFileSync(path.join(PKG, f), path.join(npm, f));
  for (const [name, source] of Object.entries(pages)) {
    fs.mkdirSync(path.join(dir, 'pages', name), { recursive: true });
    fs.writeFileSync(path.join(dir, 'pages', name, name + '.js'), source);
  }
  fs.writeFileSync(path.join(dir, 'app.js'), 'App({});\n');
  return dir;
}

/**
 * Runs page `name` on a virtual clock: its timers and Date.now are the sandbox's own, driven
 * here tick by tick; wx.request is answered from `events`, one per tick.
 */
async function runPage(dir, name, demo) {
  const components = (page, selector) => (demo && /^#md-/.test(selector) ? 'components/chunkwise-markdown/chunkwise-markdown' : null);
  const ps = createPageSandbox({ packageRoot: dir, quiet: true, components });
  const ctx = ps.sandbox.context;
  let now = 1_000_000;
  const realNow = Date.now;
  ps.sandbox.run('Date').now = () => now;
  const timers = new Map();
  let nextId = 1;
  ctx.setInterval = (fn, ms) => (timers.set(nextId, { fn, every: Math.max(1, ms), at: now + ms, repeat: true }), nextId++);
  ctx.setTimeout = (fn, ms) => (timers.set(nextId, { fn, every: 0, at: now + (ms || 0), repeat: false }), nextId++);
  ctx.clearInterval = ctx.clearTimeout = (id) => timers.delete(id);
  const body = events(ANSWER);
  let request = null;
  const ArrayBufferOf = ps.sandbox.run('ArrayBuffer');
  ctx.wx.request = (opts) => {
    request = { opts, chunkCbs: [], headerCbs: [], sent: 0, over: false };
    const r = request;
    return {
      abort() {
        if (!r.over && opts.fail) opts.fail({ errMsg: 'request:fail abort' });
        r.over = true;
      },
      onChunkReceived: (cb) => r.chunkCbs.push(cb),
      onHeadersReceived: (cb) => r.headerCbs.push(cb),
      offChunkReceived() {},
      offHeadersReceived() {},
    };
  };
  ps.launch();
  const page = ps.open('pages/' + name + '/' + name);
  if (demo) {
    await ps.waitFor(() => page.data.ready, 10000, 'the wasm to load');
    ps.input(page, 'onInput', '讲讲流式解码');
    ps.tap(page, 'onSend');
  } else {
    await page.ask([{ role: 'user', content: '讲讲流式解码' }]);
  }
  if (request === null) throw new Error(name + ': no request');
  const ask = demo ? page.setDataCalls.length : 0; // the demo's own calls before the answer
  if (demo) {
    // On a phone the component exists (and loads its wasm) while the request starts.
    const md = page.selectComponent('#md-' + page.data.msgs[1].key);
    await ps.waitFor(() => md._renderer, 10000, 'the Markdown wasm to load');
  }
  for (const cb of request.headerCbs) cb({ statusCode: 200, header: { 'content-type': 'text/event-stream' } });
  const started = realNow();
  const answer = demo ? 1 : 0;
  const over = () => page.finished || page.data.msgs[answer].status === 'done';
  for (let guard = 0; guard < 100000 && !over(); guard++) {
    now += TICK_MS;
    if (request.sent < body.length) {
      const bytes = Buffer.from(body[request.sent++]);
      const ab = new ArrayBufferOf(bytes.length);
      new Uint8Array(ab).set(bytes);
      for (const cb of request.chunkCbs) cb({ data: ab });
      if (request.sent === body.length && !request.over) {
        request.over = true;
        const res = { statusCode: 200, data: new ArrayBufferOf(0), header: {}, errMsg: 'request:ok' };
        if (request.opts.success) request.opts.success(res);
        if (request.opts.complete) request.opts.complete(res);
      }
    }
    for (const [id, t] of [...timers]) {
      if (!timers.has(id) || t.at > now) continue;
      if (t.repeat) t.at += t.every;
      else timers.delete(id);
      t.fn();
    }
    if (realNow() - started > 120000) throw new Error(name + ': did not finish in 2 minutes');
  }
  // Markdown renders in a component: let it finish loading and rendering (real time).
  if (demo) await new Promise((r) => setTimeout(r, 200));
  const parts = [page].concat(page.components ? [...page.components.values()] : []);
  const calls = [].concat(...parts.map((p) => (p === page ? p.setDataCalls.slice(ask) : p.setDataCalls))).filter((c) => p0(c));
  const total = calls.reduce((n, c) => n + c.bytes, 0);
  const max = calls.reduce((n, c) => Math.max(n, c.bytes), 0);
  // (what no setData of this shape can avoid: each key, with its quotes and colon)
  const keys = calls.reduce((n, c) => n + Object.keys(c.patch).reduce((m, k) => m + Buffer.byteLength(JSON.stringify(k)) + 1, 0), 0);
  const final = parts.reduce((n, p) => n + Buffer.byteLength(JSON.stringify(p.data)), 0);
  const m = page.data.msgs[answer];
  const shown = demo ? page.textOf(m) : m.textParts !== undefined ? m.textParts.join('') : m.text;
  ps.close();
  return { calls: calls.length, total, max, final, keys, shown };
}

/** The bytes of `{"msgs[0].textParts[k]":"…"}` holding only each tick's 2 new characters, parts of `n` units. */
function floor(n) {
  const chars = Array.from(ANSWER);
  let bytes = 0;
  let part = 0;
  let inPart = 0;
  for (let i = 0; i < chars.length; i += 2) {
    const add = chars.slice(i, i + 2).join('');
    if (inPart >= n) {
      part++;
      inPart = 0;
    }
    inPart += add.length;
    bytes += Buffer.byteLength(JSON.stringify({ [`msgs[0].textParts[${part}]`]: add }));
  }
  return bytes;
}

/** A call that carries the answer (not the input box or the busy flag of the demo). */
function p0(c) {
  return Object.keys(c.patch).some((k) => !/^(input|busy|ready)$/.test(k));
}

function kb(n) {
  return n >= 1e6 ? (n / 1e6).toFixed(1) + ' MB' : (n / 1000).toFixed(1) + ' KB';
}

async function main() {
  if (!fs.existsSync(path.join(PKG, 'index.js'))) throw new Error('pkg/miniprogram is not built: run ./build.sh first');
  const readme = readmePage();
  const dir = makePackage({
    whole: WHOLE_TEXT_PAGE,
    readme,
    parts16: readme.replace('body: {', 'partLength: 16, body: {'),
    markdown: markdownPage({}),
    blocks: markdownPage({ patches: 'blocks' }),
  });
  try {
    const rows = [];
    const pages = [
      ['whole', 'whole text per tick (the README example before)'],
      ['readme', 'README example (view.setData: text parts of 32)'],
      ['parts16', 'README example with partLength: 16'],
      ['markdown', 'streamChat + MarkdownRenderer() (view.setData: its patches)'],
      ['blocks', "streamChat + MarkdownRenderer({patches: 'blocks'})"],
    ];
    for (const [name, label] of pages) {
      const r = await runPage(dir, name, false);
      if (!['markdown', 'blocks'].includes(name) && r.shown !== ANSWER) throw new Error(`${name}: the page does not show the answer`);
      rows.push({ label, ...r });
    }
    const demo = preparePackage(path.join(ROOT, 'miniprogram-demo'));
    try {
      const r = await runPage(demo.dir, 'chat', true);
      if (r.shown !== ANSWER) throw new Error('the demo page does not hold the answer');
      rows.push({ label: 'the demo page (view.setData + chunkwise-markdown fed view.delta)', ...r });
    } finally {
      demo.remove();
    }
    const readmeRow = rows.find((r) => r.label.startsWith('README example ('));
    const lines = [
      `answer: bench/corpus/answer-zh.md, ${Buffer.byteLength(ANSWER)} bytes, ${Array.from(ANSWER).length} characters, 2 a tick`,
      '',
      '| page | setData calls | total | final page data | total / final (target ≤ 4×) | path keys alone / final | max call (target ≤ 2 KB) |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map((r) => `| ${r.label} | ${r.calls} | ${kb(r.total)} | ${kb(r.final)} | ${(r.total / r.final).toFixed(2)}× | ${(r.keys / r.final).toFixed(1)}× | ${r.max} B |`),
      '',
      `Plain text floor: one setData per 2-character tick carries at least its path key and the characters it adds: ${kb(floor(32))} = ${(floor(32) / readmeRow.final).toFixed(1)}× the README page's final data (parts of 32).`,
    ];
    const report = lines.join('\n') + '\n';
    process.stdout.write('\n' + report);
    fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'setdata.md'), report);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
