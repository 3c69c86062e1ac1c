'use strict';
// Browsers: webpack 5 and Vite (a production build, and the dev server with its dependency
// pre-bundling) over `npm pack` of pkg/, with no chunkwise-specific config, each page run in
// headless Chromium streaming an answer through fetch, decoding it and rendering Markdown.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { TOOLS, scratch, installPackage, startChatServer, checkAnswer } = require('./helpers');

const { chromium } = require(path.join(TOOLS, 'playwright-core'));
const WEB = path.join(__dirname, 'web');
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm' };

let chat;
let browser;
test.before(async () => {
  installPackage(WEB);
  chat = await startChatServer();
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
});
test.after(async () => {
  await browser.close();
  await chat.close();
});

/** Serves a built directory on 127.0.0.1. */
async function serveDir(dir) {
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = path.join(dir, rel.endsWith('/') ? rel + 'index.html' : rel);
    if (!file.startsWith(dir) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Opens the page, waits for its result, and returns the page's errors and its wasm fetches. */
async function runPage(url) {
  const page = await browser.newPage();
  const errors = [];
  const wasm = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('response', (r) => {
    if (/\.wasm(\?|$)/.test(r.url())) wasm.push(`${r.status()} ${r.headers()['content-type']}`);
  });
  try {
    await page.goto(`${url}?chat=${encodeURIComponent(chat.url)}`);
    await page.waitForFunction(() => window.chunkwiseResult, null, { timeout: 60000 });
    const result = await page.evaluate(() => window.chunkwiseResult);
    assert.deepEqual(errors, []);
    assert.equal(result.error, undefined, JSON.stringify(result.error));
    checkAnswer(result);
    assert.equal(wasm.length, 2, `wasm responses: ${wasm.join(', ')}`);
    for (const w of wasm) assert.match(w, /^200 application\/wasm/);
  } finally {
    await page.close();
  }
}

function run(bin, args, env) {
  try {
    execFileSync(path.join(TOOLS, '.bin', bin), args, { cwd: WEB, env: Object.assign({}, process.env, env), stdio: 'pipe', timeout: 300000 });
  } catch (e) {
    throw new Error(`${bin} ${args.join(' ')} failed:\n${e.stdout}\n${e.stderr}`);
  }
}

test('webpack 5: production build in Chromium', async () => {
  const out = scratch('webpack');
  run('webpack', ['--config', 'webpack.config.js'], { OUT_DIR: out });
  fs.copyFileSync(path.join(WEB, 'index.html'), path.join(out, 'index.html'));
  fs.writeFileSync(path.join(out, 'index.html'), fs.readFileSync(path.join(out, 'index.html'), 'utf8').replace('./src/main.js', './main.js'));
  const site = await serveDir(out);
  try {
    await runPage(site.url);
  } finally {
    await site.close();
  }
});

test('Vite 8: vite build in Chromium', async () => {
  const out = scratch('vite-build');
  run('vite', ['build', '--outDir', out, '--emptyOutDir', '--logLevel', 'warn']);
  const site = await serveDir(out);
  try {
    await runPage(site.url);
  } finally {
    await site.close();
  }
});

test('Vite 7: the dev server with chunkwise/vite in the config, in Chromium', async () => {
  const { createServer } = await import(path.join(TOOLS, 'vite7', 'dist', 'node', 'index.js'));
  const server = await createServer({ root: WEB, configFile: path.join(WEB, 'vite7.config.mjs'), cacheDir: scratch('vite7-dev'), logLevel: 'warn', server: { host: '127.0.0.1', port: 0, strictPort: false } });
  await server.listen();
  try {
    await runPage(server.resolvedUrls.local[0]);
  } finally {
    await server.close();
  }
});

test('Vite 8: the dev server (dependency pre-bundling on) in Chromium', async () => {
  const { createServer } = await import(path.join(TOOLS, 'vite', 'dist', 'node', 'index.js'));
  const cacheDir = scratch('vite-dev');
  const server = await createServer({ root: WEB, configFile: path.join(WEB, 'vite.config.mjs'), cacheDir, logLevel: 'warn', server: { host: '127.0.0.1', port: 0, strictPort: false } });
  await server.listen();
  try {
    await runPage(server.resolvedUrls.local[0]);
    // the case that used to break: chunkwise pre-bundled into the optimizer's cache
    assert.ok(fs.existsSync(path.join(cacheDir, 'deps', 'chunkwise.js')), 'Vite did not pre-bundle chunkwise');
  } finally {
    await server.close();
  }
});
