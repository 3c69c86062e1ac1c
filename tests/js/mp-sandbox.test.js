'use strict';
// The sandbox itself behaves as the platform documents (tests of the test harness).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { createSandbox } = require('./mp-sandbox');

// A minimal wasm module: (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
const ADD_WASM = Buffer.from('0061736d0100000001070160027f7f017f030201000707010361646400000a09010700200020016a0b', 'hex');

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-sandbox-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
fs.mkdirSync(path.join(root, 'lib', 'sub'), { recursive: true });
fs.mkdirSync(path.join(root, 'miniprogram_npm', 'dep'), { recursive: true });
fs.writeFileSync(path.join(root, 'lib', 'add.wasm'), ADD_WASM);
fs.writeFileSync(path.join(root, 'lib', 'add.wasm.br'), zlib.brotliCompressSync(ADD_WASM));
fs.writeFileSync(path.join(root, 'lib', 'a.js'), "exports.b = require('./sub/b'); exports.dep = require('dep'); exports.count = (global_count = (typeof global_count === 'number' ? global_count : 0) + 1);");
fs.writeFileSync(path.join(root, 'lib', 'sub', 'b.js'), "module.exports = { name: 'b', file: __filename, dir: __dirname };");
fs.writeFileSync(path.join(root, 'miniprogram_npm', 'dep', 'index.js'), "module.exports = 'dep';");
fs.writeFileSync(path.join(root, 'lib', 'same.js'), "'use strict'; module.exports = Uint8Array === globalThis.Uint8Array && Object === globalThis.Object && typeof Uint8Array === 'function' && new Uint8Array(2) instanceof globalThis.Uint8Array;");
fs.writeFileSync(path.join(root, 'lib', 'escape.js'), "module.exports = require('../../outside');");

let server;
let base;
test.before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/hang') return; // never answers
    if (req.url === '/500') {
      res.writeHead(500, { 'X-Custom': 'yes' });
      res.end('{"error":{"message":"boom"}}');
      return;
    }
    if (req.url.startsWith('/echo')) {
      const parts = [];
      req.on('data', (d) => parts.push(d));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, url: req.url, body: Buffer.concat(parts).toString('utf8'), type: req.headers['content-type'] || null }));
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(Buffer.alloc(5000, 0x61));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
});
test.after(() => {
  server.closeAllConnections();
  server.close();
});

function request(sb, opts) {
  return new Promise((resolve) => {
    const chunks = [];
    let headers = null;
    const task = sb.wx.request(Object.assign({}, opts, {
      success: (res) => resolve({ ok: true, res, chunks, headers }),
      fail: (res) => resolve({ ok: false, res, chunks, headers }),
    }));
    task.onChunkReceived((r) => chunks.push(r.data));
    task.onHeadersReceived((h) => (headers = h));
    if (opts.abortAfterMs !== undefined) setTimeout(() => task.abort(), opts.abortAfterMs);
  });
}

test('WXWebAssembly.instantiate takes a package path (.wasm or .wasm.br) and nothing else', async () => {
  const sb = createSandbox({ packageRoot: root });
  for (const p of ['/lib/add.wasm', '/lib/add.wasm.br']) {
    const r = await sb.WXWebAssembly.instantiate(p, {});
    assert.equal(r.instance.exports.add(2, 3), 5, p);
    assert.ok(r.module);
  }
  const rejects = [ADD_WASM, new Uint8Array(ADD_WASM), ADD_WASM.buffer, 'lib/add.wasm', 'http://127.0.0.1/add.wasm', 'wxfile://add.wasm', '/lib/a.js', '/lib/missing.wasm', '/../outside.wasm'];
  for (const bad of rejects) await assert.rejects(sb.WXWebAssembly.instantiate(bad, {}), undefined, String(bad).slice(0, 40));
  assert.equal(sb.run('typeof WebAssembly'), 'undefined');
  assert.equal(sb.run('WXWebAssembly.Memory === undefined'), false);
});

test('require resolves package files, npm names under miniprogram_npm, caches, and never leaves the package', () => {
  const sb = createSandbox({ packageRoot: root });
  const a = sb.require('/lib/a.js');
  assert.equal(a.b.name, 'b');
  assert.equal(a.b.file, '/lib/sub/b.js');
  assert.equal(a.b.dir, '/lib/sub');
  assert.equal(a.dep, 'dep');
  assert.equal(sb.require('/lib/a').count, 1, 'cached: the module body ran once');
  assert.throws(() => sb.require('/lib/escape.js'), /not defined/, '../ above the root stays at the root');
  assert.throws(() => sb.require('/lib/nothing'), /not defined/);
  assert.equal(sb.require('/lib/same.js'), true, "a module's built-ins are the context's own");
  assert.deepEqual(sb.leakedGlobals(), []);
});

