'use strict';
// Shared by the JS tests and bench/decoder.js: bodies and their expected values, computed
// without chunkwise (Buffer / Node's TextDecoder / eventsource-parser / the fixtures' own
// *.expected.json written by tests/fixtures/providers/make_expected.py).
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { rng } = require('./mp-sandbox');

const ROOT = path.join(__dirname, '..', '..');
const FIXTURES = path.join(ROOT, 'tests', 'fixtures', 'providers');

function providerFixtures() {
  if (!fs.existsSync(FIXTURES)) return null;
  const out = [];
  for (const dir of fs.readdirSync(FIXTURES).sort()) {
    const full = path.join(FIXTURES, dir);
    if (dir === 'upstream' || !fs.statSync(full).isDirectory()) continue;
    for (const f of fs.readdirSync(full).sort()) {
      if (!f.endsWith('.expected.json')) continue;
      const stem = f.slice(0, -'.expected.json'.length);
      out.push({
        name: `${dir}/${stem}`,
        body: fs.readFileSync(path.join(full, stem + '.txt')),
        expected: JSON.parse(fs.readFileSync(path.join(full, f), 'utf8')),
      });
    }
  }
  return out;
}

/** Compares a merged update with an expectation of make_expected.py (as tests/provider_fixtures.rs). */
function checkFixture(fx, report) {
  const exp = fx.expected;
  const all = report.all;
  const skip = (field) => exp.not_asserted && Object.prototype.hasOwnProperty.call(exp.not_asserted, field);
  const where = `[${fx.name}]`;
  if (!skip('text')) assert.equal(all.text, exp.text, `${where} text`);
  if (!skip('reasoning')) assert.equal(all.reasoning, exp.reasoning, `${where} reasoning`);
  if (!skip('finish_reason')) assert.equal(all.finishReason, exp.finish_reason, `${where} finishReason`);
  if (!skip('usage')) assert.deepEqual(all.usage, exp.usage, `${where} usage`);
  if (!skip('errors')) {
    assert.equal(all.errors.length, exp.errors.length, `${where} error count: ${JSON.stringify(all.errors)}`);
    exp.errors.forEach((w, i) => {
      const g = all.errors[i];
      assert.equal(g.message, w.message, `${where} error ${i} message`);
      if (w.kind !== null) assert.equal(g.type, w.kind, `${where} error ${i} type`);
      if (w.code !== null) assert.deepEqual(g.code, JSON.parse(w.code), `${where} error ${i} code`);
      assert.deepEqual(Object.keys(g).sort(), ['code', 'message', 'type'], `${where} error ${i} keys`);
    });
  }
  if (!skip('done')) assert.equal(report.doneBeforeFinish, exp.done, `${where} done before finish()`);
  assert.equal(all.done, true, `${where} done after finish()`);
  assert.equal(report.finishText, '', `${where} finish() must not hold back content of a complete body`);
  assert.deepEqual(all.events, [], `${where} events are only for the 'sse' format`);
}

/** A long answer: Chinese with English, Markdown, code, emoji (ZWJ, flags, skin tones), combining marks, 4-byte CJK. */
const PARTS = [
  '## 流式解码的原理\n\n', '大语言模型的回答是一个字一个字地生成的，', '服务器用 SSE（Server-Sent Events）把它们推给客户端。',
    '在小程序里，`wx.request` 的 `enableChunked` 选项让 `onChunkReceived` 收到一块块 ArrayBuffer，', '但是块的边界是任意的：',
    '一个汉字占 3 个字节，可能被切成两半。\n\n', '- 第一点：不要用 `String.fromCharCode` 逐块解码；\n', '- 第二点：不要按 `data: ` 直接 split。\n',
    '```js\nconst task = wx.request({ url, enableChunked: true });\ntask.onChunkReceived(({ data }) => decoder.push(data));\n```\n',
    '表情：😀😃😄 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇨🇳🇺🇸🇯🇵 ', '组合字符：é (e\u0301) ñ (n\u0303) ', '扩展汉字：𠀀𠀁𪚥𰻞 ', 'English sentence with numbers 3.14159 and symbols <>&"\'. ',
    '中文标点：，。、；：？！「」『』（）【】—— …… ', '\r\n', '数学：∑∫√∞≈≠ ', 'Ελληνικά русский עברית العربية हिन्दी ',
];
function longChineseText(bytes, seed) {
  const random = rng(seed === undefined ? 12345 : seed);
  let out = '';
  for (let guard = 0; Buffer.byteLength(out) < bytes && guard < 100000; guard++) out += pick(random);
  return out;
}
function pick(random) {
  return PARTS[Math.floor(random() * PARTS.length)];
}

