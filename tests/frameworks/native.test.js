'use strict';
// WeChat native projects, as DevTools' "构建 npm" builds them: the official miniprogram-ci
// (its packNpm is that step; it runs offline with any private key) over `npm pack` of pkg/,
// in the three layouts projects use, then the page run in the mini-program sandbox. And the
// same code package as Douyin runs it (TTWebAssembly, tt.request, no WXWebAssembly or wx).
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { TOOLS, scratch, installPackage, startChatServer, checkAnswer, runMiniProgram } = require('./helpers');

const ci = require(path.join(TOOLS, 'miniprogram-ci'));
const SOURCE = path.join(__dirname, 'native');
const PRIVATE_KEY = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' });
const SHIPPED = ['index.js', 'client.js', 'markdown.js', 'chunkwise.wasm.br', 'chunkwise_markdown.wasm.br', 'chunkwise-markdown.wxss', 'index.d.ts'];

let server;
test.before(async () => {
  server = await startChatServer();
});
test.after(() => server.close());

/** A project directory: `miniprogram` (the code) under `root`, with package.json in `npmDir`. */
function makeProject(layout, projectConfig) {
  const root = scratch(`native-${layout}`);
  const codeDir = path.join(root, projectConfig.miniprogramRoot || '');
  fs.cpSync(SOURCE, codeDir, { recursive: true });
  fs.writeFileSync(path.join(root, 'project.config.json'), JSON.stringify(Object.assign({ appid: 'touristappid', compileType: 'miniprogram', setting: { urlCheck: false } }, projectConfig), null, 2));
  fs.writeFileSync(path.join(root, 'private.key'), PRIVATE_KEY);
  return { root, codeDir };
}

function addPackageJson(dir) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, dependencies: { chunkwise: '0.1.0' } }));
  installPackage(dir);
}

async function packNpm(root) {
  const project = new ci.Project({ appid: 'touristappid', type: 'miniProgram', projectPath: root, privateKeyPath: path.join(root, 'private.key'), ignores: ['node_modules/**/*'] });
  return ci.packNpm(project, { reporter: () => {} });
}

async function checkBuilt(codeDir, seed) {
  const npmDir = path.join(codeDir, 'miniprogram_npm', 'chunkwise');
  for (const f of SHIPPED) assert.ok(fs.existsSync(path.join(npmDir, f)), `构建 npm did not place ${f} in miniprogram_npm/chunkwise/`);
  const { result, requests } = await runMiniProgram({ root: codeDir, page: 'pages/index/index', query: { url: encodeURIComponent(server.url) }, resultKey: 'chunkwise-result', seed });
  assert.equal(result.error, undefined, JSON.stringify(result.error));
  assert.ok(requests[0].chunks > 100, `the body came in ${requests[0].chunks} chunks`);
  checkAnswer(result);
}

test('构建 npm, flat layout (package.json beside app.json)', async () => {
  const { root, codeDir } = makeProject('flat', {});
  addPackageJson(root);
  await packNpm(root);
  await checkBuilt(codeDir, 1);
});

test("chunkwise-markdown.wxss, imported from app.wxss after 构建 npm, compiles with WeChat's wcsc", { skip: !(process.platform === 'linux' && process.arch === 'x64') && 'wcsc ships for Linux x64 only' }, async () => {
  const { root, codeDir } = makeProject('wxss', {});
  addPackageJson(root);
  await packNpm(root);
  const wcsc = path.join(TOOLS, 'miniprogram-compiler', 'bin', 'linux', 'wcsc');
  fs.chmodSync(wcsc, 0o755); // npm does not keep the mode of these files
  // as DevTools runs it: `wcsc -db -pc <pages> ./app.wxss <other wxss>`
  const r = spawnSync(wcsc, ['-db', '-pc', '0', './app.wxss', './miniprogram_npm/chunkwise/chunkwise-markdown.wxss'], { cwd: codeDir, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `wcsc: ${r.stderr}`);
  assert.match(r.stdout, /md-code/, 'the compiled styles lack the theme');
});

test('构建 npm with miniprogramRoot: "miniprogram/" (package.json in it)', async () => {
  const { root, codeDir } = makeProject('root', { miniprogramRoot: 'miniprogram/' });
  addPackageJson(codeDir);
  await packNpm(root);
  await checkBuilt(codeDir, 2);
});

test('构建 npm, TypeScript template layout (root package.json, packNpmManually)', async () => {
  // project.config.json as the DevTools TypeScript template has it (the README quotes it)
  const config = JSON.parse(fs.readFileSync(path.join(__dirname, 'native-layouts', 'typescript-template.json'), 'utf8'));
  const { root, codeDir } = makeProject('manual', config);
  addPackageJson(root);
  // What DevTools does for packNpmManually: one packNpmManually per packNpmRelationList entry.
  for (const r of config.setting.packNpmRelationList) {
    const res = await ci.packNpmManually({ packageJsonPath: path.join(root, r.packageJsonPath), miniprogramNpmDistDir: path.join(root, r.miniprogramNpmDistDir) });
    assert.equal(res.miniProgramPackNum, 1, 'packNpmManually did not take chunkwise as a mini-program package');
  }
  await checkBuilt(codeDir, 3);
});

/** The page as a Douyin developer writes it (tt.request, tt.setStorageSync), after 构建 npm. */
async function douyinProject() {
  const { root, codeDir } = makeProject('douyin', {});
  addPackageJson(root);
  await packNpm(root);
  const page = path.join(codeDir, 'pages', 'index', 'index.js');
  fs.writeFileSync(page, fs.readFileSync(page, 'utf8').replace(/\bwx\./g, 'tt.'));
  return codeDir;
}

test('Douyin: TTWebAssembly and a tt.request that streams chunks (no wx, no WXWebAssembly)', async () => {
  const codeDir = await douyinProject();
  const { result, requests } = await runMiniProgram({ root: codeDir, page: 'pages/index/index', query: { url: encodeURIComponent(server.url) }, resultKey: 'chunkwise-result', seed: 4, platform: 'tt' });
  assert.equal(result.error, undefined, JSON.stringify(result.error));
  assert.ok(requests[0].chunks > 100, `the body came in ${requests[0].chunks} chunks`);
  checkAnswer(result);
});

test('Douyin: a tt.request that ignores enableChunked (the whole body in success) still gives the answer', async () => {
  const codeDir = await douyinProject();
  const { result } = await runMiniProgram({ root: codeDir, page: 'pages/index/index', query: { url: encodeURIComponent(server.url) }, resultKey: 'chunkwise-result', seed: 4, platform: 'tt', network: { successOnly: true } });
  assert.equal(result.error, undefined, JSON.stringify(result.error));
  checkAnswer(result);
});
