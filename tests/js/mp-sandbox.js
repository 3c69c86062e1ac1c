'use strict';
/**
 * mp-sandbox: the WeChat mini-program logic layer as a phone has it, in a Node `vm` context.
 *
 *   const { createSandbox } = require('./mp-sandbox');
 *   const sb = createSandbox({ packageRoot: '/path/to/code/package' });
 *   const cw = sb.require('/miniprogram_npm/chunkwise/index.js');   // CommonJS, inside the context
 *   await cw.init({ wasmPath: '/miniprogram_npm/chunkwise/chunkwise.wasm.br' });
 *   const task = sb.wx.request({ url: 'http://127.0.0.1:PORT/x', enableChunked: true, ... });
 *   task.onChunkReceived((res) => ...);   // res.data: an ArrayBuffer of the vm realm
 *   sb.close();                           // aborts open requests, clears timers
 *
 * What the context has (and a device has): the ECMAScript built-ins, `console`,
 * `setTimeout`/`clearTimeout`/`setInterval`/`clearInterval` (numeric ids), `wx.request`,
 * `WXWebAssembly` ({instantiate, Memory, Table, Global}), `require`/`module`/`exports` for files
 * of the package, and whatever `options.globals` adds (e.g. `Page`, `getApp` for a page sandbox).
 * What it does not have (and a device does not): `TextDecoder`, `TextEncoder`, `WebAssembly`,
 * `fetch`, `window`, `document`, `URL`, `Buffer`, `process` (`sb.leakedGlobals()` checks it from
 * inside the context).
 *
 * createSandbox(options):
 *   packageRoot        the code package directory (required); `require` and WXWebAssembly paths
 *                      resolve under it and can never leave it
 *   globals            extra globals to define in the context ({ name: value })
 *   console            the console the context gets (default: the host's)
 *   quiet              do not print exceptions thrown by callbacks (they are still in sb.errors)
 *   network            initial network behaviour, see `sb.network` below
 *   maxTimeoutMs       the platform's timeout cap (default 60000: larger `timeout`s are ignored)
 *
 * sb.network (mutable; read when each request starts):
 *   split              null (deliver each socket read as one chunk, the default) or
 *                      { seed, maxBytes } to re-split every read at seeded random positions into
 *                      pieces of 1..maxBytes bytes (default maxBytes 64)
 *   successOnly        the PC WeChat quirk: with enableChunked, onChunkReceived never fires and
 *                      `success` gets the whole body at once (default false)
 *   errorStatusNoChunks the reported 4xx/5xx behaviour: with enableChunked and a status >= 400,
 *                      no chunk is delivered and success gets data '' (default false)
 *   arrayBufferRealm   'context' (default, as on a device: `res.data instanceof ArrayBuffer` holds
 *                      in the package's code) or 'host' (ArrayBuffers of the Node realm, to check
 *                      that code copes with a foreign ArrayBuffer)
 *
 * wx.request(opts) follows the documented API over real HTTP (node:http), to 127.0.0.1 only:
 *   url, method (GET), header, data (string, ArrayBuffer or object: JSON body, or the query
 *   string for GET), timeout (default and cap 60000 ms, for the whole request), dataType
 *   ('json' default: the body is parsed when it is JSON), responseType ('text' | 'arraybuffer'),
 *   enableChunked, success/fail/complete. The task has abort(), onHeadersReceived(cb) ({statusCode,
 *   header, cookies}), offHeadersReceived, onChunkReceived(cb) ({data: ArrayBuffer}),
 *   offChunkReceived. errMsg: 'request:ok', 'request:fail abort', 'request:fail timeout',
 *   'request:fail url not in domain list', 'request:fail <socket error>'.
 *   With enableChunked (and no quirk) success gets data '' (responseType 'text') or an empty
 *   ArrayBuffer ('arraybuffer'): the body went to onChunkReceived.
 *
 * WXWebAssembly.instantiate(path, imports) takes only a string path inside the package starting
 * with '/' and ending in '.wasm' or '.wasm.br' (decompressed with brotli); bytes, a Module,
 * URLs and paths outside the package reject, as on a device. Resolves to {instance, module}.
 *
 * Other properties of the sandbox:
 *   sb.context          the context's globalThis
 *   sb.wx, sb.WXWebAssembly
 *   sb.require(path)    require a package file from outside ('/a/b.js', '/a/b', '/a'); a module
 *                       sees the ECMAScript built-ins through its wrapper's parameters (the same
 *                       objects; it avoids the slow global lookups of Node's vm contexts)
 *   sb.run(code, name)  evaluate a script in the context, returns its value
 *   sb.requests         one record per wx.request: {url, method, status, chunks, bytes, outcome}
 *   sb.errors           exceptions thrown by the package's callbacks (a device reports them to
 *                       onError and goes on); also printed with console.error unless quiet
 *   sb.leakedGlobals() the names of the globals a device lacks that are (wrongly) present
 *   sb.close()          aborts every open request and clears every timer
 */
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const vm = require('node:vm');
const zlib = require('node:zlib');

