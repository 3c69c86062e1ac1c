'use strict';
// The mini-program build (pkg/miniprogram) as a phone runs it: required inside the sandbox of
// mp-sandbox.js (no TextDecoder, TextEncoder, WebAssembly or fetch; WXWebAssembly by package
// path), fed by wx.request({enableChunked: true}) from a real HTTP server on 127.0.0.1 whose
// bodies arrive in random small writes and are re-split at random before onChunkReceived.
//
// Expected values never come from chunkwise: provider fixtures carry theirs
// (tests/fixtures/providers/**/*.expected.json, written by an independent oracle); text bodies
// are encoded from a JS string with Buffer (or decoded by Node's own TextDecoder, outside the
// sandbox); SSE events come from eventsource-parser.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { createSandbox, rng } = require('./mp-sandbox');
const { fixturesOrFail, checkFixture, longChineseText, dirtyBytes, sseBody, sseOracle, hexRecordsBody, plain, firstDiff } = require('./helpers');

const ROOT = path.join(__dirname, '..', '..');
const PKG = path.join(ROOT, 'pkg', 'miniprogram');
const WASM_PATH = '/miniprogram_npm/chunkwise/chunkwise.wasm.br';
const SEEDS = [
  { seed: 1, maxBytes: 1 },
  { seed: 2, maxBytes: 5 },
  { seed: 3, maxBytes: 37 },
  { seed: 4, maxBytes: 1500 },
];

if (!fs.existsSync(path.join(PKG, 'index.js')) || !fs.existsSync(path.join(PKG, 'chunkwise.wasm.br'))) {
  throw new Error('pkg/miniprogram is not built: run ./build.sh first');
}

// ---- a code package laid out as after DevTools' "构建 npm", plus a page-side helper ----------

// Mini-program code (ES5, as a page would write it) that streams one request through chunkwise
// and reports the merged updates. It runs inside the sandbox.
const CLIENT_JS = `
var chunkwise = require('chunkwise');

function merge(all, u) {
  all.text += u.text;
  all.reasoning += u.reasoning;
  all.done = all.done || u.done;
  if (u.finishReason !== null) all.finishReason = u.finishReason;
  if (u.usage !== null) all.usage = u.usage;
  for (var i = 0; i < u.errors.length; i++) all.errors.push(u.errors[i]);
  for (var j = 0; j < u.events.length; j++) all.events.push(u.events[j]);
  all.updates += 1;
}

/** Streams opts.url into a StreamDecoder(opts.decoder); calls back(err, report). */
module.exports = function stream(opts, callback) {
  var decoder = new chunkwise.StreamDecoder(opts.decoder);
  var all = { text: '', reasoning: '', done: false, finishReason: null, usage: null, errors: [], events: [], updates: 0 };
  var report = { chunks: 0, chunkBytes: 0, sameRealmChunks: 0, statusCode: null, headersStatus: null, doneBeforeFinish: false, fromSuccess: false, finishText: '' };
  var task = wx.request({
    url: opts.url,
    enableChunked: true,
    responseType: 'arraybuffer',
    timeout: opts.timeout,
    success: function (res) {
      report.statusCode = res.statusCode;
      // PC WeChat may never call onChunkReceived and hand the whole body here.
      if (report.chunks === 0 && res.data && res.data.byteLength > 0) {
        report.fromSuccess = true;
        merge(all, decoder.push(res.data));
      }
      report.doneBeforeFinish = all.done;
      var fin = decoder.finish();
      report.finishText = fin.text + fin.reasoning;
      merge(all, fin);
      decoder.free();
      report.all = all;
      callback(null, report);
    },
    fail: function (err) {
      decoder.free();
      callback(err);
    },
  });
  task.onHeadersReceived(function (res) {
    report.headersStatus = res.statusCode;
  });
  task.onChunkReceived(function (res) {
    report.chunks += 1;
    report.chunkBytes += res.data.byteLength;
    if (res.data instanceof ArrayBuffer) report.sameRealmChunks += 1;
    merge(all, decoder.push(res.data));
  });
  return task;
};
`;

function makePackage() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkwise-mp-'));
  const npm = path.join(dir, 'miniprogram_npm', 'chunkwise');
  fs.mkdirSync(npm, { recursive: true });
  // everything of pkg/miniprogram, as "构建 npm" copies the package's miniprogram folder
  for (const f of fs.readdirSync(PKG)) fs.copyFileSync(path.join(PKG, f), path.join(npm, f));
  fs.mkdirSync(path.join(dir, 'utils'));
  fs.writeFileSync(path.join(dir, 'utils', 'stream.js'), CLIENT_JS);
  return dir;
}

