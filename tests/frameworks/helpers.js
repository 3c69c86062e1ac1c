'use strict';
// Shared by the framework tests: the package as npm ships it (`npm pack` of pkg/), a chat
// endpoint on 127.0.0.1 that streams a known Markdown answer in OpenAI's SSE format, and a
// runner that starts a built mini program (app, then one page) inside tests/js/mp-sandbox.js.
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { createSandbox, rng } = require('../js/mp-sandbox');
const { markdownOneShot } = require('../js/helpers');

const ROOT = path.join(__dirname, '..', '..');
const TOOLS = path.join(__dirname, 'tools', 'node_modules');
const ANSWER = fs.readFileSync(path.join(ROOT, 'markdown', 'tests', 'fixtures', 'markdown_answers', 'zh-miniprogram-streaming.md'), 'utf8');

if (!fs.existsSync(path.join(ROOT, 'pkg', 'package.json'))) throw new Error('pkg/ is not built: run ./build.sh first');

/** A scratch directory under the OS temp dir, removed when the process exits. */
function scratch(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `chunkwise-${name}-`));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let tarball = null;
/** `npm pack` of pkg/, once per process: the file a user's `npm i chunkwise` unpacks. */
function packTarball() {
  if (tarball === null) {
    const dir = scratch('pack');
    const name = execFileSync('npm', ['pack', path.join(ROOT, 'pkg'), '--pack-destination', dir, '--silent'], { encoding: 'utf8' }).trim().split('\n').pop();
    tarball = path.join(dir, name);
  }
  return tarball;
}

/** Unpacks the tarball as node_modules/chunkwise of `projectDir`, as npm does for a package
 * with no dependencies (so a project's cached node_modules need no new `npm install`). */
function installPackage(projectDir) {
  const dest = path.join(projectDir, 'node_modules', 'chunkwise');
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(dest, { recursive: true });
  execFileSync('tar', ['-xzf', packTarball(), '-C', dest, '--strip-components=1']);
  return dest;
}