const DEVICE_LACKS = ['TextDecoder', 'TextEncoder', 'WebAssembly', 'fetch', 'window', 'document', 'URL', 'Buffer', 'process', 'global', 'self', 'ReadableStream', 'EventSource', 'XMLHttpRequest', 'queueMicrotask', 'setImmediate', 'structuredClone'];

// The ECMAScript built-ins a module sees through its wrapper's parameters (see load()).
const BUILTINS = ['Object', 'Function', 'Array', 'Number', 'parseFloat', 'parseInt', 'Boolean', 'String', 'Symbol', 'Date', 'Promise', 'RegExp',
  'Error', 'AggregateError', 'EvalError', 'RangeError', 'ReferenceError', 'SyntaxError', 'TypeError', 'URIError', 'JSON', 'Math', 'Intl',
  'ArrayBuffer', 'Uint8Array', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array', 'Float32Array', 'Float64Array',
  'Uint8ClampedArray', 'BigUint64Array', 'BigInt64Array', 'DataView', 'Map', 'BigInt', 'Set', 'WeakMap', 'WeakSet', 'Proxy', 'Reflect',
  'FinalizationRegistry', 'WeakRef', 'decodeURI', 'decodeURIComponent', 'encodeURI', 'encodeURIComponent', 'escape', 'unescape', 'isFinite', 'isNaN'];

