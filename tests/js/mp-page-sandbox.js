'use strict';
/**
 * mp-page-sandbox: a mini-program page runtime on top of mp-sandbox (the logic layer of a phone:
 * no TextDecoder/TextEncoder/WebAssembly/fetch, WXWebAssembly by path, wx.request over real HTTP).
 * It adds what a page needs: App/getApp, Page/Component/getCurrentPages, page instances whose
 * setData applies path keys ('msgs[3].text') to `data` and is recorded, lifecycle (onLoad,
 * onShow, onReady, onHide, onUnload), the background rules of the platform, and the few wx.*
 * the demo calls.
 *
 *   const { createPageSandbox } = require('./mp-page-sandbox');
 *   const ps = createPageSandbox({ packageRoot });
 *   ps.launch();                                   // app.js: App() → onLaunch, onShow
 *   const page = ps.open('pages/chat/chat');       // Page() → onLoad, onShow, onReady
 *   ps.input(page, 'onInput', '你好'); ps.tap(page, 'onSend');
 *   await ps.waitFor(() => !page.data.busy, 20000);
 *   page.setDataCalls                              // [{ at, patch, bytes }]
 *   ps.requestLog                                  // [{ at, url, method, data, header, hidden }] per wx.request
 *   ps.hide(); ps.show();                          // app to the background and back
 *   ps.close();
 *
 * createPageSandbox(options): everything createSandbox takes (packageRoot, network,
 * maxTimeoutMs, console, quiet), plus
 *   backgroundKillMs  a request still running this long after hide() fails with
 *                     'request:fail interrupted' (default 5000, the platform's rule); requests
 *                     started while hidden fail at once the same way
 *   components        (page, selector) => the route of the custom component that
 *                     page.selectComponent(selector) finds ('components/x/x'), or null (none
 *                     rendered yet). The sandbox renders no WXML, so the test says which
 *                     elements exist. A component instance is made on the first select of its
 *                     selector (created, attached) and detached with its page; it has data
 *                     (with its properties' defaults), setData (recorded as a page's), methods,
 *                     triggerEvent (recorded in `events`), and setProperties(props), which
 *                     sets properties as a parent's data binding does and runs the observers.
 *
 * setData follows the platform: keys are data paths ('a.b', 'list[2].x', 'list[2]'); values
 * cross as JSON (functions and undefined are dropped); one call carries at most 1 MiB
 * (1048576 bytes of JSON) — a larger one throws, as a device reports it; the callback runs
 * asynchronously. A call after onUnload is recorded in `ps.warnings`.
 *
 * preparePackage(demoDir) copies the demo's code package to a temporary directory for a page
 * sandbox; startRelay(env) runs the relay with the demo model on an ephemeral loopback port;
 * httpRequest(url, opts) is a plain Node HTTP client for checking what the relay says.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createSandbox } = require('./mp-sandbox');

const MAX_SETDATA_BYTES = 1048576;
const ROOT = path.join(__dirname, '..', '..');

/** 'msgs[3].text' → ['msgs', 3, 'text'] */
function parsePath(key) {
  const out = [];
  const re = /([^.[\]]+)|\[(\d+)\]/g;
  let m;
  let consumed = 0;
  while ((m = re.exec(key)) !== null) {
    out.push(m[2] !== undefined ? Number(m[2]) : m[1]);
    consumed += m[0].length;
  }
  const dots = (key.match(/\./g) || []).length;
  if (out.length === 0 || consumed + dots !== key.length) throw new Error(`setData: invalid data path ${JSON.stringify(key)}`);
  return out;
}

function setPath(data, keys, value) {
  let obj = data;
  for (let i = 0; i < keys.length - 1; i++) {
    const k = keys[i];
    if (obj[k] === null || typeof obj[k] !== 'object') obj[k] = typeof keys[i + 1] === 'number' ? [] : {};
    obj = obj[k];
  }
  obj[keys[keys.length - 1]] = value;
}

