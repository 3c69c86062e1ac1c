'use strict';
// The public JS API across the three builds (pkg/node, pkg/web, pkg/miniprogram in the
// mini-program sandbox): identical Updates for the same input, the Update shape, pacing
// (tick/pending/skip), free/reset, FORMATS and DEFAULT_PACE against the Rust source, and the
// TypeScript declarations under `tsc --strict`.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const vm = require('node:vm');
const { execFileSync } = require('node:child_process');
const { pathToFileURL } = require('node:url');
const { createSandbox } = require('./mp-sandbox');
const { ROOT, fixturesOrFail, longChineseText, dirtyBytes, sseBody, hexRecordsBody, plain, splitBytes, firstDiff } = require('./helpers');

const PKG = path.join(ROOT, 'pkg');
const UPDATE_KEYS = ['done', 'error', 'errors', 'events', 'finishReason', 'reasoning', 'text', 'usage'];

const builds = {}; // name -> the module's exports
let server;

test.before(async () => {
  builds.node = require(path.join(PKG, 'node', 'index.js'));
  await builds.node.init();

  // The browser build fetches its wasm: serve pkg/web on 127.0.0.1 (Node's fetch has no file: URLs).
  server = http.createServer((req, res) => {
    const file = path.join(PKG, 'web', path.basename(new URL(req.url, 'http://x').pathname));
    if (!fs.existsSync(file)) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript' });
    res.end(fs.readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  builds.web = await import(pathToFileURL(path.join(PKG, 'web', 'index.js')).href);
  const wasmUrl = `http://127.0.0.1:${server.address().port}/chunkwise_glue_bg.wasm`;
  await Promise.all([builds.web.init({ wasmUrl }), builds.web.init({ wasmUrl })]);
  await builds.web.init({ wasmUrl });

  const sb = createSandbox({ packageRoot: path.join(PKG, 'miniprogram') });
  builds.miniprogram = sb.require('/index.js');
  await builds.miniprogram.init({ wasmPath: '/chunkwise.wasm.br' });
});
test.after(() => server && server.close());

/** Every Update (and tick output) of one run, as host-realm plain values. */
function runBuild(cw, options, pieces, tickEvery) {
  const d = new cw.StreamDecoder(options);
  const out = [];
  let now = 1000;
  for (const p of pieces) {
    out.push(plain(d.push(p)));
    if (tickEvery) out.push({ tick: d.tick((now += tickEvery)), pending: d.pending });
  }
  out.push(plain(d.finish()));
  if (tickEvery) {
    for (let i = 0; i < 200 && d.pending > 0; i++) out.push({ tick: d.tick((now += tickEvery)), pending: d.pending });
    out.push({ skip: d.skip() });
  }
  d.free();
  return out;
}

function inputs() {
  const list = [];
  for (const fx of fixturesOrFail()) list.push({ name: fx.name, options: { format: fx.expected.format, pace: false }, body: fx.body });
  const zh = longChineseText(20000, 7);
  list.push({ name: 'text zh', options: { format: 'text' }, body: Buffer.from(zh), tickEvery: 16 });
  list.push({ name: 'text dirty', options: { format: 'text', pace: false }, body: dirtyBytes() });
  list.push({ name: 'sse', options: { format: 'sse', pace: false }, body: sseBody() });
  list.push({ name: 'hex-records', options: { format: 'hex-records', pace: { cps: 200 } }, body: hexRecordsBody(zh), tickEvery: 33 });
  const lines = zh.split('\n').map((t, i) => JSON.stringify({ i, t })).join('\n') + '\n{"broken":\n';
  list.push({ name: 'ndjson', options: { format: 'ndjson', pace: false }, body: Buffer.from(lines) });
  list.push({ name: 'openai tiny buffer', options: { format: 'openai', pace: false, maxBufferBytes: 64 }, body: Buffer.from('data: {"choices":[{"delta":{"content":"' + 'x'.repeat(100) + '"}}]}\n\ndata: {"choices":[{"delta":{"content":"ok"}}]}\n\ndata: {bad json}\n\ndata: [DONE]\n\n') });
  const cumulative = ['你', '你好', '你好，世', '你好，世界！'].map((t) => 'data: ' + JSON.stringify({ output: { text: t } }) + '\n\n').join('');
  list.push({ name: 'dashscope cumulative', options: { format: 'dashscope', cumulative: true, pace: false }, body: Buffer.from(cumulative) });
  return list;
}

test('the Node, web and mini-program builds give identical Updates for the same input', () => {
  const list = inputs();
  assert.ok(list.length >= 8);
  let compared = 0;
  for (const input of list) {
    for (const [seed, max] of [[1, 3], [2, 64], [3, 4096]]) {
      const pieces = splitBytes(input.body, seed, max);
      const node = runBuild(builds.node, input.options, pieces, input.tickEvery);
      const web = runBuild(builds.web, input.options, pieces, input.tickEvery);
      const mini = runBuild(builds.miniprogram, input.options, pieces.map((p) => new Uint8Array(p)), input.tickEvery);
      assert.deepEqual(web, node, `[${input.name}] seed ${seed}: web differs from node`);
      assert.deepEqual(mini, node, `[${input.name}] seed ${seed}: miniprogram differs from node`);
      compared += node.length;
    }
  }
  assert.ok(compared > 1000);
});

test('the merged text of the builds is the input text (identical is not enough: it must be right)', () => {
  const zh = longChineseText(20000, 7);
  for (const name of Object.keys(builds)) {
    const d = new builds[name].StreamDecoder({ pace: false });
    let text = '';
    for (const p of splitBytes(Buffer.from(zh), 11, 5)) text += d.push(new Uint8Array(p)).text;
    text += d.finish().text;
    assert.ok(text === zh, `${name}: ${firstDiff(text, zh)}`);
  }
});

test('the Update shape is exactly the declared one, on the fast path and the full path', () => {
  for (const name of Object.keys(builds)) {
    const { StreamDecoder } = builds[name];
    const check = (u, what) => {
      assert.deepEqual(Object.keys(u).sort(), UPDATE_KEYS, `${name} ${what}: keys`);
      assert.equal(typeof u.text, 'string');
      assert.equal(typeof u.reasoning, 'string');
      assert.equal(typeof u.done, 'boolean');
      assert.ok(u.finishReason === null || typeof u.finishReason === 'string');
      assert.ok(u.usage === null || (typeof u.usage === 'object' && !Array.isArray(u.usage)));
      assert.ok(Array.isArray(u.errors) && Array.isArray(u.events));
      assert.equal(u.error, u.errors.length ? u.errors[0] : null, `${name} ${what}: error is the first of errors`);
      for (const e of u.errors) {
        assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'type']);
        assert.equal(typeof e.type, 'string');
        assert.equal(typeof e.message, 'string');
      }
      for (const e of u.events) {
        assert.deepEqual(Object.keys(e).sort(), ['data', 'event', 'id']);
        for (const k of ['data', 'event', 'id']) assert.equal(typeof e[k], 'string');
      }
    };
    const text = new StreamDecoder({ pace: false });
    let u = text.push(Buffer.from('纯文本'));
    check(u, 'text');
    assert.equal(u.text, '纯文本');
    assert.deepEqual([u.reasoning, u.done, u.finishReason, u.usage, u.error, u.errors.length, u.events.length], ['', false, null, null, null, 0, 0]);
    u = text.push(new ArrayBuffer(0));
    check(u, 'empty push');
    assert.equal(u.text, '');
    u = text.finish();
    check(u, 'finish');
    assert.equal(u.done, true);

    const oa = new StreamDecoder({ format: 'openai', pace: false });
    const body =
      'data: {"choices":[{"delta":{"role":"assistant","reasoning_content":"想一想"}}]}\n\n' +
      'data: {"choices":[{"delta":{"content":"答案"},"finish_reason":"stop"}]}\n\n' +
      'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n' +
      'data: {"error":{"message":"overloaded","type":"server_error","code":529}}\n\n' +
      'data: [DONE]\n\n';
    u = oa.push(Buffer.from(body));
    check(u, 'openai');
    assert.deepEqual(plain(u), {
      text: '答案',
      reasoning: '想一想',
      done: true,
      finishReason: 'stop',
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
      error: { type: 'server_error', message: 'overloaded', code: 529 },
      errors: [{ type: 'server_error', message: 'overloaded', code: 529 }],
      events: [],
    });
    u = oa.finish();
    check(u, 'openai finish');
    assert.equal(u.done, true);

    const sse = new StreamDecoder({ format: 'sse', pace: false });
    u = sse.push(Buffer.from('event: a\nid: 1\ndata: x\ndata: y\n\ndata: z\n\n'));
    check(u, 'sse');
    assert.deepEqual(plain(u.events), [{ event: 'a', data: 'x\ny', id: '1' }, { event: 'message', data: 'z', id: '1' }]);
    assert.equal(u.text, '');

    const limit = new StreamDecoder({ format: 'openai', pace: false, maxBufferBytes: 64 });
    u = limit.push(Buffer.from('data: {"choices":[{"delta":{"content":"' + '长'.repeat(40) + '"}}]}\n\ndata: {oops\n\ndata: {"choices":[{"delta":{"content":"ok"}}]}\n\n'));
    check(u, 'errors');
    assert.equal(u.text, 'ok', `${name}: decoding goes on after a bad line`);
    assert.deepEqual(plain(u.errors.map((e) => e.type)), ['buffer_limit', 'bad_event']);
  }
});

test('events: raw events for sse and ndjson only; provider and text formats give none', () => {
  const { StreamDecoder } = builds.node;
  const nd = new StreamDecoder({ format: 'ndjson', pace: false });
  const u = nd.push(Buffer.from('{"a":1}\n\n{"b":"二"}\r\n'));
  assert.deepEqual(plain(u.events), [{ event: 'message', data: '{"a":1}', id: '' }, { event: 'message', data: '{"b":"二"}', id: '' }]);
  for (const format of ['text', 'hex-records', 'openai', 'anthropic']) {
    const d = new StreamDecoder({ format, pace: false });
    const r = d.push(Buffer.from('event: message\ndata: {"choices":[]}\n\n'));
    assert.deepEqual(r.events, [], format);
  }
});

test('lastEventId: the last SSE id seen, across splits, in every build', () => {
  const body = Buffer.from('id: 1\ndata: {"choices":[{"delta":{"content":"一"}}]}\n\nid: gen-7:42\ndata: {"choices":[{"delta":{"content":"二"}}]}\n\ndata: {"choices":[{"delta":{"content":"三"}}]}\n\nid: 9\n');
  for (const name of Object.keys(builds)) {
    for (const [seed, max] of [[1, 1], [2, 9], [3, 500]]) {
      const d = new builds[name].StreamDecoder({ format: 'openai', pace: false });
      assert.equal(d.lastEventId, '');
      let text = '';
      for (const p of splitBytes(body, seed, max)) text += d.push(new Uint8Array(p)).text;
      assert.equal(text, '一二三');
      assert.equal(d.lastEventId, 'gen-7:42', `${name} seed ${seed}: the id of the unfinished last event is not taken`);
      d.reset();
      assert.equal(d.lastEventId, '', `${name}: reset clears it`);
      d.free();
    }
  }
});

test('what init() decodes to warm the engine leaves nothing behind: new decoders start empty, in every build', () => {
  // init() decodes an OpenAI stream (response id "c", "stop", usage) and text cut inside a
  // character on throwaway decoders; none of it may show in the user's decoders.
  for (const name of Object.keys(builds)) {
    const cw = builds[name];
    const d = new cw.StreamDecoder({ format: 'openai', pace: false });
    assert.equal(d.responseId, null, name);
    assert.equal(d.lastEventId, '', name);
    assert.deepEqual(plain(d.push(new Uint8Array(Buffer.from('data: {"choices":[{"delta":{"content":"一"}}]}\n\n')))).text, '一', name);
    const end = plain(d.finish());
    assert.deepEqual([end.text, end.finishReason, end.usage, end.errors.length], ['', null, null, 0], name);
    d.free();
    const t = new cw.StreamDecoder({ format: 'text', pace: false });
    // A continuation byte first: a held lead byte from earlier would complete it.
    assert.equal(t.push(new Uint8Array([0xa5, 0xbd, 0x41])).text, '\ufffd\ufffdA', name);
    t.free();
    const p = new cw.StreamDecoder({ format: 'openai', pacedUpdateText: false });
    assert.equal(p.pending, 0, name);
    assert.equal(p.skip(), '', name);
    p.free();
  }
});

// ---- pacing ---------------------------------------------------------------------------------

const segmenter = new Intl.Segmenter('und', { granularity: 'grapheme' });
const graphemes = (s) => [...segmenter.segment(s)].map((x) => x.segment);
// Emoji families, flags, skin tones, combining marks, CRLF, CJK: no Indic conjuncts (GB9c
// support differs between ICU versions, and ICU is the oracle here).
const PACE_TEXT = '你好，世界！👨‍👩‍👧‍👦🇨🇳🇯🇵 e\u0301 n\u0303 👍🏽 🏳️‍🌈\r\n第二行 English words. '.repeat(20);

test('tick never splits a grapheme cluster; ticks + skip give back exactly the text', () => {
  for (const name of Object.keys(builds)) {
    const { StreamDecoder } = builds[name];
    const bytes = Buffer.from(PACE_TEXT);
    const boundaries = new Set([0]);
    let at = 0;
    for (const g of graphemes(PACE_TEXT)) boundaries.add((at += g.length));
    for (const [seed, max] of [[1, 1], [2, 7], [3, 40]]) {
      const d = new StreamDecoder({ pace: { cps: 120 } });
      let shown = '';
      let now = 0;
      for (const p of splitBytes(bytes, seed, max)) {
        d.push(new Uint8Array(p));
        const t = d.tick((now += 16));
        shown += t;
        assert.ok(boundaries.has(shown.length), `${name} seed ${seed}: a tick ended inside a cluster at ${shown.length}: ${JSON.stringify(shown.slice(-12))}`);
      }
      d.finish();
      for (let i = 0; i < 10 && d.pending > 0; i++) {
        shown += d.tick((now += 200));
        assert.ok(boundaries.has(shown.length), `${name}: a tick ended inside a cluster`);
      }
      shown += d.skip();
      assert.ok(shown === PACE_TEXT, `${name} seed ${seed}: ${firstDiff(shown, PACE_TEXT)}`);
      assert.equal(d.pending, 0);
      assert.equal(d.tick((now += 1000)), '');
    }
  }
});

test('pacedUpdateText: false: paced pushes give text "" and count what they queued; ticks + skip give back exactly the text', () => {
  for (const name of Object.keys(builds)) {
    const { StreamDecoder } = builds[name];
    const bytes = Buffer.from(PACE_TEXT);
    for (const [seed, max] of [[4, 1], [5, 7], [6, 40]]) {
      const d = new StreamDecoder({ pace: { cps: 120 }, pacedUpdateText: false });
      let shown = '';
      let queued = 0;
      let now = 0;
      for (const p of splitBytes(bytes, seed, max)) {
        const u = d.push(new Uint8Array(p));
        assert.equal(u.text, '', `${name}: a paced update carries no text with pacedUpdateText: false`);
        queued += u.queued;
        shown += d.tick((now += 16));
      }
      const end = d.finish();
      assert.equal(end.text, '');
      queued += end.queued || 0;
      shown += d.skip();
      assert.equal(queued, bytes.length, `${name} seed ${seed}: queued counts every byte of text`);
      assert.ok(shown === PACE_TEXT, `${name} seed ${seed}: ${firstDiff(shown, PACE_TEXT)}`);
    }
    // The default still carries the text in the update.
    const d = new StreamDecoder({ pace: { cps: 120 } });
    assert.equal(d.push(new Uint8Array(bytes)).text, PACE_TEXT);
    d.free();
  }
});

test('pending counts grapheme clusters; ticks show about cps per second while the backlog is small', () => {
  for (const name of Object.keys(builds)) {
    const { StreamDecoder } = builds[name];
    const d = new StreamDecoder({ pace: { cps: 40, maxLagMs: 1500, drainMs: 1000 } });
    d.push(Buffer.from(PACE_TEXT));
    d.finish();
    assert.equal(d.pending, graphemes(PACE_TEXT).length, `${name}: pending after finish = every cluster`);
    d.free();

    const small = '春眠不觉晓处处闻啼鸟夜来风雨声花落知多少'; // 20 clusters: under cps × maxLag
    const e = new StreamDecoder({ pace: { cps: 40, maxLagMs: 1500, drainMs: 1000 } });
    e.push(Buffer.from(small + '。'));
    let shown = '';
    let pendingBefore = e.pending;
    for (let now = 0; now <= 250; now += 10) {
      const t = e.tick(now);
      shown += t;
      assert.equal(pendingBefore - e.pending, graphemes(t).length, `${name}: pending drops by the clusters shown`);
      pendingBefore = e.pending;
    }
    // 250 ms at 40/s = 10, plus the first cluster at once
    assert.ok(graphemes(shown).length >= 9 && graphemes(shown).length <= 12, `${name}: ${graphemes(shown).length} clusters in 250 ms`);
    assert.ok(small.startsWith(shown));
  }
});

test('a big backlog is caught up within maxLagMs, and the end drains within drainMs', () => {
  for (const name of Object.keys(builds)) {
    const { StreamDecoder } = builds[name];
    const big = '天地玄黄宇宙洪荒日月盈昃辰宿列张'.repeat(300); // one cluster per code unit
    const d = new StreamDecoder({ pace: { cps: 40, maxLagMs: 1500, drainMs: 1000 } });
    d.push(Buffer.from(big));
    const total = d.pending;
    assert.ok(total > 3000);
    let shown = 0;
    let now = 0;
    for (; now <= 300; now += 16) shown += d.tick(now).length;
    assert.ok(shown < total / 2, `${name}: not shown at once (${shown} of ${total} after 300 ms)`);
    assert.ok(shown > 40 * 0.3 * 2, `${name}: faster than cps under a big backlog (${shown})`);
    for (; now <= 1500 + 32; now += 16) shown += d.tick(now).length;
    assert.equal(d.pending, 0, `${name}: caught up within maxLagMs`);
    const more = '后来又来了很多字'.repeat(300);
    d.push(Buffer.from(more));
    d.finish();
    const start = now;
    for (; now <= start + 1000 + 32 && d.pending > 0; now += 16) d.tick(now);
    assert.equal(d.pending, 0, `${name}: drained within drainMs after finish()`);
  }
});

test('pace: false: text comes in the Update; tick and skip give nothing', () => {
  for (const name of Object.keys(builds)) {
    const d = new builds[name].StreamDecoder({ pace: false });
    assert.equal(d.push(Buffer.from('直接显示')).text, '直接显示');
    assert.equal(d.pending, 0);
    assert.equal(d.tick(100), '');
    assert.equal(d.skip(), '');
    assert.equal(d.paced, false);
  }
});

test('free() then any use throws; free() twice is harmless', () => {
  for (const name of Object.keys(builds)) {
    const d = new builds[name].StreamDecoder({});
    d.push(Buffer.from('a'));
    d.free();
    d.free();
    for (const [what, f] of [
      ['push', () => d.push(Buffer.from('b'))],
      ['finish', () => d.finish()],
      ['reset', () => d.reset()],
      ['tick', () => d.tick(1)],
      ['skip', () => d.skip()],
      ['pending', () => d.pending],
    ]) {
      assert.throws(f, (e) => /freed/.test(e.message), `${name}: ${what} after free()`);
    }
  }
});

test('reset() starts a fresh stream with the same options', () => {
  for (const name of Object.keys(builds)) {
    const { StreamDecoder } = builds[name];
    const t = new StreamDecoder({ pace: false });
    t.push(Buffer.from('你').subarray(0, 2)); // half a character
    t.reset();
    assert.equal(t.push(Buffer.from('ok')).text, 'ok', `${name}: no U+FFFD from the old stream`);
    assert.equal(t.finish().text, '');

    const oa = new StreamDecoder({ format: 'openai', pace: false });
    const body = Buffer.from('data: {"choices":[{"delta":{"content":"一"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n');
    assert.equal(oa.push(body).done, true);
    oa.reset();
    const u = oa.push(body.subarray(0, 20));
    assert.equal(u.done, false, `${name}: done is cleared`);
    assert.equal(oa.push(body.subarray(20)).text, '一');
    assert.equal(oa.format, 'openai');

    const paced = new StreamDecoder({});
    paced.push(Buffer.from('很多字很多字'));
    paced.finish();
    assert.ok(paced.pending > 0);
    paced.reset();
    assert.equal(paced.pending, 0, `${name}: the typewriter queue is cleared`);
    assert.equal(paced.skip(), '');
  }
});

// ---- constants against the Rust source ------------------------------------------------------

function rustFormats() {
  const src = fs.readFileSync(path.join(ROOT, 'src', 'formats', 'mod.rs'), 'utf8');
  const m = src.match(/pub const ALL: \[\(&'static str, Format\); (\d+)\] = \[([\s\S]*?)\];/);
  assert.ok(m, 'Format::ALL not found in src/formats/mod.rs');
  const names = [...m[2].matchAll(/\(\s*"([^"]+)"\s*,\s*Format::\w+\s*\)/g)].map((x) => x[1]);
  assert.equal(names.length, Number(m[1]), 'every entry of Format::ALL parsed');
  return names;
}

function coreConstant(name) {
  const src = fs.readFileSync(path.join(ROOT, 'js', 'decoder.js'), 'utf8');
  const m = src.match(new RegExp('var ' + name + ' = ([^;]+);'));
  assert.ok(m, `${name} not found in js/decoder.js`);
  return plain(vm.runInNewContext('(' + m[1] + ')'));
}

test('FORMATS equals Format::ALL of src/formats/mod.rs, in every build and in index.d.ts', () => {
  const names = rustFormats();
  assert.deepEqual(coreConstant('FORMATS'), names);
  for (const name of Object.keys(builds)) assert.deepEqual(plain(builds[name].FORMATS), names, name);
  const dts = fs.readFileSync(path.join(ROOT, 'js', 'index.d.ts'), 'utf8');
  const union = dts.match(/export type Format =([\s\S]*?);/);
  assert.ok(union);
  assert.deepEqual([...union[1].matchAll(/'([^']+)'/g)].map((x) => x[1]), names);
  // and every one of them is accepted by the constructor
  for (const f of names) new builds.node.StreamDecoder({ format: f }).free();
});

test('DEFAULT_PACE equals PaceOptions::default() of src/pacer.rs, and the documented defaults', () => {
  const src = fs.readFileSync(path.join(ROOT, 'src', 'pacer.rs'), 'utf8');
  const m = src.match(/impl Default for PaceOptions \{[\s\S]*?PaceOptions \{\s*cps:\s*([\d.]+),\s*max_lag_ms:\s*([\d.]+),\s*drain_ms:\s*([\d.]+)\s*\}/);
  assert.ok(m, 'PaceOptions::default() not found in src/pacer.rs');
  const rust = { cps: Number(m[1]), maxLagMs: Number(m[2]), drainMs: Number(m[3]) };
  assert.deepEqual(coreConstant('DEFAULT_PACE'), rust);
  const dts = fs.readFileSync(path.join(ROOT, 'js', 'index.d.ts'), 'utf8');
  const iface = dts.match(/export interface PaceOptions \{([\s\S]*?)\n\}/)[1];
  for (const [key, value] of Object.entries(rust)) {
    const doc = iface.match(new RegExp('Default (\\d+)\\.? \\*/\\s*' + key + '\\?'));
    assert.ok(doc, `index.d.ts documents the default of ${key}`);
    assert.equal(Number(doc[1]), value, `index.d.ts default of ${key}`);
  }
  const maxBuf = coreConstant('DEFAULT_MAX_BUFFER_BYTES');
  const dec = fs.readFileSync(path.join(ROOT, 'src', 'decoder.rs'), 'utf8').match(/pub const DEFAULT_MAX_BUFFER_BYTES: usize = 1 << (\d+);/);
  assert.ok(dec);
  assert.equal(maxBuf, 2 ** Number(dec[1]));
  // behaviour: the defaults and the explicit numbers tick the same
  const run = (pace) => {
    const d = new builds.node.StreamDecoder({ pace });
    d.push(Buffer.from('春眠不觉晓处处闻啼鸟夜来风雨声花落知多少。')); // a small backlog: the base rate shows
    const out = [];
    for (let now = 0; now < 1000; now += 16) out.push(d.tick(now));
    return out;
  };
  assert.deepEqual(run(undefined), run(rust));
  assert.notDeepEqual(run(undefined), run({ cps: rust.cps * 2 }), 'cps changes the ticks (the comparison can fail)');
});

// ---- TypeScript -----------------------------------------------------------------------------

test('index.d.ts compiles with tsc --strict against a usage file, and rejects misuse', () => {
  const dir = path.join(ROOT, 'tests', 'js', 'artifacts', 'tsc');
  fs.mkdirSync(dir, { recursive: true });
  const rel = path.relative(dir, path.join(PKG, 'index')).split(path.sep).join('/');
  fs.writeFileSync(
    path.join(dir, 'usage.ts'),
    `import { init, StreamDecoder, FORMATS, Format, Update, StreamDecoderOptions, PaceOptions, InitOptions, StreamErrorInfo, SseEvent } from '${rel}';

async function main(): Promise<string> {
  const opts: InitOptions = { wasmPath: '/miniprogram_npm/chunkwise/chunkwise.wasm.br' };
  await init(opts);
  await init();
  await init({ wasmUrl: new URL('https://example.com/chunkwise_glue_bg.wasm') });
  const pace: PaceOptions = { cps: 40, maxLagMs: 1500, drainMs: 1000 };
  const options: StreamDecoderOptions = { format: 'openai', cumulative: false, pace, maxBufferBytes: 1 << 20 };
  const d = new StreamDecoder(options);
  const unpaced = new StreamDecoder({ pace: false });
  const f: Format = d.format;
  const all: Format[] = FORMATS;
  const u: Update = d.push(new ArrayBuffer(8));
  const u2: Update = unpaced.push(new Uint8Array([0x61]));
  const text: string = u.text + u.reasoning + u2.text;
  const done: boolean = u.done;
  const reason: string | null = u.finishReason;
  const usage: Record<string, unknown> | null = u.usage;
  const err: StreamErrorInfo | null = u.error;
  const code: string | number | null = err ? err.code : null;
  const events: readonly SseEvent[] = u.events;
  const first: string = events.length ? events[0].event + events[0].data + events[0].id : '';
  const shown: string = d.tick(Date.now()) + d.tick() + d.skip();
  const pending: number = d.pending;
  d.finish();
  d.reset();
  d.free();
  // @ts-expect-error: not a format
  new StreamDecoder({ format: 'claude' });
  // @ts-expect-error: pace is an object or false
  new StreamDecoder({ pace: true });
  // @ts-expect-error: push takes bytes, not a string
  d.push('data: x');
  // @ts-expect-error: pending is read-only
  d.pending = 3;
  // @ts-expect-error: finishReason may be null
  const notNull: string = u.finishReason;
  return [f, all.length, text, done, reason, usage, code, first, shown, pending, notNull].join();
}
main();
`
  );
  const tsc = require.resolve('typescript/bin/tsc', { paths: [__dirname] });
  const args = [tsc, '--strict', '--noEmit', '--target', 'es2020', '--module', 'commonjs', '--moduleResolution', 'node', '--lib', 'es2020,dom', path.join(dir, 'usage.ts')];
  try {
    execFileSync(process.execPath, args, { encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    assert.fail('tsc --strict failed:\n' + e.stdout + e.stderr);
  }
  // the declarations shipped are the source's
  for (const sub of ['index.d.ts', 'miniprogram/index.d.ts', 'web/index.d.ts', 'node/index.d.ts']) {
    assert.equal(fs.readFileSync(path.join(PKG, sub), 'utf8'), fs.readFileSync(path.join(ROOT, 'js', 'index.d.ts'), 'utf8'), `pkg/${sub}`);
  }
});
