'use strict';
// Plain text's two UTF-8 paths in V8, inside the mini-program sandbox (pkg/miniprogram as a
// phone loads it): the core's decoder in wasm, and the engine's builtins
// (String.fromCharCode.apply + escape + decodeURIComponent) for each chunk's complete middle
// and for the typewriter's text, which `builtinUtf8` turns on (the default on iOS). Both must
// give exactly what the WHATWG/WPT UTF-8 vectors expect (tests/fixtures/wpt/textdecoder.json,
// from upstream) with the input split at every position and at random, so that a difference
// of V8's builtins cannot hide behind the wasm path; tests/jsc does the same in JavaScriptCore.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createSandbox, rng, splitRandom } = require('./mp-sandbox');

const ROOT = path.join(__dirname, '..', '..');
const PKG = path.join(ROOT, 'pkg', 'miniprogram');
const WASM_PATH = '/miniprogram_npm/chunkwise/chunkwise.wasm.br';
const VECTORS = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests', 'fixtures', 'wpt', 'textdecoder.json'), 'utf8'));
// The builtins from the first byte of a chunk (1), from a few bytes, at the default
// threshold (true), and never (false).
const PATHS = [1, 4, true, false];

if (!fs.existsSync(path.join(PKG, 'index.js'))) throw new Error('pkg/miniprogram is not built: run ./build.sh first');

const packageRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'builtin-utf8-'));
process.on('exit', () => fs.rmSync(packageRoot, { recursive: true, force: true }));
fs.mkdirSync(path.join(packageRoot, 'miniprogram_npm', 'chunkwise'), { recursive: true });
for (const f of fs.readdirSync(PKG)) fs.copyFileSync(path.join(PKG, f), path.join(packageRoot, 'miniprogram_npm', 'chunkwise', f));

/** A sandbox whose wx says the device is `platform` (null: a wx without getDeviceInfo). */
async function load(platform) {
  const sb = createSandbox({ packageRoot });
  if (platform !== null) sb.context.wx.getDeviceInfo = () => ({ platform });
  const cw = sb.require('/miniprogram_npm/chunkwise/index.js');
  await cw.init({ wasmPath: WASM_PATH });
  return cw;
}

/** Every split into two pieces, three at random cut pairs, and random pieces of 1..7 bytes. */
function splits(bytes, random) {
  const out = [[bytes]];
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  for (let k = 0; k < 8; k++) out.push(splitRandom(bytes, random, 1 + Math.floor(random() * 7)));
  return out;
}

/** The text of `pieces` by a decoder of `options`: its updates, and what its typewriter shows. */
function decode(cw, options, pieces, random) {
  const d = new cw.StreamDecoder(options);
  let text = '';
  let shown = '';
  let now = 0;
  for (const p of pieces) {
    text += d.push(p).text;
    if (d.paced) shown += d.tick((now += random() < 0.5 ? 0 : 16));
  }
  text += d.finish().text;
  if (d.paced) shown += d.tick((now += 16)) + d.skip();
  d.free();
  return { text, shown };
}

function hex(h) {
  return Buffer.from(h, 'hex');
}

test('the WPT UTF-8 vectors, split everywhere and at random, on both paths', async () => {
  const cw = await load(null);
  const random = rng(8);
  let decodes = 0;
  for (const c of VECTORS) {
    const cuts = splits(hex(c.bytes_hex), random);
    if (c.chunks_hex) cuts.push(c.chunks_hex.map(hex));
    for (const pieces of cuts) {
      for (const builtinUtf8 of PATHS) {
        const how = `${c.name} in ${pieces.map((p) => p.length).join('+')} bytes, builtinUtf8: ${builtinUtf8}`;
        assert.equal(decode(cw, { format: 'text', pace: false, builtinUtf8 }, pieces, random).text, c.expected, how);
        // Paced: every tick's text long enough takes the builtins too.
        const paced = decode(cw, { format: 'text', pace: { cps: 1e9 }, builtinUtf8 }, pieces, random);
        assert.equal(paced.text, c.expected, how + ', paced: updates');
        assert.equal(paced.shown, c.expected, how + ', paced: shown by the typewriter');
        decodes += 2;
      }
    }
  }
  assert.ok(decodes > 10000, `${decodes} decodes`);
});