function createPageSandbox(options) {
  options = Object.assign({}, options);
  const backgroundKillMs = options.backgroundKillMs === undefined ? 5000 : options.backgroundKillMs;
  const registry = { page: null, component: null };
  const stack = [];
  const warnings = [];
  const scrolls = [];
  const toasts = [];
  const requestLog = [];
  let app = null;
  let hidden = false;
  let killTimer = null;

  const globals = Object.assign({}, options.globals, {
    App(def) {
      if (app !== null) throw new Error('App() called twice');
      app = Object.assign({}, def);
    },
    getApp() {
      return app;
    },
    Page(def) {
      registry.page = def;
    },
    Component(def) {
      registry.component = def;
    },
    getCurrentPages() {
      return stack.slice();
    },
  });
  const sb = createSandbox(Object.assign({}, options, { globals }));

  // wx.request with the background rules; the other wx.* the demo uses.
  const bg = sb.run(
    `(function (host) {
      var request = wx.request;
      var open = [];
      function later(fn) { setTimeout(fn, 0); }
      wx.request = function (opts) {
        opts = opts || {};
        host.record(String(opts.url), String(opts.method || 'GET').toUpperCase(), typeof opts.data === 'string' ? opts.data : null, opts.header || {});
        if (host.hidden()) {
          later(function () {
            var res = { errMsg: 'request:fail interrupted' };
            if (opts.fail) opts.fail(res);
            if (opts.complete) opts.complete(res);
          });
          return { abort: function () {}, onChunkReceived: function () {}, offChunkReceived: function () {}, onHeadersReceived: function () {}, offHeadersReceived: function () {} };
        }
        var entry = { interrupted: false, task: null };
        function done() { var i = open.indexOf(entry); if (i >= 0) open.splice(i, 1); }
        var wrapped = {};
        for (var k in opts) wrapped[k] = opts[k];
        wrapped.complete = undefined;
        wrapped.success = function (res) { done(); if (opts.success) opts.success(res); if (opts.complete) opts.complete(res); };
        wrapped.fail = function (res) {
          done();
          if (entry.interrupted) res = { errMsg: 'request:fail interrupted', errno: 600003 };
          if (opts.fail) opts.fail(res);
          if (opts.complete) opts.complete(res);
        };
        entry.task = request(wrapped);
        open.push(entry);
        return entry.task;
      };
      wx.pageScrollTo = function (o) { host.scroll(o); if (o && o.success) later(function () { o.success({ errMsg: 'pageScrollTo:ok' }); }); };
      wx.showToast = function (o) { host.toast(o); };
      wx.getSystemInfoSync = function () { return { platform: 'devtools', SDKVersion: '3.3.4', windowWidth: 375, windowHeight: 667, pixelRatio: 2 }; };
      return { interruptAll: function () { open.slice().forEach(function (e) { e.interrupted = true; e.task.abort(); }); }, openCount: function () { return open.length; } };
    })`,
    'mp-page-sandbox-wx.js'
  )({
    hidden: () => hidden,
    record: (url, method, data, header) => requestLog.push({ at: Date.now(), url, method, data, header: Object.assign({}, header), hidden }),
    scroll: (o) => scrolls.push(Object.assign({ at: Date.now() }, o)),
    toast: (o) => toasts.push(o),
  });

  /** A page's or a component's setData: path keys, JSON crossing, the 1 MiB limit, recorded. */
  function setDataOf(target, name) {
    return function (patch, callback) {
      if (patch === null || typeof patch !== 'object') throw new TypeError('setData: the argument must be an object');
      const json = JSON.stringify(patch);
      const bytes = Buffer.byteLength(json, 'utf8');
      if (bytes > MAX_SETDATA_BYTES) throw new Error(`setData: ${bytes} bytes in one call, over the 1 MiB limit`);
      if (target.unloaded) warnings.push(`setData after onUnload on ${name}: ${json.slice(0, 80)}`);
      const crossed = JSON.parse(json); // what reaches the render layer
      for (const key of Object.keys(crossed)) setPath(target.data, parsePath(key), crossed[key]);
      target.setDataCalls.push({ at: Date.now(), patch: crossed, bytes });
      if (typeof callback === 'function') setTimeout(() => callback.call(target), 0);
    };
  }

  const componentDefs = new Map(); // route -> Component() definition (a module runs once)
  function makeComponent(route) {
    if (!componentDefs.has(route)) {
      registry.component = null;
      sb.require('/' + route + '.js');
      if (registry.component === null) throw new Error(`${route}.js did not call Component()`);
      componentDefs.set(route, registry.component);
    }
    const def = componentDefs.get(route);
    const c = { is: route, setDataCalls: [], events: [], unloaded: false };
    const data = {};
    for (const [k, p] of Object.entries(def.properties || {})) data[k] = p && typeof p === 'object' && 'value' in p ? p.value : p === Boolean ? false : p === Number ? 0 : '';
    c.data = Object.assign(data, JSON.parse(JSON.stringify(def.data || {})));
    c.properties = c.data;
    for (const [k, f] of Object.entries(def.methods || {})) c[k] = f;
    c.setData = setDataOf(c, route);
    c.triggerEvent = (name, detail) => c.events.push({ name, detail });
    c.setProperties = (props) => {
      Object.assign(c.data, JSON.parse(JSON.stringify(props)));
      for (const [fields, fn] of Object.entries(def.observers || {})) {
        const names = fields.split(',').map((f) => f.trim());
        if (names.some((n) => n in props)) fn.apply(c, names.map((n) => c.data[n]));
      }
    };
    const life = Object.assign({}, def.lifetimes);
    c.lifetime = (name) => {
      const f = life[name] || def[name];
      if (typeof f === 'function') f.call(c);
    };
    c.lifetime('created');
    c.lifetime('attached');
    return c;
  }

  function makeInstance(def, route, query) {
    const page = {};
    for (const [k, v] of Object.entries(def)) if (k !== 'data') page[k] = v;
    page.data = JSON.parse(JSON.stringify(def.data || {}));
    page.route = route;
    page.options = Object.assign({}, query);
    page.setDataCalls = [];
    page.unloaded = false;
    page.setData = setDataOf(page, route);
    page.components = new Map(); // selector -> component instance
    page.selectComponent = (selector) => {
      if (page.components.has(selector)) return page.components.get(selector);
      const componentRoute = typeof options.components === 'function' ? options.components(page, selector) : null;
      if (!componentRoute) return null;
      const c = makeComponent(componentRoute);
      page.components.set(selector, c);
      return c;
    };
    return page;
  }

  function unloadComponents(page) {
    for (const c of page.components.values()) {
      c.lifetime('detached');
      c.unloaded = true;
    }
  }

  function call(page, name, arg) {
    if (typeof page[name] === 'function') return page[name](arg);
    return undefined;
  }

  const ps = {
    sandbox: sb,
    wx: sb.wx,
    warnings,
    requestLog,
    scrolls,
    toasts,
    get app() {
      return app;
    },
    get hidden() {
      return hidden;
    },
    /** Loads app.js and runs onLaunch and onShow. */
    launch(launchOptions) {
      sb.require('/app.js');
      if (app === null) throw new Error('app.js did not call App()');
      const opts = Object.assign({ path: '', query: {}, scene: 1001 }, launchOptions);
      call(app, 'onLaunch', opts);
      call(app, 'onShow', opts);
      return app;
    },
    /** Opens a page (as navigateTo): onLoad(query), onShow, onReady. */
    open(route, query) {
      registry.page = null;
      sb.require('/' + route + '.js');
      if (registry.page === null) throw new Error(`${route}.js did not call Page()`);
      const page = makeInstance(registry.page, route, query);
      const top = stack[stack.length - 1];
      if (top) call(top, 'onHide');
      stack.push(page);
      call(page, 'onLoad', Object.assign({}, query));
      call(page, 'onShow');
      call(page, 'onReady');
      return page;
    },
    /** Closes the top page (navigateBack): onUnload. */
    back() {
      const page = stack.pop();
      if (!page) return;
      call(page, 'onUnload');
      unloadComponents(page);
      page.unloaded = true;
      const top = stack[stack.length - 1];
      if (top) call(top, 'onShow');
    },
    /** A tap on an element with data-* attributes `dataset` bound to `handler`. */
    tap(page, handler, dataset) {
      const target = { id: '', dataset: Object.assign({}, dataset) };
      return page[handler]({ type: 'tap', timeStamp: Date.now(), target, currentTarget: target, detail: { x: 0, y: 0 } });
    },
    /** An input event with `value` to `handler`. */
    input(page, handler, value) {
      const target = { id: '', dataset: {} };
      return page[handler]({ type: 'input', timeStamp: Date.now(), target, currentTarget: target, detail: { value, cursor: value.length } });
    },
    /** The app goes to the background: onHide; running requests fail after backgroundKillMs. */
    hide() {
      if (hidden) return;
      hidden = true;
      const top = stack[stack.length - 1];
      if (top) call(top, 'onHide');
      if (app) call(app, 'onHide');
      killTimer = setTimeout(() => {
        killTimer = null;
        if (hidden) bg.interruptAll();
      }, backgroundKillMs);
    },
    /** Back to the foreground: onShow (app, then page). */
    show() {
      if (!hidden) return;
      hidden = false;
      if (killTimer !== null) clearTimeout(killTimer);
      killTimer = null;
      if (app) call(app, 'onShow', { path: '', query: {}, scene: 1001 });
      const top = stack[stack.length - 1];
      if (top) call(top, 'onShow');
    },
    openRequests: () => bg.openCount(),
    /** Resolves when pred() is true (polled every 10 ms); rejects after timeoutMs. */
    waitFor(pred, timeoutMs, what) {
      const started = Date.now();
      return new Promise((resolve, reject) => {
        const check = () => {
          let ok = false;
          try {
            ok = pred();
          } catch (e) {
            reject(e);
            return;
          }
          if (ok) resolve(ok);
          else if (Date.now() - started > timeoutMs) reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what || pred.toString()}`));
          else setTimeout(check, 10);
        };
        check();
      });
    },
    close() {
      if (killTimer !== null) clearTimeout(killTimer);
      for (const page of stack.splice(0)) {
        call(page, 'onUnload');
        unloadComponents(page);
        page.unloaded = true;
      }
      sb.close();
    },
  };
  return ps;
}

/**
 * Copies the demo's code package (without the relay and the H5 page) to a temporary directory,
 * so that a test never writes into the work tree. Returns { dir, remove }.
 */
function preparePackage(demoDir) {
  const index = path.join(demoDir, 'miniprogram_npm', 'chunkwise', 'index.js');
  if (!fs.existsSync(index)) throw new Error(`${index} is missing: run ./build.sh first`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chunkwise-demo-'));
  fs.cpSync(demoDir, dir, {
    recursive: true,
    filter: (src) => !/^(server|h5|node_modules)(\/|$)/.test(path.relative(demoDir, src)),
  });
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A free TCP port on 127.0.0.1. */
function freePort() {
  const net = require('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts the relay (relay/) with the built-in demo model on an ephemeral
 * loopback port: `cargo build -p chunkwise-relay` (quick when up to date), then the binary,
 * with no upstream configured whatever the environment says. Waits (bounded) for /healthz.
 * Returns { base, port, proc, stop(), output() }.
 */
async function startRelay(env, { readyTimeoutMs = 300000 } = {}) {
  const { spawn, spawnSync } = require('node:child_process');
  const http = require('node:http');
  const bin = path.join(ROOT, 'target', 'debug', process.platform === 'win32' ? 'chunkwise-relay.exe' : 'chunkwise-relay');
  const build = spawnSync('cargo', ['build', '-q', '-p', 'chunkwise-relay'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: readyTimeoutMs });
  if (build.error && !fs.existsSync(bin)) throw new Error(`cannot build the relay: ${build.error.message}`);
  if (build.status !== 0 && !fs.existsSync(bin)) throw new Error(`cargo build -p chunkwise-relay failed:\n${build.stderr}`);
  const port = await freePort();
  const clean = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(UPSTREAM_|RELAY_)/.test(k) && k !== 'PORT' && k !== 'HOST') clean[k] = v;
  const childEnv = Object.assign(clean, {
    HOST: '127.0.0.1',
    PORT: String(port),
    RELAY_STATIC_DIR: path.join(ROOT, 'miniprogram-demo', 'h5'),
    RELAY_PKG_DIR: path.join(ROOT, 'pkg'),
    RELAY_PER_IP_PER_MINUTE: '10000',
    RELAY_PER_IP_BURST: '1000',
  }, env);
  const proc = spawn(bin, [], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const base = `http://127.0.0.1:${port}`;
  const started = Date.now();
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the relay exited (${proc.exitCode}):\n${out}`);
    const ok = await new Promise((resolve) => {
      const req = http.get(`${base}/healthz`, { agent: false, timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => {
        req.destroy();
        resolve(false);
      });
    });
    if (ok) break;
    if (Date.now() - started > 20000) {
      proc.kill('SIGKILL');
      throw new Error(`the relay did not answer /healthz within 20 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    port,
    proc,
    output: () => out,
    stop() {
      if (proc.exitCode !== null) return Promise.resolve();
      return new Promise((resolve) => {
        const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
        proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        proc.kill('SIGTERM');
      });
    },
  };
}

/** A plain Node HTTP request to the relay: { status, headers, body (string) }. */
function httpRequest(url, { method = 'GET', body = null, headers = {}, timeoutMs = 60000 } = {}) {
  const http = require('node:http');
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: Object.assign({ 'content-type': 'application/json' }, headers), agent: false }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body === null ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  });
}

/**
 * The blocks a chunkwise-markdown component shows, from its data, as the renderer's nodes: a
 * code block's lines (`c[i]`, classes in `pre[i]`) are put back under its pre and code.
 */
function componentBlocks(data) {
  return data.ids.map((i) => {
    const pre = data.pre && data.pre[i];
    if (data.kinds[i] !== 'code' || !pre) return data.b[i];
    const lines = data.c[i].map((line) => (pre.ln === '' ? line[0] : { name: 'span', attrs: { class: pre.ln }, children: line }));
    return [{ name: 'pre', attrs: { class: pre.pre }, children: [{ name: 'code', attrs: { class: pre.code }, children: lines }] }];
  });
}

module.exports = { createPageSandbox, preparePackage, parsePath, startRelay, httpRequest, freePort, componentBlocks };
