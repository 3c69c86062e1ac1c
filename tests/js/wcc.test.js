'use strict';
// The demo mini program compiles with WeChat's own compilers — wcc (WXML) and wcsc (WXSS),
// the Linux binaries shipped in the npm package miniprogram-compiler — and the page tree that
// wcc's generated $gwx function renders for sample states is what the page means to show.
//
// How the compilers are invoked: wcc through the package's wxmlToJs(root, {wxmlList}) (it runs
// `wcc -d -cc <components> <files> -gn $gwx` in the project root and returns the JS that
// defines $gwx); wcsc directly (`wcsc -db -pc <n> <files>`), because the package's
// wxssToJs hides wcsc's error message. $gwx(path) returns a function of the page data that
// builds the virtual tree ({tag: 'wx-view', attr, children}) the render layer would diff.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { spawnSync } = require('node:child_process');

const DEMO = path.join(__dirname, '..', '..', 'miniprogram-demo');
const compiler = require('miniprogram-compiler');
const PKG_DIR = path.dirname(require.resolve('miniprogram-compiler/package.json'));
const WCSC = path.join(PKG_DIR, 'bin', 'linux', 'wcsc');
const onLinuxX64 = process.platform === 'linux' && process.arch === 'x64';

/** Files of the code package with this extension (not the relay, not the H5 page). */
function packageFiles(ext) {
  const out = [];
  (function walk(rel) {
    for (const e of fs.readdirSync(path.join(DEMO, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!['server', 'h5', 'node_modules'].includes(r) && !e.name.startsWith('.')) walk(r);
      } else if (e.name.endsWith(ext)) out.push(r);
    }
  })('');
  return out.sort();
}

/** Runs wcc's output in a realm of its own and returns $gwx. */
function loadGwx(files) {
  const js = compiler.wxmlToJs(DEMO, { wxmlList: files });
  const ctx = vm.createContext({ console: { log() {}, warn() {}, error() {} } });
  ctx.window = ctx; // the generated code sets window.__wcc_version__
  return vm.runInContext(`(function (global) {${js}\n})`, ctx, { filename: 'wcc-output.js' })({});
}

function walk(node, visit) {
  if (node === null || typeof node !== 'object') return;
  visit(node);
  for (const c of node.children || []) walk(c, visit);
}
function findAll(tree, pred) {
  const out = [];
  walk(tree, (n) => {
    if (pred(n)) out.push(n);
  });
  return out;
}
const hasClass = (cls) => (n) => typeof (n.attr && n.attr.class) === 'string' && n.attr.class.split(/\s+/).includes(cls);
function textOf(node) {
  if (typeof node === 'string') return node;
  if (node === null || typeof node !== 'object') return '';
  return (node.children || []).map(textOf).join('');
}

test('the project files are complete and parse', () => {
  const project = JSON.parse(fs.readFileSync(path.join(DEMO, 'project.config.json'), 'utf8'));
  assert.equal(project.compileType, 'miniprogram');
  assert.equal(project.setting.urlCheck, false, 'local development against http://127.0.0.1 needs urlCheck off');
  const app = JSON.parse(fs.readFileSync(path.join(DEMO, 'app.json'), 'utf8'));
  assert.ok(fs.existsSync(path.join(DEMO, app.sitemapLocation)));
  JSON.parse(fs.readFileSync(path.join(DEMO, app.sitemapLocation), 'utf8'));
  for (const f of ['app.js', 'app.wxss']) assert.ok(fs.existsSync(path.join(DEMO, f)), f);
  for (const page of app.pages) {
    for (const ext of ['.js', '.json', '.wxml', '.wxss']) assert.ok(fs.existsSync(path.join(DEMO, page + ext)), page + ext);
    const json = JSON.parse(fs.readFileSync(path.join(DEMO, page + '.json'), 'utf8'));
    for (const [name, p] of Object.entries(json.usingComponents || {})) {
      const abs = p.startsWith('/') ? path.join(DEMO, p) : path.join(DEMO, path.dirname(page), p);
      assert.ok(fs.existsSync(abs + '.wxml'), `component ${name} (${p}) has a .wxml`);
    }
  }
});

test('every .wxml of the demo compiles with wcc', { skip: !onLinuxX64 && 'the Linux x64 binaries only' }, async (t) => {
  const files = packageFiles('.wxml');
  assert.ok(files.includes('pages/chat/chat.wxml'));
  for (const f of files) {
    await t.test(f, () => {
      const js = compiler.wxmlToJs(DEMO, { wxmlList: [f] });
      assert.match(js, /\$gwx/);
    });
  }
  // All together, as DevTools compiles them.
  const $gwx = loadGwx(files);
  for (const f of files) assert.equal(typeof $gwx(f), 'function', `$gwx has ${f}`);
});