test('long text crosses the default threshold: builtins and wasm agree with Buffer', async () => {
  const cw = await load(null);
  const random = rng(9);
  // Valid text of every UTF-8 length, then the same with ill-formed bytes spliced in.
  const valid = Buffer.from('流式输出 stream é ß 😀🇨🇳 '.repeat(40));
  const dirty = Buffer.concat([valid.subarray(0, 301), Buffer.from([0xe4, 0xb8, 0xff, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80]), valid.subarray(301)]);
  for (const bytes of [valid, dirty]) {
    const expected = new TextDecoder().decode(bytes); // Node's own, outside the sandbox
    for (let k = 0; k < 20; k++) {
      const pieces = splitRandom(bytes, random, 1 + Math.floor(random() * 700));
      for (const builtinUtf8 of PATHS) {
        assert.equal(decode(cw, { format: 'text', pace: false, builtinUtf8 }, pieces, random).text, expected, `builtinUtf8: ${builtinUtf8}`);
        assert.equal(decode(cw, { format: 'text', pace: {}, builtinUtf8 }, pieces, random).shown, expected, `paced, builtinUtf8: ${builtinUtf8}`);
      }
    }
  }
});

/**
 * Everything a paced decoder gives, step by step: each update's text and queued count, each
 * tick's text, `pending` now and then, and skip(), finish() and reset() at random points.
 */
function pacedTrace(cw, options, pieces, script) {
  const d = new cw.StreamDecoder(options);
  const trace = [];
  let now = 0;
  pieces.forEach((p, i) => {
    const u = d.push(p);
    trace.push(['push', u.text, u.queued, u.done]);
    for (let k = 0; k < script.ticks[i]; k++) trace.push(['tick', now, d.tick((now += script.steps[(i + k) % script.steps.length]))]);
    if (script.pending[i]) trace.push(['pending', d.pending]);
    if (script.skip[i]) trace.push(['skip', d.skip()]);
    if (script.reset[i]) {
      d.reset();
      now = 0;
      trace.push(['reset']);
    }
  });
  const end = d.finish();
  trace.push(['finish', end.text, end.queued, end.done, d.pending]);
  // A push after finish() goes the core's way on both paths (its update says done).
  const late = d.push(new Uint8Array([0xe4, 0xbd, 0xa0, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66]));
  trace.push(['late push', late.text, late.queued, late.done]);
  while (d.pending > 0 || now < 3000) trace.push(['drain', d.tick((now += 16))]);
  trace.push(['skip', d.skip()]);
  d.free();
  return trace;
}

test('paced plain text decoded once by the builtins: every tick shows what the core path shows, at the same time', async () => {
  const cw = await load(null);
  const random = rng(11);
  // Pieces of every UTF-8 length, clusters of several characters, a BOM, line breaks, and
  // ill-formed bytes (which the core replaces on both paths).
  const parts = ['a', 'bc ', '流式', '输出。', 'é', 'ж', '😀', 'e\u0301', '\n', '한', '👍🏽', '🇨🇳', '\r\n', '\ufeff'].map((t) => Buffer.from(t));
  const bad = [[0xff], [0xe4, 0xb8], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80]].map((b) => Buffer.from(b));
  let ticks = 0;
  for (let round = 0; round < 120; round++) {
    const body = [];
    for (let n = 20 + Math.floor(random() * 400); n > 0; n--) body.push(random() < 0.03 ? bad[Math.floor(random() * bad.length)] : parts[Math.floor(random() * parts.length)]);
    if (random() < 0.3) body.unshift(Buffer.from([0xef, 0xbb, 0xbf]));
    const pieces = splitRandom(Buffer.concat(body), random, [8, 40, 300, 2000][round % 4]);
    const flag = (p) => pieces.map(() => random() < p);
    const script = {
      ticks: pieces.map(() => Math.floor(random() * 3)),
      steps: [0, 4, 16, 16, 17, 33, 250, 1600].sort(() => random() - 0.5),
      pending: flag(0.2),
      skip: flag(0.03),
      reset: flag(0.01),
    };
    const pace = [{}, { cps: 300, maxLagMs: 200 }, { cps: 5 }][round % 3];
    for (const pacedUpdateText of [true, false]) {
      const want = pacedTrace(cw, { format: 'text', pace, pacedUpdateText, builtinUtf8: false }, pieces, script);
      for (const builtinUtf8 of [true, 1, 16]) {
        const got = pacedTrace(cw, { format: 'text', pace, pacedUpdateText, builtinUtf8 }, pieces, script);
        assert.deepEqual(got, want, `round ${round}, builtinUtf8: ${builtinUtf8}, pacedUpdateText: ${pacedUpdateText}`);
      }
      ticks += want.filter((t) => t[0] === 'tick' && t[2] !== '').length;
    }
  }
  assert.ok(ticks > 5000, `${ticks} ticks that showed text`);
});