/** Bytes with a BOM, every kind of invalid UTF-8 and an incomplete sequence at the end. */
function dirtyBytes() {
  const random = rng(777);
  const pieces = [
    Buffer.from([0xef, 0xbb, 0xbf]), // BOM, removed once
    Buffer.from('开头 start ', 'utf8'),
  ];
  const bad = [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98], [0xff], [0xfe], [0x80, 0x80], [0xe4, 0xbd], [0xf4, 0x90, 0x80, 0x80], [0xe0, 0x80, 0xaf], [0xef, 0xbb, 0xbf]];
  for (let i = 0; i < 400; i++) {
    pieces.push(random() < 0.3 ? Buffer.from(bad[Math.floor(random() * bad.length)]) : Buffer.from(pick(random).slice(0, 1 + Math.floor(random() * 20)), 'utf8'));
  }
  pieces.push(Buffer.from([0xf0, 0x9f, 0x98])); // incomplete at the end: one U+FFFD at finish()
  return Buffer.concat(pieces);
}

/** An SSE body: mixed CR / LF / CRLF, comments, multi-line data, event names, ids, retry, an unfinished last event. */
function sseBody() {
  const random = rng(99);
  const eols = ['\n', '\r', '\r\n'];
  let previous = '';
  // a CR followed by an LF would be one CRLF: after a CR only CR or CRLF may follow
  const eol = () => (previous = previous === '\r' ? eols[1 + Math.floor(random() * 2)] : eols[Math.floor(random() * 3)]);
  let body = ': welcome' + eol();
  for (let i = 0; i < 300; i++) {
    const lines = [];
    if (random() < 0.3) lines.push(': keep-alive');
    if (random() < 0.4) lines.push('event: ' + ['delta', 'message', 'ping', '增量'][Math.floor(random() * 4)]);
    if (random() < 0.2) lines.push('id: ' + i);
    if (random() < 0.1) lines.push('retry: ' + (1000 + i));
    const dataLines = 1 + Math.floor(random() * 3);
    for (let k = 0; k < dataLines; k++) {
      const t = pick(random).slice(0, Math.floor(random() * 30)).replace(/[\r\n]/g, ' ');
      lines.push(random() < 0.5 ? 'data: ' + t : 'data:' + t);
    }
    body += lines.map((l) => l + eol()).join('') + eol();
  }
  body += 'data: unfinished, discarded' + eol();
  return Buffer.from(body, 'utf8');
}

function sseOracle(buf) {
  const { createParser } = require('eventsource-parser');
  const events = [];
  let lastId = '';
  const parser = createParser({
    onEvent(e) {
      if (e.id !== undefined) lastId = e.id;
      events.push({ event: e.event === undefined ? 'message' : e.event, data: e.data, id: lastId });
    },
  });
  parser.feed(new TextDecoder().decode(buf));
  return events;
}

/** hex-records framing (what a PHP backend that echoes dechex(strlen($chunk)) writes): <hex length>\r\n<payload>\r\n ... 0\r\n\r\n, payloads cut at any byte. */
function hexRecordsBody(text) {
  const bytes = Buffer.from(text, 'utf8');
  const random = rng(4242);
  const out = [];
  let at = 0;
  while (at < bytes.length) {
    const n = Math.min(bytes.length - at, 1 + Math.floor(random() * 90));
    out.push(Buffer.from(n.toString(16) + '\r\n'), bytes.subarray(at, at + n), Buffer.from('\r\n'));
    at += n;
  }
  out.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(out);
}

/** A host-realm copy of a value from the sandbox (deepStrictEqual compares prototypes). */
function plain(value) {
  return JSON.parse(JSON.stringify(value));
}

function firstDiff(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `index ${i}: got ${JSON.stringify(a.slice(Math.max(0, i - 10), i + 10))}, want ${JSON.stringify(b.slice(Math.max(0, i - 10), i + 10))}`;
}

/** Splits `buf` at seeded random positions into pieces of 1..maxBytes bytes (subarrays). */
function splitBytes(buf, seed, maxBytes) {
  const random = rng(seed);
  const out = [];
  for (let at = 0; at < buf.length; ) {
    const n = Math.min(buf.length - at, 1 + Math.floor(random() * maxBytes));
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** The blocks of a one-shot Markdown render of `text` by the Node build, whole, by index. */
function markdownOneShot(text, options) {
  const md = require(path.join(ROOT, 'pkg', 'node', 'markdown.js'));
  const r = new md.MarkdownRenderer(Object.assign({}, options, { patches: 'blocks' }));
  try {
    const blocks = [];
    for (const p of [r.append(text), r.finish()]) {
      for (const b of p.blocks) blocks[b.index] = b.nodes;
      blocks.length = p.count;
    }
    return blocks;
  } finally {
    r.free();
  }
}

/** The fixtures under tests/fixtures/providers; fewer means some went missing (a failure, not a skip). */
const MIN_PROVIDER_FIXTURES = 19;

function fixturesOrFail() {
  const fixtures = providerFixtures();
  if (fixtures === null) throw new Error('tests/fixtures/providers is absent');
  if (fixtures.length < MIN_PROVIDER_FIXTURES) throw new Error(`expected at least ${MIN_PROVIDER_FIXTURES} provider fixtures, found ${fixtures.length}`);
  return fixtures;
}

module.exports = { ROOT, FIXTURES, markdownOneShot, rng, providerFixtures, fixturesOrFail, checkFixture, PARTS, longChineseText, pick, dirtyBytes, sseBody, sseOracle, hexRecordsBody, plain, firstDiff, splitBytes };
