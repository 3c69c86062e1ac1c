'use strict';
// Taro 4 (React, webpack5) and uni-app (vue3, vite) projects built for WeChat by their own
// CLIs from `npm pack` of pkg/, then started in the mini-program sandbox: app, page, an answer
// streamed through Taro.request / uni.request with every read re-split at random, decoded by
// chunkwise and rendered by chunkwise/markdown. Each project's only chunkwise setup is the
// one plugin line the README gives.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { installPackage, startChatServer, checkAnswer, runMiniProgram } = require('./helpers');

const SEEDS = [5, 6];
let server;
test.before(async () => {
  server = await startChatServer();
});
test.after(() => server.close());

function build(project, args, env) {
  const dir = path.join(__dirname, project);
  installPackage(dir);
  try {
    execFileSync(path.join(dir, 'node_modules', '.bin', args[0]), args.slice(1), { cwd: dir, env: Object.assign({}, process.env, env), stdio: 'pipe', timeout: 300000 });
  } catch (e) {
    throw new Error(`${project}: ${args.join(' ')} failed:\n${e.stdout}\n${e.stderr}`);
  }
  return dir;
}

/** The built code package took the mini-program build and got its wasm where init() looks. */
function checkOutput(out) {
  for (const f of ['chunkwise.wasm.br', 'chunkwise_markdown.wasm.br']) {
    assert.ok(fs.existsSync(path.join(out, 'miniprogram_npm', 'chunkwise', f)), `${f} is not in the built mini program`);
  }
  const js = [];
  (function walk(dir) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(dir, e.name));
      else if (e.name.endsWith('.js')) js.push(fs.readFileSync(path.join(dir, e.name), 'utf8'));
    }
  })(out);
  const all = js.join('\n');
  assert.ok(all.includes('WXWebAssembly'), 'the bundle does not contain the mini-program build');
  assert.ok(!all.includes('chunkwise_glue_bg.wasm'), 'the bundle contains the browser build');
  assert.ok(/\.md-p\b/.test(fs.readFileSync(path.join(out, 'app.wxss'), 'utf8')), 'the Markdown theme is not in app.wxss');
}

async function runAll(out) {
  for (const seed of SEEDS) {
    const { result, requests } = await runMiniProgram({ root: out, page: 'pages/index/index', query: { url: encodeURIComponent(server.url) }, resultKey: 'chunkwise-result', seed });
    assert.ok(requests[0].chunks > 100, `the body came in ${requests[0].chunks} chunks`);
    checkAnswer(result);
  }
}

test('Taro 4 weapp: taro build --type weapp, then the app runs in the sandbox', async () => {
  const dir = build('taro', ['taro', 'build', '--type', 'weapp']);
  const out = path.join(dir, 'dist');
  checkOutput(out);
  await runAll(out);
});

test('uni-app vue3: uni build -p mp-weixin, then the app runs in the sandbox', async () => {
  const dir = build('uniapp', ['uni', 'build', '-p', 'mp-weixin']);
  const out = path.join(dir, 'dist', 'build', 'mp-weixin');
  checkOutput(out);
  await runAll(out);
});