test('the default: off outside iOS, on in a mini program on iOS, and right either way', async () => {
  const random = rng(10);
  for (const [platform, on] of [[null, false], ['android', false], ['devtools', false], ['ios', true]]) {
    const cw = await load(platform);
    const probe = new cw.StreamDecoder({ format: 'text', pace: false });
    assert.equal(probe._utf8Min !== 0xffffffff, on, `platform ${platform}: builtins ${on ? 'on' : 'off'} by default`);
    probe.free();
    for (const c of VECTORS) {
      for (const pieces of splits(hex(c.bytes_hex), random).slice(0, 6)) {
        assert.equal(decode(cw, { format: 'text', pace: false }, pieces, random).text, c.expected, `${c.name} (platform ${platform})`);
        assert.equal(decode(cw, { format: 'text', pace: { cps: 1e9 } }, pieces, random).shown, c.expected, `${c.name} (platform ${platform}, paced)`);
      }
    }
  }
});

test('builtinUtf8: true where the builtins are missing or decode otherwise: the core decodes, nothing is lost', async () => {
  const random = rng(11);
  const bytes = Buffer.concat([Buffer.from('流式输出 stream 😀 '.repeat(30)), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('尾'.repeat(200))]);
  const expected = new TextDecoder().decode(bytes);
  const engines = {
    // An engine without Annex B's escape().
    'no escape': 'delete globalThis.escape',
    // An engine whose decodeURIComponent lets ill-formed UTF-8 through instead of throwing.
    'a lenient decodeURIComponent': `(function (strict) {
      globalThis.decodeURIComponent = function (s) {
        try {
          return strict(s);
        } catch (e) {
          return '?';
        }
      };
    })(decodeURIComponent)`,
  };
  for (const [name, change] of Object.entries(engines)) {
    const sb = createSandbox({ packageRoot });
    sb.context.wx.getDeviceInfo = () => ({ platform: 'ios' });
    sb.run(change, name);
    const cw = sb.require('/miniprogram_npm/chunkwise/index.js');
    await cw.init({ wasmPath: WASM_PATH });
    for (let k = 0; k < 10; k++) {
      const pieces = splitRandom(bytes, random, 1 + Math.floor(random() * 600));
      for (const builtinUtf8 of [undefined, true, 1]) {
        const how = `${name}, builtinUtf8: ${builtinUtf8}`;
        assert.equal(decode(cw, { format: 'text', pace: false, builtinUtf8 }, pieces, random).text, expected, how);
        assert.equal(decode(cw, { format: 'text', pace: {}, builtinUtf8 }, pieces, random).shown, expected, how + ', paced');
      }
    }
  }
});

test('whole chunks skip the core only when it holds nothing and the chunk ends in ASCII', async () => {
  const cw = await load('ios');
  const b = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
  // [pieces, the pieces the core must see (by index), what the stream decodes to]
  const cases = [
    [['abc', 'def', '流式 ok'], [0], 'abcdef流式 ok'],
    // The BOM is decided by the core: the first chunk goes there, and a later EF BB BF is U+FEFF.
    [[b([0xef, 0xbb, 0xbf], 'a'), b([0xef, 0xbb, 0xbf], 'b')], [0], 'a\ufeffb'],
    // A BOM cut after its first byte: nothing is decided yet, so the core sees the rest too.
    [[b([0xef]), b([0xbb, 0xbf], 'a'), 'c'], [0, 1], 'ac'],
    [[b([0xef]), 'a', 'b'], [0, 1], '\ufffdab'],
    // Bytes held: a chunk ending in ASCII still goes to the core, which completes the character.
    [[b('x', [0xe4, 0xb8]), b([0xad], 'y'), 'z'], [0, 1], 'x中yz'],
    [[b('x', [0xe4, 0xb8]), 'y', 'z'], [0, 1], 'x\ufffdyz'],
    // Ill-formed right after a fast chunk: the builtins throw, the core replaces it.
    [['ab', 'c', b([0xff], 'd'), b([0xe4, 0xb8], 'e'), b([0xed, 0xa0, 0x80], 'f'), 'g'], [0, 2, 3, 4], 'abc\ufffdd\ufffde\ufffd\ufffd\ufffdfg'],
    // A character cut at the end goes to the core, and the chunk after it too.
    [['ab', b('c', [0xf0, 0x9f]), b([0x98, 0x80], '!'), 'end'], [0, 1, 2], 'abc😀!end'],
    // The same from 8 bytes on, where the core sees only the chunk's ends (edges): a BOM in
    // the first chunk, a cut character completed, one ill-formed middle rolled back.
    [[b([0xef, 0xbb, 0xbf], 'abcdefgh'), 'x'], [0], 'abcdefghx'],
    [[b('abcdefgh', [0xe4, 0xb8]), b([0xad], 'ijklmnop'), 'z'], [0, 1], 'abcdefgh中ijklmnopz'],
    [[b('abcdefgh'), b('ijk', [0xff], 'lmn', [0xf0, 0x9f, 0x98]), b([0x80], 'opqrstu')], [0, 1, 2], 'abcdefghijk\ufffdlmn😀opqrstu'],
  ];
  for (const [strings, toCore, expected] of cases) {
    const pieces = strings.map((p) => b(p));
    const d = new cw.StreamDecoder({ format: 'text', pace: false });
    const raw = d._raw;
    let calls = 0;
    for (const name of ['push', 'edges']) {
      const real = raw[name];
      raw[name] = function (...args) {
        calls++;
        return real.apply(this, args);
      };
    }
    let text = '';
    const seen = [];
    pieces.forEach((p, i) => {
      const before = calls;
      text += d.push(p).text;
      if (calls > before) seen.push(i);
    });
    text += d.finish().text;
    const how = pieces.map((p) => p.toString('hex')).join(' | ');
    assert.equal(text, expected, how);
    assert.deepEqual(seen, toCore, `${how}: the chunks the core saw`);
    // After finish (and after reset) the next stream starts with an undecided BOM again.
    assert.equal(d.push(b([0xef, 0xbb, 0xbf], 'n')).text, 'n', `${how}: a BOM after finish`);
    d.reset();
    assert.equal(d.push(b([0xef, 0xbb, 0xbf], 'r')).text, 'r', `${how}: a BOM after reset`);
    d.free();
  }
});