/** The answer as an OpenAI Chat Completions SSE body: deltas of 1..6 characters. */
function openaiBody(text, seed) {
  const random = rng(seed);
  const chars = Array.from(text);
  let out = '';
  for (let i = 0; i < chars.length; ) {
    const n = 1 + Math.floor(random() * 6);
    const content = chars.slice(i, i + n).join('');
    i += n;
    out += `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
  }
  out += `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`;
  return Buffer.from(out + 'data: [DONE]\n\n', 'utf8');
}

/** A chat endpoint on 127.0.0.1 that streams ANSWER in random small writes. */
async function startChatServer() {
  const body = openaiBody(ANSWER, 7);
  const server = http.createServer((req, res) => {
    if (req.method === 'OPTIONS') {
      // a browser's preflight for a cross-origin JSON POST
      res.writeHead(204, { 'access-control-allow-origin': '*', 'access-control-allow-headers': '*', 'access-control-allow-methods': 'POST' });
      res.end();
      return;
    }
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'access-control-allow-origin': '*' });
      const random = rng(11);
      let at = 0;
      (function next() {
        if (at >= body.length) return res.end();
        const n = 1 + Math.floor(random() * 700);
        res.write(body.subarray(at, at + n));
        at += n;
        setImmediate(next);
      })();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/v1/chat/completions`;
  return { url, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** What a page must have shown for ANSWER: the text, and the blocks of a one-shot render. */
function expectedAnswer() {
  return { text: ANSWER, blocks: JSON.parse(JSON.stringify(markdownOneShot(ANSWER))) };
}

/** Checks a page's stored result against expectedAnswer(). */
function checkAnswer(result) {
  assert.ok(result, 'the page stored no result');
  const want = expectedAnswer();
  assert.equal(result.text, want.text);
  assert.deepEqual(JSON.parse(JSON.stringify(result.blocks)), want.blocks);
}

/**
 * Starts the built mini program in `root` (app.js, then `page` with `query`) in the sandbox,
 * the network re-splitting every read at seeded random positions, and waits until the page has
 * stored `resultKey` with wx.setStorageSync. The framework runtimes' other wx APIs answer with
 * harmless defaults (they are not what is tested); App/Page/Component run their lifecycles.
 */
async function runMiniProgram({ root, page, query, resultKey, seed, timeoutMs, platform, network }) {
  const apps = [];
  const pages = [];
  const components = [];
  const storage = new Map();
  const sb = createSandbox({
    packageRoot: root,
    network: Object.assign({ split: { seed: seed || 1, maxBytes: 40 } }, network),
    globals: {
      App: (o) => apps.push(o),
      Page: (o) => pages.push(o),
      Component: (o) => components.push(o),
      Behavior: (o) => o,
      getApp: () => apps[0],
      getCurrentPages: () => [],
      // WeChat's logic layer has a module-shared object named `global` (not the global
      // object); uni-app's runtime registers createApp/createPage on it.
      global: {},
    },
  });
  const ns = platform === 'tt' ? 'tt' : 'wx';
  const api = platform === 'tt' ? sb.wx : sb.wx;
  const defaults = {
    request: api.request,
    getSystemInfoSync: () => ({ platform: 'devtools', system: 'iOS 17', windowWidth: 375, windowHeight: 667, screenWidth: 375, screenHeight: 667, pixelRatio: 2, SDKVersion: '3.7.0', version: '8.0.50', language: 'zh_CN', statusBarHeight: 20 }),
    getWindowInfo: () => ({ windowWidth: 375, windowHeight: 667, screenWidth: 375, screenHeight: 667, pixelRatio: 2, statusBarHeight: 20 }),
    getDeviceInfo: () => ({ platform: 'devtools', system: 'iOS 17' }),
    getAppBaseInfo: () => ({ SDKVersion: '3.7.0', version: '8.0.50', language: 'zh_CN', theme: 'light' }),
    getLaunchOptionsSync: () => ({ path: page, query: {}, scene: 1001 }),
    getEnterOptionsSync: () => ({ path: page, query: {}, scene: 1001 }),
    getMenuButtonBoundingClientRect: () => ({ top: 24, right: 365, bottom: 56, left: 278, width: 87, height: 32 }),
    setStorageSync: (k, v) => storage.set(k, JSON.parse(JSON.stringify(v))),
    getStorageSync: (k) => (storage.has(k) ? storage.get(k) : ''),
    canIUse: () => true,
    nextTick: (fn) => setTimeout(fn, 0),
  };
  const calls = new Set();
  const platformApi = new Proxy(defaults, {
    get(target, name) {
      if (typeof name !== 'string') return undefined;
      if (name in target) return target[name];
      // bundlers keep their chunk registry on wx (wx.webpackJsonp): a property, not an API
      if (/webpack|Jsonp|^__/.test(name)) return undefined;
      calls.add(name);
      return () => undefined;
    },
  });
  Object.defineProperty(sb.context, ns, { value: platformApi, writable: true, configurable: true });
  if (platform === 'tt') {
    // Douyin: the same shape under other names, and no WXWebAssembly.
    Object.defineProperty(sb.context, 'TTWebAssembly', { value: sb.WXWebAssembly, writable: true, configurable: true });
    sb.run('delete globalThis.WXWebAssembly; delete globalThis.wx;');
  }
  const leaked = sb.leakedGlobals().filter((name) => name !== 'global');
  assert.deepEqual(leaked, [], `the sandbox leaks ${leaked}`);
  try {
    sb.require('/app.js');
    assert.equal(apps.length, 1, 'app.js did not call App()');
    const app = apps[0];
    if (typeof app.onLaunch === 'function') app.onLaunch.call(app, { path: page, query: {}, scene: 1001 });
    if (typeof app.onShow === 'function') app.onShow.call(app, { path: page, query: {}, scene: 1001 });
    sb.require(`/${page}.js`);
    const instance = pageInstance(pages, components, page);
    instance.lifecycle('attached');
    instance.call('onLoad', query);
    instance.call('onShow');
    instance.lifecycle('ready');
    instance.call('onReady');
    const deadline = Date.now() + (timeoutMs || 30000);
    while (!storage.has(resultKey)) {
      if (sb.errors.length) throw sb.errors[0];
      if (Date.now() > deadline) throw new Error(`the page stored no ${resultKey} within ${timeoutMs || 30000} ms (requests: ${JSON.stringify(sb.requests)})`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (sb.errors.length) throw sb.errors[0];
    return { result: storage.get(resultKey), requests: sb.requests.slice(), setDataCalls: instance.setDataCalls };
  } finally {
    sb.close();
  }
}

/** setData's path keys: 'msgs[3].blocks[7]' sets that element, creating what is missing. */
function setPath(data, key, value) {
  const parts = [];
  key.replace(/([^.[\]]+)|\[(\d+)\]/g, (_, name, index) => parts.push(index === undefined ? name : Number(index)));
  let at = data;
  for (let i = 0; i < parts.length - 1; i++) {
    if (at[parts[i]] === undefined || at[parts[i]] === null) at[parts[i]] = typeof parts[i + 1] === 'number' ? [] : {};
    at = at[parts[i]];
  }
  at[parts[parts.length - 1]] = JSON.parse(JSON.stringify(value === undefined ? null : value));
}

/** A page instance as the platform makes one from Page(options) or Component(options). */
function pageInstance(pages, components, route) {
  const setDataCalls = [];
  let options;
  let methods;
  let lifetimes = {};
  if (pages.length > 0) {
    options = pages[pages.length - 1];
    methods = options;
  } else if (components.length > 0) {
    options = components[components.length - 1];
    methods = options.methods || {};
    lifetimes = Object.assign({}, options, options.lifetimes || {});
  } else {
    throw new Error(`${route}.js called neither Page() nor Component()`);
  }
  const inst = Object.assign({}, options.methods || {}, pages.length > 0 ? options : {}, {
    data: JSON.parse(JSON.stringify(options.data || {})),
    route,
    is: route,
    properties: {},
    setData(data, cb) {
      setDataCalls.push(data);
      for (const [key, value] of Object.entries(data)) setPath(this.data, key, value);
      if (typeof cb === 'function') setTimeout(cb, 0);
    },
    selectComponent: () => null,
    selectAllComponents: () => [],
    createSelectorQuery: () => ({ select: () => ({ boundingClientRect: () => ({ exec: () => undefined }) }), exec: () => undefined }),
    triggerEvent: () => undefined,
    getPageId: () => 'page-1',
    getOpenerEventChannel: () => ({ on: () => undefined, emit: () => undefined }),
  });
  return {
    setDataCalls,
    call(name, arg) {
      if (typeof methods[name] === 'function') methods[name].call(inst, arg);
    },
    lifecycle(name) {
      if (typeof lifetimes[name] === 'function') lifetimes[name].call(inst);
    },
  };
}

module.exports = { ROOT, TOOLS, ANSWER, scratch, packTarball, installPackage, startChatServer, expectedAnswer, checkAnswer, runMiniProgram, openaiBody };