const packageRoot = makePackage();
process.on('exit', () => fs.rmSync(packageRoot, { recursive: true, force: true }));

async function loadedSandbox(network) {
  const sb = createSandbox({ packageRoot, network });
  const cw = sb.require('/miniprogram_npm/chunkwise/index.js');
  await cw.init({ wasmPath: WASM_PATH });
  return { sb, cw };
}


// ---- the server ----------------------------------------------------------------------------

const bodies = new Map(); // name -> { body: Buffer, status, type }

/** Serves GET /b/<name>?seed=N: the body in random writes of 1..300 bytes, each its own tick. */
function startServer() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const name = decodeURIComponent(url.pathname.replace(/^\/b\//, ''));
    const entry = bodies.get(name);
    if (!entry) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('no body ' + name);
      return;
    }
    if (entry.stall) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(entry.body); // and never ends: the client's timeout must fire
      return;
    }
    res.writeHead(entry.status || 200, { 'content-type': entry.type || 'text/event-stream; charset=utf-8' });
    res.socket.setNoDelay(true);
    const random = rng(Number(url.searchParams.get('seed') || 1) * 7919);
    let at = 0;
    const body = entry.body;
    const step = () => {
      if (res.destroyed) return;
      if (at >= body.length) {
        res.end();
        return;
      }
      const n = Math.min(body.length - at, 1 + Math.floor(random() * 300));
      res.write(body.subarray(at, at + n));
      at += n;
      setImmediate(step);
    };
    step();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

let server;
let base;
test.before(async () => {
  server = await startServer();
  base = `http://127.0.0.1:${server.address().port}/b/`;
});
test.after(() => {
  server.closeAllConnections();
  server.close();
});

function stream(sb, name, decoderOptions, seed, timeout) {
  const run = sb.require('/utils/stream.js');
  return new Promise((resolve, reject) => {
    run({ url: base + encodeURIComponent(name) + '?seed=' + seed, decoder: decoderOptions, timeout }, (err, report) => {
      if (err) reject(new Error('wx.request failed: ' + err.errMsg));
      else resolve(plain(report));
    });
  });
}

// ---- tests -----------------------------------------------------------------------------------