test('init() turns the builtins off on an engine that lets any one ill-formed probe through', async () => {
  // Each engine's decodeURIComponent is strict except for one input (as escape() spells it):
  // the init-time check must catch each of them alone.
  const probes = {
    'overlong 4-byte F0 80 80 80': '%F0%80%80%80',
    'overlong 2-byte C1 BF': '%C1%BF',
    'low surrogate ED B0 80': '%ED%B0%80',
    'lead F5 (past U+10FFFF)': '%F5%80%80%80',
    'a cut sequence before ASCII E6 B5 41': '%E6%B5A',
  };
  const strictCw = await load('ios');
  const strict = new strictCw.StreamDecoder({ format: 'text', pace: false });
  assert.notEqual(strict._utf8Min, 0xffffffff, 'the strict engine keeps the builtins on');
  strict.free();
  for (const [name, escaped] of Object.entries(probes)) {
    const sb = createSandbox({ packageRoot });
    sb.context.wx.getDeviceInfo = () => ({ platform: 'ios' });
    sb.run(`(function (strict) {
      globalThis.decodeURIComponent = function (s) {
        return s === ${JSON.stringify(escaped)} ? '\\ufffd' : strict(s);
      };
    })(decodeURIComponent)`, name);
    const cw = sb.require('/miniprogram_npm/chunkwise/index.js');
    await cw.init({ wasmPath: WASM_PATH });
    const d = new cw.StreamDecoder({ format: 'text', pace: false });
    assert.equal(d._utf8Min, 0xffffffff, `${name}: builtins off`);
    assert.equal(d.push(Buffer.from('流式 ok '.repeat(40))).text, '流式 ok '.repeat(40), name);
    d.free();
  }
});

test('paced: a chunk whose builtins call throws for any reason leaves nothing unchecked in the typewriter', async () => {
  // The core queues a chunk's bytes for the typewriter before the builtins decode them; any
  // throw on the way (here `apply` itself, as stack exhaustion would) must take them back,
  // so that the core then decodes the chunk and the typewriter shows exactly its text.
  const cw = await load('ios');
  const FP = Object.getPrototypeOf(cw.StreamDecoder);
  const apply = FP.apply;
  const bad = hex('414280e4b843ffeda0804445'); // ill-formed in the middle, 12 bytes
  const want = 'abcdefgh' + new TextDecoder().decode(bad) + '😀abcd';
  for (const armedAt of [1, 2]) {
    let armed = false;
    FP.apply = function (self, args) {
      if (armed && args && args.length === bad.length) {
        armed = false;
        throw new RangeError('simulated');
      }
      return apply.call(this, self, args);
    };
    try {
      const d = new cw.StreamDecoder({ format: 'text', builtinUtf8: true, pace: { cps: 1e6 } });
      let shown = '';
      const pieces = [Buffer.from('abcdefgh'), bad, hex('f09f988061626364')];
      pieces.forEach((p, i) => {
        armed = i === armedAt;
        try {
          d.push(p);
        } catch (e) {
          assert.fail(`push ${i} threw ${e.message}`);
        }
        shown += d.tick(16 * (i + 1));
      });
      d.finish();
      shown += d.tick(1000) + d.skip();
      assert.equal(shown, want);
      assert.equal(d.pending, 0);
      d.free();
    } finally {
      FP.apply = apply;
    }
  }
});