test('wx.request: chunks are context-realm ArrayBuffers, re-split deterministically by seed', async () => {
  const sizes = [];
  for (let i = 0; i < 2; i++) {
    const sb = createSandbox({ packageRoot: root, network: { split: { seed: 9, maxBytes: 50 } } });
    const r = await request(sb, { url: base + '/', enableChunked: true });
    assert.ok(r.ok);
    assert.equal(r.res.errMsg, 'request:ok');
    assert.equal(r.res.statusCode, 200);
    assert.equal(r.res.data, '', 'the body went to onChunkReceived');
    assert.equal(r.headers.statusCode, 200);
    assert.equal(r.chunks.reduce((n, c) => n + c.byteLength, 0), 5000);
    assert.ok(r.chunks.every((c) => c instanceof sb.run('ArrayBuffer') && !(c instanceof ArrayBuffer)));
    assert.ok(r.chunks.every((c) => c.byteLength >= 1 && c.byteLength <= 50));
    sizes.push(r.chunks.map((c) => c.byteLength));
  }
  // socket reads may differ between runs; the split of each read is seeded
  assert.ok(sizes[0].length > 100 && sizes[1].length > 100);
  const sb = createSandbox({ packageRoot: root, network: { arrayBufferRealm: 'host' } });
  const r = await request(sb, { url: base + '/', enableChunked: true });
  assert.ok(r.chunks.length >= 1 && r.chunks.every((c) => c instanceof ArrayBuffer));
});

test('wx.request: without enableChunked, or with the success-only quirk, success gets the body', async () => {
  const sb = createSandbox({ packageRoot: root });
  let r = await request(sb, { url: base + '/' });
  assert.equal(r.chunks.length, 0);
  assert.equal(r.res.data, 'a'.repeat(5000));
  sb.network.successOnly = true;
  r = await request(sb, { url: base + '/', enableChunked: true, responseType: 'arraybuffer' });
  assert.equal(r.chunks.length, 0);
  assert.equal(r.res.data.byteLength, 5000);
  r = await request(sb, { url: base + '/echo', method: 'POST', data: { q: '你好' } });
  assert.deepEqual(JSON.parse(JSON.stringify(r.res.data)), { method: 'POST', url: '/echo', body: '{"q":"你好"}', type: 'application/json' });
  r = await request(sb, { url: base + '/echo', data: { q: '你好' } });
  assert.equal(r.res.data.url, '/echo?q=%E4%BD%A0%E5%A5%BD');
});

test('wx.request: error status quirk, domain check, abort, timeout cap', async () => {
  const sb = createSandbox({ packageRoot: root, maxTimeoutMs: 200, network: { errorStatusNoChunks: true } });
  let r = await request(sb, { url: base + '/500', enableChunked: true });
  assert.ok(r.ok);
  assert.equal(r.res.statusCode, 500);
  assert.equal(r.res.header['X-Custom'], 'yes', 'header names keep their case');
  assert.equal(r.chunks.length, 0);
  assert.equal(r.res.data, '');
  for (const url of ['http://localhost:1/', 'https://example.com/', 'http://10.0.0.1/', 'not a url']) {
    r = await request(sb, { url, enableChunked: true });
    assert.ok(!r.ok && /^request:fail /.test(r.res.errMsg), url);
  }
  r = await request(sb, { url: base + '/hang', enableChunked: true, abortAfterMs: 20 });
  assert.equal(r.res.errMsg, 'request:fail abort');
  const t0 = Date.now();
  r = await request(sb, { url: base + '/hang', enableChunked: true, timeout: 999999 });
  assert.equal(r.res.errMsg, 'request:fail timeout');
  assert.ok(Date.now() - t0 < 2000);
  assert.ok(sb.requests.some((q) => q.outcome === 'abort'));
  sb.close();
});

test('timers have numeric ids and close() clears them; callback exceptions are recorded', async () => {
  const sb = createSandbox({ packageRoot: root, quiet: true });
  const fired = [];
  const id = sb.run('setTimeout')(() => fired.push('t'), 10);
  assert.equal(typeof id, 'number');
  sb.run('setTimeout')(() => {
    throw new Error('from a callback');
  }, 1);
  const iv = sb.run('setInterval')(() => fired.push('i'), 5);
  await new Promise((r) => setTimeout(r, 40));
  sb.run('clearInterval')(iv);
  const n = fired.length;
  sb.run('setTimeout')(() => fired.push('late'), 30);
  sb.close();
  await new Promise((r) => setTimeout(r, 60));
  assert.ok(fired.includes('t') && fired.includes('i'));
  assert.equal(fired.length, n, 'nothing fires after clearInterval / close()');
  assert.equal(sb.errors.length, 1);
  assert.match(sb.errors[0].message, /from a callback/);
});