/**
 * Runs wcsc as DevTools does: `wcsc -db -pc <n> <n page/component files> ./app.wxss <others>`
 * (a file with a .json beside it is a page or component; app.wxss must be named ./app.wxss to
 * be taken as the app style). Returns { status, stderr, parts: {comm, <path>: js} }.
 */
function wcsc(files) {
  try {
    fs.chmodSync(WCSC, 0o755); // npm does not keep the mode of these files
  } catch (e) {
    // read-only install: spawnSync reports it
  }
  const owned = files.filter((f) => fs.existsSync(path.join(DEMO, f.replace(/\.wxss$/, '.json'))));
  const app = files.filter((f) => f === 'app.wxss').map(() => './app.wxss');
  const rest = files.filter((f) => f !== 'app.wxss' && !owned.includes(f));
  const r = spawnSync(WCSC, ['-db', '-pc', String(owned.length), ...owned, ...app, ...rest], { cwd: DEMO, encoding: 'utf8', timeout: 30000 });
  if (r.error) throw r.error;
  const parts = {};
  const fields = r.stdout.split('='); // values escape '=' as \x3d
  for (let i = 0; i + 1 < fields.length; i += 2) parts[fields[i]] = fields[i + 1];
  return { status: r.status, stderr: r.stderr, parts };
}

/**
 * The CSS the render layer would get for each file, at a device width: runs wcsc's output with
 * a stand-in for the render layer's style-sheet manager (rpx become px here).
 */
function renderCss(parts, width) {
  const css = {};
  const ctx = vm.createContext({ console: { log() {}, warn() {}, error() {} } });
  ctx.window = { screen: { width, height: 2 * width }, devicePixelRatio: 2, __styleSheetManager2__: { addItem() {}, setCss: (key, text) => (css[key.replace(/:$/, '')] = text) } };
  ctx.navigator = { userAgent: 'node' };
  const unescape = (s) => vm.runInNewContext(`"${s}"`);
  vm.runInContext(`var window = this.window;\n${unescape(parts.comm)}`, ctx);
  for (const [key, js] of Object.entries(parts)) {
    if (key.endsWith('.wxss')) vm.runInContext(`(${unescape(js)})('')`, ctx);
  }
  return css;
}