/** A small seeded PRNG (mulberry32): the same seed gives the same splits. */
function rng(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits `buf` at random positions into pieces of 1..maxBytes bytes (views, no copy). */
function splitRandom(buf, random, maxBytes) {
  const out = [];
  let at = 0;
  while (at < buf.length) {
    const n = Math.min(buf.length - at, 1 + Math.floor(random() * maxBytes));
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

// Runs inside the context: builds wx and WXWebAssembly out of host primitives so that every
// object, promise and ArrayBuffer the package sees belongs to the context's realm.
const BOOTSTRAP = `(function (host) {
  'use strict';
  var W = globalThis.WebAssembly;
  var WXWebAssembly = {
    instantiate: function (path, imports) {
      return new Promise(function (resolve, reject) {
        if (typeof path !== 'string') {
          reject(new TypeError('WXWebAssembly.instantiate: path must be a string path inside the code package, got ' +
            Object.prototype.toString.call(path)));
          return;
        }
        var bytes;
        try {
          bytes = host.readWasm(path);
        } catch (e) {
          reject(new Error(String(e && e.message)));
          return;
        }
        W.instantiate(bytes, imports).then(function (r) {
          resolve({ instance: r.instance, module: r.module });
        }, reject);
      });
    },
    Memory: W.Memory,
    Table: W.Table,
    Global: W.Global,
  };

  function toArrayBuffer(hostBytes, realm) {
    if (realm === 'host') return host.hostArrayBuffer(hostBytes);
    var ab = new ArrayBuffer(hostBytes.length);
    new Uint8Array(ab).set(hostBytes);
    return ab;
  }

  function call(fn, arg) {
    if (typeof fn !== 'function') return;
    try {
      fn(arg);
    } catch (e) {
      host.callbackError(e);
    }
  }

  function request(opts) {
    opts = opts || {};
    var net = host.network();
    var chunked = opts.enableChunked === true;
    var chunkCbs = [];
    var headerCbs = [];
    var finished = false;
    var body = null;
    if (opts.data !== undefined && opts.data !== null) {
      if (typeof opts.data === 'string') body = opts.data;
      else if (opts.data instanceof ArrayBuffer || Object.prototype.toString.call(opts.data) === '[object ArrayBuffer]') body = new Uint8Array(opts.data);
      else body = opts.data; // an object: the host serializes it (JSON or a query string)
    }
    function end(outcome, res) {
      if (finished) return;
      finished = true;
      if (outcome === 'ok') call(opts.success, res);
      else call(opts.fail, res);
      call(opts.complete, res);
    }
    var handle = host.httpRequest(
      {
        url: String(opts.url),
        method: String(opts.method || 'GET').toUpperCase(),
        header: opts.header || {},
        body: body,
        bodyJson: body !== null && typeof body === 'object' && !(body instanceof Uint8Array) ? JSON.stringify(body) : null,
        timeout: opts.timeout,
        chunked: chunked,
      },
      {
        headers: function (statusCode, pairs) {
          var header = {};
          for (var i = 0; i < pairs.length; i += 2) header[pairs[i]] = pairs[i + 1];
          var res = { statusCode: statusCode, header: header, cookies: [] };
          var cbs = headerCbs.slice();
          for (var j = 0; j < cbs.length; j++) call(cbs[j], res);
        },
        chunk: function (hostBytes) {
          var cbs = chunkCbs.slice();
          var data = toArrayBuffer(hostBytes, net.arrayBufferRealm);
          for (var j = 0; j < cbs.length; j++) call(cbs[j], { data: data });
        },
        done: function (statusCode, pairs, hostBody) {
          var header = {};
          for (var i = 0; i < pairs.length; i += 2) header[pairs[i]] = pairs[i + 1];
          var data;
          if (opts.responseType === 'arraybuffer') {
            data = toArrayBuffer(hostBody === null ? new Uint8Array(0) : hostBody, net.arrayBufferRealm);
          } else {
            data = hostBody === null ? '' : host.utf8(hostBody);
            if ((opts.dataType === undefined || opts.dataType === 'json') && data !== '') {
              try {
                data = JSON.parse(data);
              } catch (e) {
                // not JSON: the string, as the platform does
              }
            }
          }
          end('ok', { data: data, statusCode: statusCode, header: header, cookies: [], errMsg: 'request:ok' });
        },
        fail: function (reason) {
          end('fail', { errMsg: 'request:fail ' + reason, errno: reason === 'timeout' ? 5 : 600001 });
        },
      }
    );
    return {
      abort: function () {
        if (finished) return;
        handle.abort();
        end('fail', { errMsg: 'request:fail abort', errno: 1 });
      },
      onChunkReceived: function (cb) {
        if (typeof cb === 'function') chunkCbs.push(cb);
      },
      offChunkReceived: function (cb) {
        chunkCbs = cb === undefined ? [] : chunkCbs.filter(function (f) { return f !== cb; });
      },
      onHeadersReceived: function (cb) {
        if (typeof cb === 'function') headerCbs.push(cb);
      },
      offHeadersReceived: function (cb) {
        headerCbs = cb === undefined ? [] : headerCbs.filter(function (f) { return f !== cb; });
      },
    };
  }

  var wx = { request: request };
  delete globalThis.WebAssembly;
  return { wx: wx, WXWebAssembly: WXWebAssembly };
})`;

/** Creates a sandbox; see the top of this file. */
function createSandbox(options) {
  options = options || {};
  if (!options.packageRoot) throw new TypeError('createSandbox: options.packageRoot is required');
  const root = fs.realpathSync(path.resolve(options.packageRoot));
  const hostConsole = options.console || console;
  const maxTimeoutMs = options.maxTimeoutMs === undefined ? 60000 : options.maxTimeoutMs;
  const network = Object.assign({ split: null, successOnly: false, errorStatusNoChunks: false, arrayBufferRealm: 'context' }, options.network || {});
  const requests = [];
  const errors = [];
  const openRequests = new Set();
  const timers = new Map();
  let nextTimerId = 1;
  let closed = false;

  const context = vm.createContext({}, { name: 'mini-program logic layer' });

  /** A package path ('/a/b' or relative to `fromDir`, itself package-relative) → absolute file. */
  function inPackage(p, fromDir) {
    const rel = p.startsWith('/') ? p : path.posix.join(fromDir || '/', p);
    const abs = path.join(root, path.posix.normalize(rel));
    if (abs !== root && !abs.startsWith(root + path.sep)) throw new Error(`path ${JSON.stringify(p)} is outside the code package`);
    return abs;
  }

  const host = {
    network: () => Object.assign({}, network),
    readWasm(p) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(p)) throw new Error(`WXWebAssembly.instantiate: ${JSON.stringify(p)} is a URL; only a path inside the code package is accepted`);
      if (!p.startsWith('/')) throw new Error(`WXWebAssembly.instantiate: ${JSON.stringify(p)} must be an absolute path inside the code package (starting with '/')`);
      if (!/\.wasm(\.br)?$/.test(p)) throw new Error(`WXWebAssembly.instantiate: ${JSON.stringify(p)} is not a .wasm or .wasm.br file`);
      const file = inPackage(p);
      if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw new Error(`WXWebAssembly.instantiate: file not found: ${p}`);
      const bytes = fs.readFileSync(file);
      return p.endsWith('.br') ? zlib.brotliDecompressSync(bytes) : bytes;
    },
    hostArrayBuffer(bytes) {
      const ab = new ArrayBuffer(bytes.length);
      new Uint8Array(ab).set(bytes);
      return ab;
    },
    utf8: (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'),
    callbackError(e) {
      errors.push(e);
      if (!options.quiet) hostConsole.error('[mp-sandbox] a callback threw:', e);
    },
    httpRequest: startRequest,
  };

  function startRequest(req, cb) {
    const net = Object.assign({}, network);
    const record = { url: req.url, method: req.method, status: null, chunks: 0, bytes: 0, outcome: 'pending' };
    requests.push(record);
    let httpReq = null;
    let timer = null;
    let over = false;
    const entry = { abort };
    function finish(outcome) {
      over = true;
      record.outcome = outcome;
      openRequests.delete(entry);
      if (timer !== null) clearTimeout(timer);
    }
    function abort() {
      if (over) return;
      finish('abort');
      if (httpReq !== null) httpReq.destroy();
    }
    function failLater(reason) {
      // callbacks are always asynchronous, as on the platform
      setImmediate(() => {
        if (over) return;
        finish('fail: ' + reason);
        cb.fail(reason);
      });
    }
    let url;
    try {
      url = new URL(req.url);
    } catch (e) {
      failLater('invalid url');
      return entry;
    }
    if (url.protocol !== 'http:' || url.hostname !== '127.0.0.1') {
      failLater('url not in domain list');
      return entry;
    }
    if (closed) {
      failLater('sandbox closed');
      return entry;
    }
    openRequests.add(entry);
    const headers = Object.assign({}, req.header);
    let payload = null;
    if (req.body !== null) {
      if (typeof req.body === 'string') payload = Buffer.from(req.body, 'utf8');
      else if (req.bodyJson === null) payload = Buffer.from(req.body);
      else if (req.method === 'GET') {
        const q = new URLSearchParams();
        for (const [k, v] of Object.entries(JSON.parse(req.bodyJson))) q.append(k, typeof v === 'string' ? v : JSON.stringify(v));
        url.search = url.search ? url.search + '&' + q : '?' + q;
      } else {
        payload = Buffer.from(req.bodyJson, 'utf8');
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
      }
    }
    const timeout = typeof req.timeout === 'number' && req.timeout > 0 ? Math.min(req.timeout, maxTimeoutMs) : maxTimeoutMs;
    timer = setTimeout(() => {
      if (over) return;
      finish('fail: timeout');
      if (httpReq !== null) httpReq.destroy();
      cb.fail('timeout');
    }, timeout);
    const random = net.split ? rng(net.split.seed === undefined ? 1 : net.split.seed) : null;
    const maxBytes = net.split && net.split.maxBytes ? net.split.maxBytes : 64;
    httpReq = http.request(url, { method: req.method, headers, agent: false }, (res) => {
      if (over) return res.resume();
      record.status = res.statusCode;
      const pairs = res.rawHeaders.slice();
      cb.headers(res.statusCode, pairs);
      const deliverChunks = req.chunked && !net.successOnly && !(net.errorStatusNoChunks && res.statusCode >= 400);
      const keep = [];
      res.on('data', (buf) => {
        if (over) return;
        record.bytes += buf.length;
        if (!deliverChunks) {
          keep.push(buf);
          return;
        }
        const pieces = random ? splitRandom(buf, random, maxBytes) : [buf];
        for (const piece of pieces) {
          if (over) return; // aborted from a callback
          record.chunks += 1;
          cb.chunk(piece);
        }
      });
      res.on('end', () => {
        if (over) return;
        finish('ok');
        let bodyOut;
        if (!req.chunked || net.successOnly) bodyOut = Buffer.concat(keep);
        else bodyOut = null; // the body went to onChunkReceived (or, for the error quirk, nowhere)
        cb.done(res.statusCode, pairs, bodyOut);
      });
      res.on('error', (e) => {
        if (over) return;
        finish('fail: ' + e.message);
        cb.fail(e.message);
      });
    });
    httpReq.on('error', (e) => {
      if (over) return;
      finish('fail: ' + e.message);
      cb.fail(e.message);
    });
    httpReq.end(payload === null ? undefined : payload);
    return entry;
  }

  // Timers with numeric ids, as in a mini program; all cleared by close().
  function addTimer(repeat, fn, ms, args) {
    if (typeof fn !== 'function') throw new TypeError('setTimeout/setInterval: the callback must be a function');
    const id = nextTimerId++;
    const run = () => {
      if (!repeat) timers.delete(id);
      try {
        fn.apply(undefined, args);
      } catch (e) {
        host.callbackError(e);
      }
    };
    const delay = Math.max(0, Number(ms) || 0);
    timers.set(id, { repeat, handle: repeat ? setInterval(run, delay) : setTimeout(run, delay) });
    return id;
  }
  function clearTimer(id) {
    const t = timers.get(id);
    if (!t) return;
    timers.delete(id);
    if (t.repeat) clearInterval(t.handle);
    else clearTimeout(t.handle);
  }

  const made = vm.runInContext(BOOTSTRAP, context, { filename: 'mp-sandbox-bootstrap.js' })(host);
  const define = (name, value) => Object.defineProperty(context, name, { value, writable: true, configurable: true, enumerable: false });
  define('wx', made.wx);
  define('WXWebAssembly', made.WXWebAssembly);
  define('console', hostConsole);
  define('setTimeout', (fn, ms, ...args) => addTimer(false, fn, ms, args));
  define('setInterval', (fn, ms, ...args) => addTimer(true, fn, ms, args));
  define('clearTimeout', clearTimer);
  define('clearInterval', clearTimer);
  for (const [name, value] of Object.entries(options.globals || {})) define(name, value);

  // CommonJS for the package's files, as the mini-program runtime does it. The module function
  // is wrapped in one whose parameters are the context's own built-ins (the same objects as
  // globalThis.X): Node's contextified global answers every global lookup through a C++
  // interceptor, several times slower than a phone's JS engine; lexical bindings avoid that
  // artifact (WeChat wraps modules in a function with parameters too).
  // Read when a module loads, so that a test may first take a built-in away (an engine without it).
  const builtinList = `[${BUILTINS.map((n) => `typeof ${n} === 'undefined' ? undefined : ${n}`).join(', ')}]`;
  const cache = new Map();
  function resolveFile(p, fromDir) {
    const base = inPackage(p, fromDir);
    for (const f of [base, base + '.js', path.join(base, 'index.js')]) {
      if (fs.existsSync(f) && fs.statSync(f).isFile()) return f;
    }
    throw new Error(`module ${JSON.stringify(p)} is not defined (looked for ${path.relative(root, base)}[.js|/index.js] in the code package)`);
  }
  function packagePathOf(file) {
    return '/' + path.relative(root, file).split(path.sep).join('/');
  }
  function makeRequire(fromDir) {
    return function require(p) {
      if (typeof p !== 'string') throw new TypeError('require: the path must be a string');
      let file;
      if (p.startsWith('.') || p.startsWith('/')) file = resolveFile(p, fromDir);
      else {
        // an npm package name: miniprogram_npm/<name> in this directory or a parent
        let dir = fromDir;
        for (let guard = 0; guard < 64; guard++) {
          try {
            file = resolveFile(path.posix.join(dir, 'miniprogram_npm', p), '/');
            break;
          } catch (e) {
            if (dir === '/') throw new Error(`module ${JSON.stringify(p)} is not defined (no miniprogram_npm/${p}; run "构建 npm")`);
            dir = path.posix.dirname(dir);
          }
        }
      }
      return load(file);
    };
  }
  function load(file) {
    if (cache.has(file)) return cache.get(file).exports;
    const module = { exports: {} };
    cache.set(file, module);
    const pkgPath = packagePathOf(file);
    const code = fs.readFileSync(file, 'utf8');
    const wrapper = vm.runInContext(`(function (${BUILTINS.join(', ')}) { return function (require, module, exports, __filename, __dirname) {${code}\n}; })`, context, { filename: pkgPath }).apply(undefined, vm.runInContext(builtinList, context));
    try {
      wrapper.call(module.exports, makeRequire(path.posix.dirname(pkgPath)), module, module.exports, pkgPath, path.posix.dirname(pkgPath));
    } catch (e) {
      cache.delete(file);
      throw e;
    }
    return module.exports;
  }

  return {
    context,
    wx: made.wx,
    WXWebAssembly: made.WXWebAssembly,
    network,
    requests,
    errors,
    require: (p) => makeRequire('/')(p.startsWith('/') ? p : '/' + p),
    run: (code, filename) => vm.runInContext(code, context, { filename: filename || 'sandbox-script.js' }),
    leakedGlobals() {
      const present = vm.runInContext(`(function (names) { return names.filter(function (n) { return typeof globalThis[n] !== 'undefined'; }).join(','); })`, context)(DEVICE_LACKS);
      return present === '' ? [] : present.split(',');
    },
    close() {
      closed = true;
      for (const entry of [...openRequests]) entry.abort();
      for (const id of [...timers.keys()]) clearTimer(id);
    },
  };
}

module.exports = { createSandbox, DEVICE_LACKS, rng, splitRandom };