test('the mini-program glue mentions none of the names a device lacks', () => {
  const files = fs.readdirSync(PKG).filter((f) => f.endsWith('.js'));
  assert.ok(files.includes('index.js'));
  for (const file of files) {
    const glue = fs.readFileSync(path.join(PKG, file), 'utf8');
    for (const name of ['TextDecoder', 'TextEncoder', 'WebAssembly', 'fetch', 'window', 'document', 'import.meta']) {
      const re = new RegExp('\\b' + name.replace('.', '\\.') + '\\b');
      const m = glue.match(re);
      assert.equal(m, null, `pkg/miniprogram/${file} mentions ${name} at offset ${m && m.index}: ${m && JSON.stringify(glue.slice(m.index - 60, m.index + 40))}`);
    }
    // a mini program has no node modules: only files of the package itself may be required
    for (const m of glue.matchAll(/\brequire\(\s*(['"])([^'"]*)\1\s*\)/g)) {
      assert.match(m[2], /^\.\//, `pkg/miniprogram/${file} requires ${m[2]}: only ./files of the package`);
      assert.ok(fs.existsSync(path.join(PKG, m[2])) || fs.existsSync(path.join(PKG, m[2] + '.js')), `pkg/miniprogram/${file} requires ${m[2]}, which is not in the package`);
    }
    assert.doesNotMatch(glue, /\brequire\(\s*[^'"\s]/, `pkg/miniprogram/${file}: a computed require()`);
    assert.doesNotMatch(glue, /^\s*(import|export)\s/m, `pkg/miniprogram/${file} must be CommonJS`);
  }
});

test('the sandbox lacks every global a device lacks, checked from inside', () => {
  const sb = createSandbox({ packageRoot });
  assert.deepEqual(sb.leakedGlobals(), []);
  for (const name of ['TextDecoder', 'TextEncoder', 'WebAssembly', 'fetch', 'window', 'document']) {
    assert.equal(sb.run(`typeof ${name}`), 'undefined', name);
  }
  assert.equal(sb.run('typeof WXWebAssembly.instantiate'), 'function');
  assert.equal(sb.run('typeof wx.request'), 'function');
});

test('init({wasmPath}) loads the module through WXWebAssembly by package path, once', async () => {
  const sb = createSandbox({ packageRoot });
  const cw = sb.require('/miniprogram_npm/chunkwise/index.js');
  const wxwasm = sb.context.WXWebAssembly;
  const original = wxwasm.instantiate;
  const paths = [];
  wxwasm.instantiate = function (p, imports) {
    paths.push(p);
    return original.call(this, p, imports);
  };
  assert.throws(() => new cw.StreamDecoder(), (e) => e instanceof sb.run('Error') && /init\(\)/.test(e.message), 'a decoder before init() must name init()');
  const a = cw.init({ wasmPath: WASM_PATH });
  const b = cw.init({ wasmPath: WASM_PATH });
  assert.equal(typeof a.then, 'function');
  await Promise.all([a, b]);
  await cw.init({ wasmPath: WASM_PATH });
  await cw.init();
  assert.deepEqual(paths, [WASM_PATH], 'WXWebAssembly.instantiate must be called exactly once, with the string path');
  const d = new cw.StreamDecoder({ pace: false });
  assert.equal(d.push(new Uint8Array(Buffer.from('好'))).text, '好');
  d.free();
});

test('init() without options finds the wasm where "构建 npm" puts it', async () => {
  const sb = createSandbox({ packageRoot });
  const cw = sb.require('/miniprogram_npm/chunkwise/index.js');
  await cw.init();
  const d = new cw.StreamDecoder({ pace: false });
  assert.equal(d.push(Buffer.from('ok 好')).text, 'ok 好');
});

test('a wrong wasmPath rejects with a message naming the path and the option, and a retry can succeed', async () => {
  const sb = createSandbox({ packageRoot });
  const cw = sb.require('/miniprogram_npm/chunkwise/index.js');
  for (const bad of ['/nowhere/chunkwise.wasm.br', 'miniprogram_npm/chunkwise/chunkwise.wasm.br', 'https://example.com/chunkwise.wasm.br', '/miniprogram_npm/chunkwise/index.js']) {
    await assert.rejects(cw.init({ wasmPath: bad }), (e) => {
      assert.ok(e.message.includes(bad), `the message names the path ${bad}: ${e.message}`);
      assert.match(e.message, /wasmPath/, 'the message says which option to fix');
      return true;
    });
  }
  // bytes are not a path: WXWebAssembly refuses them, and so must init
  const bytes = require('node:zlib').brotliDecompressSync(fs.readFileSync(path.join(PKG, 'chunkwise.wasm.br')));
  await assert.rejects(cw.init({ wasmPath: new Uint8Array(bytes) }), /wasmPath/);
  assert.throws(() => new cw.StreamDecoder(), /init\(\)/, 'still not loaded after failures');
  await cw.init({ wasmPath: WASM_PATH });
  assert.equal(new cw.StreamDecoder({ pace: false }).push(Buffer.from('x')).text, 'x');
});

test('API misuse throws clear errors; the module keeps working', async () => {
  const { sb, cw } = await loadedSandbox();
  const d = new cw.StreamDecoder({ format: 'openai', pace: false });
  for (const bad of ['data: x\n\n', null, undefined, 42, {}, [1, 2, 3], true]) {
    assert.throws(
      () => d.push(bad),
      (e) => e.name === 'TypeError' && e instanceof sb.run('TypeError') && /push\(\)/.test(e.message) && /ArrayBuffer/.test(e.message),
      `push(${Object.prototype.toString.call(bad)}) must throw a TypeError naming push() and ArrayBuffer`
    );
  }
  assert.throws(
    () => new cw.StreamDecoder({ format: 'claude' }),
    (e) => {
      assert.equal(e.name, 'Error');
      assert.match(e.message, /claude/);
      for (const f of cw.FORMATS) assert.ok(e.message.includes(f), `the message names ${f}: ${e.message}`);
      return true;
    }
  );
  assert.throws(() => new cw.StreamDecoder({ pace: { cps: 'fast' } }), (e) => e.name === 'TypeError' && /cps/.test(e.message));
  assert.throws(() => new cw.StreamDecoder({ maxBufferBytes: -1 }), (e) => e.name === 'TypeError' && /maxBufferBytes/.test(e.message));
  const u = d.push(Buffer.from('data: {"choices":[{"delta":{"content":"还在"}}]}\n\n'));
  assert.equal(u.text, '还在');
  d.free();
  assert.throws(() => d.push(new ArrayBuffer(1)), /freed/);
  assert.deepEqual(sb.errors, []);
});

test('provider fixtures stream over wx.request, split at random, with several seeds', async () => {
  const fixtures = fixturesOrFail();
  const { sb } = await loadedSandbox();
  for (const fx of fixtures) bodies.set('fx/' + fx.name, { body: fx.body });
  for (const { seed, maxBytes } of SEEDS) {
    sb.network.split = { seed, maxBytes };
    for (const fx of fixtures) {
      const report = await stream(sb, 'fx/' + fx.name, { format: fx.expected.format, pace: false }, seed);
      assert.equal(report.chunkBytes, fx.body.length, `[${fx.name}] every body byte reached onChunkReceived`);
      assert.ok(!report.fromSuccess);
      if (maxBytes < fx.body.length) assert.ok(report.chunks > 1, `[${fx.name}] the body came in several chunks`);
      checkFixture(fx, report);
    }
  }
  assert.deepEqual(sb.errors, [], 'no callback threw');
  sb.close();
});

test('a long Chinese + emoji text body decodes exactly, every split', async () => {
  const text = longChineseText(60000);
  bodies.set('zh-text', { body: Buffer.from(text, 'utf8'), type: 'text/plain; charset=utf-8' });
  const { sb } = await loadedSandbox();
  for (const { seed, maxBytes } of SEEDS) {
    sb.network.split = { seed, maxBytes };
    const report = await stream(sb, 'zh-text', { format: 'text', pace: false }, seed);
    assert.ok(report.chunks > 1);
    assert.equal(report.all.text.length, text.length, `seed ${seed}: length`);
    assert.ok(report.all.text === text, `seed ${seed}: text differs at ${firstDiff(report.all.text, text)}`);
    assert.equal(report.all.done, true);
    assert.equal(report.doneBeforeFinish, false, 'a text body has no end marker');
  }
  sb.close();
});

test('invalid UTF-8, a BOM and a cut sequence at the end decode as Node\'s TextDecoder does', async () => {
  const bytes = dirtyBytes();
  const expected = new TextDecoder().decode(bytes); // the WHATWG decoder of the host, outside the sandbox
  assert.ok(expected.includes('\ufffd') && !expected.startsWith('\ufeff'));
  bodies.set('dirty', { body: bytes, type: 'application/octet-stream' });
  const { sb } = await loadedSandbox();
  for (const { seed, maxBytes } of SEEDS) {
    sb.network.split = { seed, maxBytes };
    const report = await stream(sb, 'dirty', { format: 'text', pace: false }, seed);
    assert.ok(report.all.text === expected, `seed ${seed}: differs at ${firstDiff(report.all.text, expected)}`);
    assert.equal(report.finishText, '\ufffd', 'the incomplete sequence at the end becomes one U+FFFD at finish()');
  }
  sb.close();
});

test('an SSE body (CR/LF/CRLF, comments, multi-line data, ids) gives the events eventsource-parser gives', async () => {
  const body = sseBody();
  const expected = sseOracle(body);
  assert.ok(expected.length >= 300);
  bodies.set('sse', { body });
  const { sb } = await loadedSandbox();
  for (const { seed, maxBytes } of SEEDS) {
    sb.network.split = { seed, maxBytes };
    const report = await stream(sb, 'sse', { format: 'sse', pace: false }, seed);
    assert.equal(report.all.events.length, expected.length, `seed ${seed}: event count`);
    for (let i = 0; i < expected.length; i++) {
      assert.deepEqual(report.all.events[i], expected[i], `seed ${seed}: event ${i}`);
    }
    assert.equal(report.all.text, '');
    assert.deepEqual(report.all.errors, []);
  }
  sb.close();
});

test('a hex-records body decodes to the text, payloads cut inside characters', async () => {
  const text = longChineseText(20000);
  const body = hexRecordsBody(text);
  bodies.set('hex', { body, type: 'text/plain' });
  const { sb } = await loadedSandbox();
  for (const { seed, maxBytes } of SEEDS) {
    sb.network.split = { seed, maxBytes };
    const report = await stream(sb, 'hex', { format: 'hex-records', pace: false }, seed);
    assert.ok(report.all.text === text, `seed ${seed}: differs at ${firstDiff(report.all.text, text)}`);
    assert.equal(report.doneBeforeFinish, true, 'the 0 record ends the stream');
    assert.deepEqual(report.all.errors, []);
  }
  sb.close();
});

test('"success only" (PC WeChat: no onChunkReceived) decodes the whole body from success', async () => {
  const fixtures = fixturesOrFail();
  const text = longChineseText(30000);
  bodies.set('zh-text-2', { body: Buffer.from(text, 'utf8'), type: 'text/plain' });
  for (const fx of fixtures) bodies.set('fx/' + fx.name, { body: fx.body });
  const { sb } = await loadedSandbox({ successOnly: true });
  const report = await stream(sb, 'zh-text-2', { format: 'text', pace: false }, 1);
  assert.equal(report.chunks, 0, 'no chunk callback in this mode');
  assert.equal(report.fromSuccess, true);
  assert.ok(report.all.text === text, `differs at ${firstDiff(report.all.text, text)}`);
  for (const fx of fixtures) {
    const r = await stream(sb, 'fx/' + fx.name, { format: fx.expected.format, pace: false }, 1);
    assert.equal(r.chunks, 0);
    checkFixture(fx, r);
  }
  sb.close();
});

test('chunks are ArrayBuffers of the mini-program realm; foreign-realm ArrayBuffers also decode', async () => {
  const text = longChineseText(8000);
  bodies.set('zh-text-3', { body: Buffer.from(text, 'utf8'), type: 'text/plain' });
  for (const realm of ['context', 'host']) {
    const { sb } = await loadedSandbox({ arrayBufferRealm: realm, split: { seed: 5, maxBytes: 9 } });
    const report = await stream(sb, 'zh-text-3', { format: 'text', pace: false }, 5);
    assert.ok(report.chunks > 100);
    assert.equal(report.sameRealmChunks, realm === 'context' ? report.chunks : 0, `${realm}: instanceof ArrayBuffer in the package's code`);
    assert.ok(report.all.text === text, `${realm}: differs at ${firstDiff(report.all.text, text)}`);
    sb.close();
  }
});

test('an HTTP error status with a JSON error body reports the provider error', async () => {
  const errorBody = JSON.stringify({ error: { message: '余额不足 quota exceeded', type: 'insufficient_quota', code: 'insufficient_quota' } });
  bodies.set('http-429', { body: Buffer.from(errorBody), status: 429, type: 'application/json' });
  const { sb } = await loadedSandbox({ split: { seed: 2, maxBytes: 4 } });
  const report = await stream(sb, 'http-429', { format: 'openai', pace: false }, 2);
  assert.equal(report.statusCode, 429);
  assert.equal(report.headersStatus, 429);
  assert.equal(report.all.text, '');
  assert.equal(report.all.errors.length, 1, JSON.stringify(report.all.errors));
  assert.equal(report.all.errors[0].message, '余额不足 quota exceeded');
  assert.equal(report.all.errors[0].type, 'insufficient_quota');
  sb.close();
});

test('a stalled stream is cut by the request timeout and the text so far is kept', async () => {
  bodies.set('stall', { body: Buffer.from('data: {"choices":[{"delta":{"content":"半句"}}]}\n\n'), stall: true });
  const sb = createSandbox({ packageRoot, maxTimeoutMs: 300 });
  const cw = sb.require('/miniprogram_npm/chunkwise/index.js');
  await cw.init({ wasmPath: WASM_PATH });
  const d = new cw.StreamDecoder({ format: 'openai', pace: false });
  let text = '';
  const started = Date.now();
  const err = await new Promise((resolve) => {
    const task = sb.wx.request({ url: base + 'stall', enableChunked: true, timeout: 120000, success: () => resolve(null), fail: resolve });
    task.onChunkReceived((res) => {
      text += d.push(res.data).text;
    });
  });
  assert.ok(err && err.errMsg === 'request:fail timeout', JSON.stringify(err));
  assert.ok(Date.now() - started < 5000, 'the cap, not the requested 120 s, applied');
  assert.equal(text, '半句');
  const fin = d.finish();
  assert.equal(fin.done, true);
  assert.equal(fin.text, '');
  sb.close();
});