test('every .wxss of the demo compiles with wcsc', { skip: !onLinuxX64 && 'the Linux x64 binaries only' }, async (t) => {
  const files = packageFiles('.wxss');
  assert.ok(files.includes('app.wxss') && files.includes('pages/chat/chat.wxss'));
  for (const f of files) {
    await t.test(f, () => {
      const r = wcsc([f]);
      assert.equal(r.status, 0, `wcsc ${f}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /ERR/);
      const key = f === 'app.wxss' ? './app.wxss' : f;
      if (key in r.parts) assert.match(r.parts[key], /setCssToHead/);
    });
  }
  // All together, as DevTools compiles them; then the CSS a 375 px wide phone gets.
  const all = wcsc(files);
  assert.equal(all.status, 0, all.stderr);
  const css = renderCss(all.parts, 375);
  assert.match(css['./app.wxss'], /^body \{/, 'the page selector becomes body');
  assert.match(css['./app.wxss'], /font-size: 15px/, '30rpx on a 375 px screen');
  const chat = css['pages/chat/chat.wxss'];
  for (const sel of ['.answer-bubble', '.reasoning-body', '.composer', '.cursor', '.retry', '.stop', '.send']) assert.ok(chat.includes(sel + ' {'), sel);
  assert.match(chat, /\.answer-bubble \{[^}]*min-height: 22px/, '44rpx became 22px');
  assert.match(chat, /padding-bottom: calc\(8px \+ env\(safe-area-inset-bottom\)\)/);
  assert.match(renderCss(all.parts, 750)['pages/chat/chat.wxss'], /\.answer-bubble \{[^}]*min-height: 44px/);
});

test('wcsc and wcc do reject broken files (the checks above can fail)', { skip: !onLinuxX64 && 'the Linux x64 binaries only' }, () => {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'wcc-bad-'));
  try {
    fs.writeFileSync(path.join(dir, 'bad.wxss'), '.a { color: red;\n.b { }}}}\n');
    fs.writeFileSync(path.join(dir, 'bad.wxml'), '<view>{{a</view>\n<view><text>ok</view>\n');
    fs.chmodSync(WCSC, 0o755);
    const r = spawnSync(WCSC, ['-db', '-pc', '0', 'bad.wxss'], { cwd: dir, encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /ERR/);
    assert.throws(() => compiler.wxmlToJs(dir, { wxmlList: ['bad.wxml'] }), /bad\.wxml/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the chat page renders the expected tree for sample states', { skip: !onLinuxX64 && 'the Linux x64 binaries only' }, () => {
  const render = loadGwx(packageFiles('.wxml'))('pages/chat/chat.wxml');
  const base = { msgs: [], input: '', busy: false, ready: true, loadError: '' };

  // 1. Empty: the welcome text, the send button disabled without input.
  let tree = render(base, {}, {});
  assert.equal(findAll(tree, hasClass('empty')).length, 1);
  let send = findAll(tree, hasClass('send'));
  assert.equal(send.length, 1);
  assert.equal(send[0].attr.disabled, true);
  assert.equal(findAll(tree, hasClass('stop')).length, 0);

  // 2. Streaming, with reasoning open.
  const streaming = Object.assign({}, base, {
    busy: true,
    msgs: [
      { key: 'm1', role: 'user', text: '你好' },
      { key: 'm2', role: 'assistant', answering: true, reasoningParts: ['先想', '一想'], showReasoning: true, status: 'streaming', statusText: '', error: '' },
    ],
  });
  tree = render(streaming, {}, {});
  assert.equal(findAll(tree, hasClass('empty')).length, 0);
  const user = findAll(tree, hasClass('user-bubble'));
  assert.deepEqual(user.map(textOf), ['你好']);
  // The answer renders through the chunkwise-markdown component, fed deltas by the page
  // (markdown-component.test.js renders the component itself): the page selects it by id.
  const answers = findAll(tree, hasClass('answer'));
  assert.deepEqual(answers.map((n) => n.tag), ['wx-chunkwise-markdown']);
  assert.deepEqual(answers.map((n) => n.attr.id), ['md-m2'], 'the id the page selects it by');
  assert.equal(answers[0].attr.done, false, 'not final while streaming');
  assert.equal(findAll(tree, hasClass('cursor')).length, 1, 'the typing cursor');
  assert.equal(findAll(tree, hasClass('stop')).length, 1);
  assert.equal(findAll(tree, hasClass('send')).length, 0);
  assert.deepEqual(findAll(tree, hasClass('reasoning-body')).map(textOf), ['先想一想']);
  const head = findAll(tree, hasClass('reasoning-head'))[0];
  assert.equal(head.attr.bindtap, 'toggleReasoning');
  assert.equal(head.attr['data-index'], 1);
  assert.equal(textOf(findAll(tree, hasClass('reasoning-title'))[0]), '已深度思考');
  const bubble = findAll(tree, hasClass('answer-bubble'))[0];
  assert.equal(bubble.attr.bindtap, 'onTapAnswer');

  // 3. Reasoning only (thinking), collapsed after the answer started; then an error with retry.
  const thinking = JSON.parse(JSON.stringify(streaming));
  thinking.msgs[1].answering = false;
  tree = render(thinking, {}, {});
  assert.equal(textOf(findAll(tree, hasClass('reasoning-title'))[0]), '思考中…');
  thinking.msgs[1].showReasoning = false;
  thinking.msgs[1].answering = true;
  tree = render(thinking, {}, {});
  assert.equal(findAll(tree, hasClass('reasoning-body')).length, 0);
  assert.equal(textOf(findAll(tree, hasClass('reasoning-toggle'))[0]), '展开 ▾');

  const failed = Object.assign({}, base, {
    msgs: [
      { key: 'm1', role: 'user', text: 'hi' },
      { key: 'm2', role: 'assistant', answering: true, reasoningParts: [], showReasoning: true, status: 'error', statusText: '', error: 'too many requests（HTTP 429）' },
    ],
    input: 'again',
  });
  tree = render(failed, {}, {});
  assert.equal(findAll(tree, hasClass('cursor')).length, 0);
  assert.deepEqual(findAll(tree, hasClass('error-text')).map(textOf), ['too many requests（HTTP 429）']);
  const retry = findAll(tree, hasClass('retry'));
  assert.equal(retry.length, 1);
  assert.equal(retry[0].attr.bindtap, 'onRetry');
  assert.equal(retry[0].attr['data-index'], 1);
  assert.equal(retry[0].attr.disabled, false);
  send = findAll(tree, hasClass('send'));
  assert.equal(send[0].attr.disabled, false);

  // 4. A resuming answer shows its status line; a stopped one does not type.
  const resuming = JSON.parse(JSON.stringify(streaming));
  resuming.msgs[1].status = 'resuming';
  resuming.msgs[1].statusText = '网络中断，正在续传…';
  tree = render(resuming, {}, {});
  assert.deepEqual(findAll(tree, hasClass('status')).map(textOf), ['网络中断，正在续传…']);
  assert.equal(findAll(tree, hasClass('cursor')).length, 1);
  resuming.msgs[1].status = 'stopped';
  resuming.msgs[1].statusText = '已停止';
  tree = render(resuming, {}, {});
  assert.equal(findAll(tree, hasClass('cursor')).length, 0);

  // 5. The wasm failed to load: the message shows.
  tree = render(Object.assign({}, base, { ready: false, loadError: '解码器加载失败：x' }), {}, {});
  assert.deepEqual(findAll(tree, hasClass('load-error')).map(textOf), ['解码器加载失败：x']);
});
