'use strict';
// The chunkwise-markdown custom component (miniprogram-demo/components/chunkwise-markdown):
//
// 1. In miniprogram-simulate (the official component test tool: j-component on exparser, its
//    WXML compiled by the official wcc, rendered into a jsdom document). How the wasm loads
//    in Node: the component's own `require('../../miniprogram_npm/chunkwise/markdown.js')`
//    loads the mini-program build unchanged, and this test defines the global
//    `WXWebAssembly` a device has, instantiating by package path (the .wasm.br under the
//    demo directory, brotli-decompressed) as mp-sandbox does. simulate's built-in rich-text
//    is an empty stand-in (`<slot/>`), so a rich-text that turns `nodes` into DOM elements is
//    registered in its place: what the test reads is the DOM the nodes describe.
// 2. Its WXML with wcc ($gwx renders the tree for sample data), and the chat page's use of it.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { markdownOneShot: oneShot } = require('./helpers');
const { componentBlocks, parsePath } = require('./mp-page-sandbox');
const path = require('node:path');
const vm = require('node:vm');
const zlib = require('node:zlib');

const ROOT = path.join(__dirname, '..', '..');
const DEMO = path.join(ROOT, 'miniprogram-demo');
const COMPONENT = path.join(DEMO, 'components', 'chunkwise-markdown', 'chunkwise-markdown');
const MP_MARKDOWN = path.join(DEMO, 'miniprogram_npm', 'chunkwise', 'markdown.js');
const ANSWER = fs.readFileSync(path.join(ROOT, 'relay', 'src', 'demo', 'answer.zh.md'), 'utf8');
const onLinuxX64 = process.platform === 'linux' && process.arch === 'x64';
const md = require(path.join(ROOT, 'pkg', 'node', 'markdown.js'));

// ---- the DOM and the device globals, before miniprogram-simulate loads ----------------------
const { JSDOM } = require('jsdom');
const jsdom = new JSDOM('<!doctype html><html><head></head><body></body></html>', { pretendToBeVisual: true });
global.window = jsdom.window;
for (const k of ['document', 'navigator', 'Node', 'Element', 'HTMLElement', 'Event', 'CustomEvent', 'MutationObserver', 'getComputedStyle', 'requestAnimationFrame']) {
  if (!(k in global) || k === 'Event' || k === 'CustomEvent') global[k] = jsdom.window[k];
}

let wasmLoads = [];
let wasmFails = false;
global.WXWebAssembly = {
  instantiate(p, imports) {
    wasmLoads.push(p);
    if (wasmFails) return Promise.reject(new Error('file not found: ' + p));
    if (typeof p !== 'string' || !p.startsWith('/') || !/\.wasm(\.br)?$/.test(p)) return Promise.reject(new TypeError('a package path is needed, got ' + p));
    let bytes = fs.readFileSync(path.join(DEMO, p));
    if (p.endsWith('.br')) bytes = zlib.brotliDecompressSync(bytes);
    return WebAssembly.instantiate(bytes, imports).then((r) => ({ instance: r.instance, module: r.module }));
  },
};

let simulate = null;
let jComponent = null;
const missing = !fs.existsSync(MP_MARKDOWN) ? `${MP_MARKDOWN} is missing: run ./build.sh` : false;
if (!missing) {
  simulate = require('miniprogram-simulate');
  jComponent = require('j-component');
  // rich-text: nodes → DOM elements (text nodes decode &amp;, as rich-text decodes entities).
  const toDom = (n) => {
    if (n.type === 'text') return document.createTextNode(n.text.replace(/&amp;/g, '&'));
    const el = document.createElement(n.name);
    for (const [k, v] of Object.entries(n.attrs || {})) el.setAttribute(k, v);
    for (const c of n.children || []) el.appendChild(toDom(c));
    return el;
  };
  jComponent.register({
    id: 'rich-text',
    tagName: 'wx-rich-text',
    template: '<slot/>',
    properties: { nodes: { type: null, value: [] }, userSelect: { type: Boolean, value: false } },
    observers: {
      nodes(nodes) {
        const el = this.$$;
        while (el.firstChild) el.removeChild(el.firstChild);
        if (typeof nodes === 'string') el.textContent = nodes;
        else for (const n of nodes || []) el.appendChild(toDom(n));
        this.renders = (this.renders || 0) + 1;
      },
    },
  });
}

// wx APIs the component calls (simulate's wx has inert mocks; these record).
const calls = { actionSheet: [], clipboard: [], preview: [] };
function mockWx(tapIndex) {
  global.wx.previewImage = (o) => calls.preview.push(o);
  global.wx.showActionSheet = (o) => {
    calls.actionSheet.push(o.itemList);
    setTimeout(() => (tapIndex === null ? o.fail && o.fail({ errMsg: 'showActionSheet:fail cancel' }) : o.success({ tapIndex })), 0);
  };
  global.wx.setClipboardData = (o) => calls.clipboard.push(o.data);
}

/** Loads and attaches the component; records its setData calls. */
function mount(props) {
  const id = simulate.load(COMPONENT, 'chunkwise-markdown', { rootPath: DEMO });
  const comp = simulate.render(id, props || {});
  const log = [];
  const setData = comp.instance.setData;
  comp.instance.setData = function (data, cb) {
    // The component's own calls (the test sets the properties through the same method).
    if (!('text' in data) && !('done' in data) && !('plain' in data)) log.push({ keys: Object.keys(data), bytes: Buffer.byteLength(JSON.stringify(data)) });
    return setData.call(this, data, cb);
  };
  const parent = document.createElement('parent-wrapper');
  comp.attach(parent);
  return { comp, log };
}

// The template's classes as simulate renders them (style isolation prefixes the component's
// name; the nodes of a rich-text keep theirs).
const C = 'chunkwise-markdown--';

const settle = () => new Promise((r) => setTimeout(r, 20));
async function waitFor(pred, ms, what) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function textOfNodes(nodes) {
  return nodes.map((n) => (n.type === 'text' ? n.text.replace(/&amp;/g, '&') : textOfNodes(n.children || []))).join('');
}

/** Typewriter-like pieces: 1..6 characters, seeded. */
function typewriter(text, seed) {
  let a = seed >>> 0;
  const out = [];
  for (let i = 0; i < text.length; ) {
    a = (a * 1103515245 + 12345) >>> 0;
    const n = 1 + (a >>> 16) % 6;
    out.push(text.slice(0, i + n));
    i += n;
  }
  return out;
}

test('miniprogram-simulate: a streamed answer renders as Markdown, block by block, with path-key setData only', { skip: missing }, async () => {
  mockWx(0);
  wasmLoads = [];
  const { comp, log } = mount({ text: '' });
  await waitFor(() => comp.instance._renderer, 5000, 'the wasm to load');
  assert.deepEqual(wasmLoads, ['/miniprogram_npm/chunkwise/chunkwise_markdown.wasm.br'], 'init() loads the .br by its package path, once');

  const steps = typewriter(ANSWER, 7);
  let shown = '';
  let grewOrSame = 0;
  for (const text of steps) {
    comp.setData({ text });
    const now = comp.dom.textContent;
    if (now.length >= shown.length) grewOrSame++;
    shown = now;
  }
  // While streaming: blocks are there, the open code fence already a code block, the table too.
  assert.ok(comp.dom.querySelector(`.${C}md-pre .${C}md-pre-code`), 'code block');
  comp.setData({ done: true });
  await settle();

  // The final blocks are a one-shot render of the answer.
  const want = oneShot(ANSWER);
  assert.deepEqual(JSON.parse(JSON.stringify(componentBlocks(comp.data))), want);
  assert.deepEqual(comp.data.ids, want.map((_, i) => i));
  // One element per block: a rich-text, or a code block's view with a rich-text per line.
  const blocks = comp.dom.querySelectorAll(`.${C}md-block`);
  assert.equal(blocks.length, want.length, 'one element per block');
  blocks.forEach((el, i) => assert.equal((el.querySelector(`.${C}md-code-body`) || el).textContent, textOfNodes(want[i]), `block ${i} text`));
  const lines = comp.dom.querySelectorAll(`.${C}md-code-body wx-rich-text.${C}md-code-line`);
  assert.equal(lines.length, want.filter((b) => b[0].name === 'pre').reduce((n, b) => n + b[0].children[0].children.length, 0), 'one rich-text per code line');

  // What a reader sees.
  const dom = comp.dom;
  assert.equal(dom.querySelector('h2.md-h2').textContent, '小程序里的流式输出 🚀');
  assert.deepEqual([...dom.querySelectorAll('h3.md-h3')].map((e) => e.textContent), ['示例代码', '常见做法对比']);
  assert.deepEqual([...dom.querySelectorAll('ol.md-ol > li.md-li')].length, 3);
  assert.equal(dom.querySelector('p.md-p code.md-code').textContent, 'wx.request');
  assert.equal(dom.querySelector('strong.md-strong').textContent, '分块传输');
  const code = dom.querySelector(`.${C}md-pre .${C}md-pre-code.${C}md-lang-js`);
  assert.ok(code, 'the js block');
  assert.match(code.textContent, /^const task = wx\.request\(\{\n  url: 'https:\/\/example\.com\/v1\/chat\/completions',/);
  const kws = [...code.querySelectorAll('.md-kw')].map((e) => e.textContent);
  assert.ok(kws.includes('const') && kws.includes('let') && kws.includes('true'), `keywords: ${kws}`);
  assert.ok([...code.querySelectorAll('.md-str')].some((e) => e.textContent === "'POST'"), 'strings');
  const table = dom.querySelector('.md-table-wrap table.md-table');
  assert.ok(table, 'the table');
  assert.deepEqual([...table.querySelectorAll('thead th.md-th')].map((e) => e.textContent), ['做法', '中文会乱码吗', '事件被切开时', '速度']);
  const rows = [...table.querySelectorAll('tbody tr.md-tr')];
  assert.equal(rows.length, 4);
  assert.deepEqual([...rows[3].querySelectorAll('td.md-td')].map((e) => e.textContent), ['chunkwise（wasm）', '不会 ✅', '自动拼接', '快 ⚡']);
  assert.equal(rows[0].querySelector('td code.md-code').textContent, 'String.fromCharCode');
  assert.match(dom.querySelector('.md-blockquote').textContent, /注意：真机上 没有 TextDecoder/);
  assert.match(dom.textContent, /GET \/v1\/chat\/stream\/\{id\}\?after=<seq>/);
  assert.doesNotMatch(dom.textContent, /\*\*|```|\| ---/, 'no Markdown syntax shows');

  // setData: one call per text change at most, path keys of changed blocks only, small.
  assert.ok(log.length <= steps.length + 2, `${log.length} setData calls for ${steps.length} text changes`);
  const keyRe = /^(ids|ids\[\d+\]|kinds|kinds\[\d+\]|langs|langs\[\d+\]|pre|pre\[\d+\]|b|b\[\d+\](\[\d+\](\.children\[\d+\])*(\.text)?)?|c|c\[\d+\](\[\d+\](\[\d+\](\.children\[\d+\])*(\.text)?)?)?)$/;
  for (const c of log) for (const k of c.keys) assert.match(k, keyRe);
  assert.ok(log.some((c) => c.keys.some((k) => k.includes('.children['))), 'parts of blocks are sent, not whole blocks each time');
  // A code line's keys start at its line: c[i][j][k], not b[i][0].children[0].children[j].children[k].
  assert.ok(log.some((c) => c.keys.some((k) => /^c\[\d+\]\[\d+\]\[\d+\]\.text$/.test(k))), 'a code token grows at c[i][j][k].text');
  assert.ok(!log.some((c) => c.keys.some((k) => /^b\[\d+\]\[0\]\.children\[0\]\.children\[\d+\]\.children/.test(k) && comp.data.kinds[Number(/\d+/.exec(k)[0])] === 'code')), 'no code line by the b path');
  // Bytes: far fewer than whole changed blocks (the 'blocks' mode) for the same steps. (With a
  // few characters a step, each setData still re-sends the changed text node and its key:
  // bench/markdown.js measures the ratio to the final nodes.)
  const total = log.reduce((s, c) => s + c.bytes, 0);
  const whole = new md.MarkdownRenderer({ patches: 'blocks' });
  let wholeBytes = 0;
  let prev = '';
  for (const text of steps) {
    wholeBytes += Buffer.byteLength(JSON.stringify(whole.dataFor(whole.append(text.slice(prev.length)), 'blocks')));
    prev = text;
  }
  whole.free();
  assert.ok(total * 3 < wholeBytes, `children patches ${total} bytes, whole blocks ${wholeBytes} bytes`);
  assert.ok(Math.max(...log.map((c) => c.bytes)) < 4096, 'each setData is small');
  assert.ok(grewOrSame >= steps.length * 0.95, 'the shown text (almost always) only grows');

  // Detach frees the renderer; a late text change does nothing.
  comp.detach();
  assert.equal(comp.instance._renderer, null);
  const n = log.length;
  comp.setData({ text: ANSWER + 'more' });
  assert.equal(log.length, n, 'no render after detach');
});

test('miniprogram-simulate: a text that does not extend the previous one starts over; done before any text; links copy on long press', { skip: missing }, async () => {
  calls.actionSheet = [];
  calls.clipboard = [];
  mockWx(1);
  const { comp } = mount({ text: '# first\n\nold', done: false });
  await waitFor(() => comp.instance._renderer, 5000, 'the wasm to load');
  assert.equal(comp.dom.querySelector('h1.md-h1').textContent, 'first');

  // A retry: the page resets the text to '' and streams again.
  comp.setData({ text: '' });
  assert.deepEqual(comp.data.ids, []);
  assert.equal(comp.dom.querySelectorAll('wx-rich-text').length, 0);
  const text = 'See [the docs](https://example.com/docs) and https://chunkwise.dev/x, or ![logo](https://example.com/logo.png).\n\nNo links here.\n\nSetext\n';
  for (const t of typewriter(text, 3)) comp.setData({ text: t });
  comp.setData({ text: text + '---\n', done: true }); // "Setext\n---" merges into a heading: the block count shrinks
  await settle();
  assert.deepEqual(JSON.parse(JSON.stringify(comp.data.b)), oneShot(text + '---\n'));
  assert.equal(comp.dom.querySelector('h2.md-h2').textContent, 'Setext');
  const a = comp.dom.querySelector('a.md-a');
  assert.equal(a.textContent, 'the docs');
  assert.equal(a.getAttribute('href'), null, 'no href in rich-text');
  assert.equal(comp.dom.querySelector('img.md-img').getAttribute('src'), 'https://example.com/logo.png');

  // Long press on the first block: its URLs offered, the tapped one copied.
  const first = comp.querySelectorAll('.md-block')[0];
  first.dispatchEvent('longpress');
  await settle();
  assert.equal(calls.actionSheet.length, 1);
  assert.deepEqual(calls.actionSheet[0].map((s) => s.replace('复制链接 ', '')), ['https://example.com/docs', 'https://chunkwise.dev/x', 'https://example.com/logo.png']);
  assert.deepEqual(calls.clipboard, ['https://chunkwise.dev/x']);
  // A block without links: nothing offered.
  comp.querySelectorAll('.md-block')[1].dispatchEvent('longpress');
  await settle();
  assert.equal(calls.actionSheet.length, 1);

  // done with the same text again changes nothing; a new message replaces everything.
  comp.setData({ text: '**new**', done: true });
  await settle();
  assert.deepEqual(JSON.parse(JSON.stringify(comp.data.b)), oneShot('**new**'));
  assert.equal(comp.dom.textContent, 'new');
  comp.detach();
});

test('miniprogram-simulate: a code block\'s lines apart (c[i][j]) show what a page applying the renderer\'s patches shows, at every append', { skip: missing }, async () => {
  // Code blocks that grow, gain their first highlighted line, close, sit in a list or a quote
  // (not top-level: they stay rich-text), turn into something else while typed, or are
  // indented code; each appended a character at a time and in pieces of 2 to 5.
  const texts = [
    '```js\nconst a = "x y"; // c\nlet b = 1;\n```\n\nafter\n',
    '```\nplain one\nplain two\n```\n~~~python\ndef f(x):\n    return x  # y\n~~~\n',
    '- item\n\n  ```js\n  let a;\n  ```\n> ```\n> q\n> ```\n\n    indented\n    code\n\ntext\n',
    '``` unknownlang\nfoo bar\n```\n\n```js\n```\n\n```rust\nfn main() {}\n',
    '```js\nlet s = `multi\nline`;\n/* a\nb */\n``\n```\n',
    'para\n```\ncode\n```\n``` x\n\n\n',
  ];
  for (const text of texts) {
    for (const step of [1, 2, 5]) {
      const { comp } = mount();
      await waitFor(() => comp.instance._renderer, 5000, 'the renderer');
      const ref = new md.MarkdownRenderer();
      const page = { b: [] };
      const apply = (patch) => {
        const data = ref.dataFor(patch, 'b');
        for (const key in data) {
          const keys = parsePath(key);
          let o = page;
          for (let k = 0; k < keys.length - 1; k++) o = o[keys[k]];
          o[keys[keys.length - 1]] = JSON.parse(JSON.stringify(data[key]));
        }
        page.b.length = patch.count;
      };
      for (let i = 0; i < text.length; i += step) {
        comp.instance.append(text.slice(i, i + step));
        apply(ref.append(text.slice(i, i + step)));
        assert.deepEqual(JSON.parse(JSON.stringify(componentBlocks(comp.data))), page.b, `${JSON.stringify(text.slice(0, i + step))}`);
      }
      comp.instance.finish();
      apply(ref.finish());
      assert.deepEqual(JSON.parse(JSON.stringify(componentBlocks(comp.data))), page.b);
      assert.deepEqual(page.b, oneShot(text));
      ref.free();
      comp.detach();
    }
  }
});

test('miniprogram-simulate: a code block shown in the same setData that clears the last message\'s blocks shows as code, with its language', { skip: missing }, async () => {
  // What the component shows for a message: its code block's bar with the language and its
  // lines, and the blocks a one-shot render gives.
  const shows = (comp, text, lang, what) => {
    assert.deepEqual(JSON.parse(JSON.stringify(componentBlocks(comp.data))), oneShot(text), what);
    assert.equal(comp.data.kinds[0], 'code', what);
    assert.equal(comp.data.langs[0], lang, what);
    const bars = comp.dom.querySelectorAll(`.${C}md-code-lang`);
    assert.equal(bars.length, 1, what);
    assert.equal(bars[0].textContent, lang, what);
    assert.equal(comp.dom.querySelector(`.${C}md-code-body`).textContent, textOfNodes(oneShot(text)[0]), what);
  };
  // append() after finish(): the next message, cleared and shown in one sync.
  {
    const { comp } = mount();
    await waitFor(() => comp.instance._renderer, 5000, 'the renderer');
    comp.instance.append('```js\nlet a = 1;\n```\n');
    comp.instance.finish();
    shows(comp, '```js\nlet a = 1;\n```\n', 'js', 'the first message');
    comp.instance.append('```python\nx = 2\n```\n');
    shows(comp, '```python\nx = 2\n```\n', 'python', 'the next message, appended');
    comp.instance.append('\nafter\n');
    comp.instance.finish();
    shows(comp, '```python\nx = 2\n```\n\nafter\n', 'python', 'the next message, finished');
    comp.detach();
  }
  // A text property that does not extend the last one; a code block that becomes a paragraph
  // and then code again, in another language, with the same block index.
  {
    const { comp } = mount({ text: '```js\nlet a;\n```\n', done: true });
    await waitFor(() => comp.instance._renderer, 5000, 'the renderer');
    await settle();
    shows(comp, '```js\nlet a;\n```\n', 'js', 'mounted with a code block');
    comp.setData({ text: '```py\nb = 1\n```\n' });
    shows(comp, '```py\nb = 1\n```\n', 'py', 'a new text');
    comp.setData({ text: 'para\n', done: true });
    await settle();
    assert.equal(comp.data.kinds[0] || 'rich', 'rich');
    comp.setData({ text: '```rust\nfn f() {}\n```\n' });
    shows(comp, '```rust\nfn f() {}\n```\n', 'rust', 'code again, in another language');
    comp.detach();
  }
  // Typed a character at a time: the fence's info string grows while the block is code.
  {
    const { comp } = mount();
    await waitFor(() => comp.instance._renderer, 5000, 'the renderer');
    const text = '```python\nx = 2\n```\n';
    for (const ch of text) comp.instance.append(ch);
    shows(comp, text, 'python', 'typed');
    comp.instance.finish();
    shows(comp, text, 'python', 'typed, finished');
    comp.detach();
  }
});

test('miniprogram-simulate: fed deltas with append(); copy button, image preview and link taps', { skip: missing }, async () => {
  calls.actionSheet = [];
  calls.clipboard = [];
  calls.preview = [];
  mockWx(0);
  const { comp, log } = mount({});
  await waitFor(() => comp.instance._renderer, 5000, 'the wasm to load');
  const text =
    'Read [the guide](https://example.com/guide) first.\n\n' +
    '![chart](https://example.com/chart.png)\n\n' +
    '```js\nconst a = 1 & 2;\nconsole.log(a);\n```\n\n' +
    'Two: ![x](https://example.com/x.png) and [y](https://example.com/y).\n\n' +
    ANSWER;
  // A page that streams with append() and sets only `done`: the empty `text` property must
  // not replace what was appended.
  let sent = 0;
  let shown = 0;
  for (let i = 0; i < text.length; ) {
    const n = 1 + (i % 3);
    comp.instance.append(text.slice(i, i + n));
    i += n;
    sent += n;
    const kinds = comp.data.kinds.slice(0, comp.data.ids.length);
    if (kinds.includes('code')) shown++;
  }
  assert.equal(sent, text.length);
  assert.ok(shown > 0, 'the code block shows with its bar while it streams');
  comp.setData({ done: true });
  await settle();
  const want = oneShot(text);
  assert.deepEqual(JSON.parse(JSON.stringify(componentBlocks(comp.data))), want, 'append() + done: a one-shot render');
  assert.equal(comp.data.kinds[1], 'image');
  assert.equal(comp.data.kinds[2], 'code');
  assert.equal(comp.data.langs[2], 'js');
  // every setData is small and by path (the answer's largest is a new block, sent whole)
  const keyRe = /^(ids|ids\[\d+\]|kinds|kinds\[\d+\]|langs|langs\[\d+\]|pre|pre\[\d+\]|b|b\[\d+\](\[\d+\](\.children\[\d+\])*(\.text)?)?|c|c\[\d+\](\[\d+\](\[\d+\](\.children\[\d+\])*(\.text)?)?)?)$/;
  for (const c of log) for (const k of c.keys) assert.match(k, keyRe);
  const total = log.reduce((s, c) => s + c.bytes, 0);
  const final = Buffer.byteLength(JSON.stringify({ b: want }));
  assert.ok(total < final * 12, `setData total ${total} bytes for ${final} bytes of final blocks`);

  // The copy button: the code's text, entities decoded.
  const copy = comp.querySelector('.md-code-copy');
  assert.ok(copy, 'a copy button on the code block');
  const copied = [];
  comp.addEventListener('copycode', (e) => copied.push(e.detail));
  copy.dispatchEvent('tap');
  await settle();
  assert.deepEqual(calls.clipboard, ['const a = 1 & 2;\nconsole.log(a);']);
  assert.deepEqual(copied, [{ index: 2, code: 'const a = 1 & 2;\nconsole.log(a);' }]);

  // The lone image: its own element; a tap previews every image of the answer.
  const img = comp.querySelector('.md-image');
  assert.ok(img, 'a paragraph that is only an image is an <image>');
  img.dispatchEvent('tap');
  await settle();
  assert.equal(calls.preview.length, 1);
  assert.equal(calls.preview[0].current, 'https://example.com/chart.png');
  assert.deepEqual(calls.preview[0].urls.slice(0, 2), ['https://example.com/chart.png', 'https://example.com/x.png']);

  // A tap on a block with one link gives the page its URL.
  const links = [];
  comp.addEventListener('linktap', (e) => links.push(e.detail));
  const blocks = comp.querySelectorAll('.md-block');
  blocks[0].dispatchEvent('tap');
  await settle();
  assert.deepEqual(links, [{ url: 'https://example.com/guide', index: 0 }]);
  // A block with a link and an image: the user picks (here the first item: the link).
  blocks[3].dispatchEvent('tap');
  await settle();
  assert.deepEqual(calls.actionSheet[calls.actionSheet.length - 1], ['https://example.com/y', '查看图片']);
  assert.deepEqual(links[1], { url: 'https://example.com/y', index: 3 });

  // finish() then append(): a new message; reset() clears.
  comp.instance.append('**next**');
  comp.instance.finish();
  assert.deepEqual(JSON.parse(JSON.stringify(componentBlocks(comp.data))), oneShot('**next**'));
  comp.instance.reset();
  assert.deepEqual(comp.data.ids, []);
  comp.detach();
});

test('miniprogram-simulate: without the wasm the text still shows, as plain text, and an error event fires', { skip: missing }, async () => {
  // A fresh copy of markdown.js (not yet loaded) and a WXWebAssembly that cannot find the file.
  delete require.cache[require.resolve(MP_MARKDOWN)];
  wasmFails = true;
  try {
    const { comp } = mount({ text: '**bold** text' });
    const errors = [];
    comp.addEventListener('error', (e) => errors.push(e.detail));
    await waitFor(() => comp.data.failed, 5000, 'the failure');
    await settle();
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /could not load \/miniprogram_npm\/chunkwise\/chunkwise_markdown\.wasm\.br/);
    assert.equal(comp.dom.querySelector('.md-plain, wx-text').textContent, '**bold** text');
    comp.setData({ text: '**bold** text, more' });
    assert.match(comp.dom.textContent, /more$/);
    comp.detach();
  } finally {
    wasmFails = false;
    delete require.cache[require.resolve(MP_MARKDOWN)];
  }
});

// ---- wcc -------------------------------------------------------------------------------------
function loadGwx(files) {
  const compiler = require('miniprogram-compiler');
  const js = compiler.wxmlToJs(DEMO, { wxmlList: files });
  const ctx = vm.createContext({ console: { log() {}, warn() {}, error() {} } });
  ctx.window = ctx;
  const $gwx = vm.runInContext(`(function (global) {${js}\n})`, ctx)({});
  // Data must be of the context's realm ($gdc checks `constructor === Array`).
  return { $gwx, data: (o) => vm.runInContext(`(${JSON.stringify(o)})`, ctx) };
}
function findAll(n, pred, out = []) {
  if (n && typeof n === 'object') {
    if (pred(n)) out.push(n);
    for (const c of n.children || []) findAll(c, pred, out);
  }
  return out;
}

test('wcc compiles the component\'s WXML; $gwx renders one rich-text per block id with its nodes', { skip: !onLinuxX64 && 'the Linux x64 binaries only' }, () => {
  const files = ['components/chunkwise-markdown/chunkwise-markdown.wxml', 'pages/chat/chat.wxml'];
  const { $gwx, data } = loadGwx(files);
  const blocks = oneShot(ANSWER);
  const render = $gwx(files[0]);
  let tree = render(data({ ids: blocks.map((_, i) => i), b: blocks, failed: false, text: ANSWER, userSelect: true }), {}, {});
  const rts = findAll(tree, (n) => n.tag === 'wx-rich-text');
  assert.equal(rts.length, blocks.length);
  rts.forEach((rt, i) => {
    assert.deepEqual(JSON.parse(JSON.stringify(rt.attr.nodes)), blocks[i]);
    assert.equal(rt.attr['data-index'], i);
    assert.equal(rt.attr.bindlongpress, 'onLongPress');
    assert.equal(rt.attr.class, 'md-block');
    assert.equal(rt.attr.userSelect, true);
  });
  assert.equal(findAll(tree, (n) => n.tag === 'wx-text').length, 0, 'no fallback text');
  // Only ids count: a removed block's nodes may stay in `b` unseen.
  tree = render(data({ ids: [0], b: [blocks[0], blocks[1]], failed: false, text: '', userSelect: true }), {}, {});
  assert.equal(findAll(tree, (n) => n.tag === 'wx-rich-text').length, 1);
  // A code block gets a bar with a copy button; a lone image is an <image>.
  const mixed = oneShot('```js\nlet a = 1;\nb();\n```\n\n![i](https://example.com/i.png)\n\ntext\n');
  // (the code block's lines apart: pre and code are views of the template)
  const codeEl = mixed[0][0].children[0];
  const c = [codeEl.children.map((ln) => ln.children)];
  const pre = [{ pre: mixed[0][0].attrs.class, code: codeEl.attrs.class, ln: codeEl.children[0].attrs.class }];
  tree = render(data({ ids: [0, 1, 2], b: [[], mixed[1], mixed[2]], c, pre, kinds: ['code', 'image'], langs: ['js'], failed: false, userSelect: true }), {}, {});
  const copy = findAll(tree, (n) => n.attr && n.attr.bindtap === 'onCopyCode');
  assert.equal(copy.length, 1);
  assert.equal(copy[0].attr['data-index'], 0);
  assert.equal(findAll(tree, (n) => n.attr && n.attr.class === 'md-code-lang')[0].children.join(''), 'js');
  const body = findAll(tree, (n) => n.tag === 'wx-view' && n.attr.class === 'md-code-body md-pre');
  assert.equal(body.length, 1);
  assert.equal(findAll(body[0], (n) => n.tag === 'wx-view' && n.attr.class === 'md-pre-code md-lang-js').length, 1);
  const lines = findAll(body[0], (n) => n.tag === 'wx-rich-text');
  assert.deepEqual(lines.map((l) => l.attr.class), ['md-code-line md-ln', 'md-code-line md-ln']);
  assert.deepEqual(JSON.parse(JSON.stringify(lines.map((l) => l.attr.nodes))), c[0]);
  const image = findAll(tree, (n) => n.tag === 'wx-image');
  assert.equal(image.length, 1);
  assert.equal(image[0].attr.src, 'https://example.com/i.png');
  assert.equal(image[0].attr.bindtap, 'onImageTap');
  const rich = findAll(tree, (n) => n.tag === 'wx-rich-text' && n.attr.class === 'md-block');
  assert.deepEqual(JSON.parse(JSON.stringify(rich[0].attr.nodes)), mixed[2], 'a block without a kind is rich-text');
  assert.equal(rich.length, 1);
  assert.equal(rich[0].attr.bindtap, 'onBlockTap');
  tree = render(data({ ids: [], b: [], failed: true, plain: '**x**', userSelect: false }), {}, {});
  const plain = findAll(tree, (n) => n.tag === 'wx-text');
  assert.equal(plain.length, 1);
  assert.equal(plain[0].children.join(''), '**x**');

  // The chat page feeds it deltas through its methods (found by id), not the whole text.
  const chat = $gwx(files[1]);
  for (const status of ['connecting', 'streaming', 'resuming', 'paused', 'done', 'stopped', 'error']) {
    const t = chat(data({ msgs: [{ key: 'm1', role: 'user', text: 'q' }, { key: 'm2', role: 'assistant', text: '# a', reasoning: '', status, statusText: '', error: '' }], input: '', busy: false, ready: true, loadError: '' }), {}, {});
    const comps = findAll(t, (n) => n.tag === 'wx-chunkwise-markdown');
    assert.equal(comps.length, 1, status);
    assert.equal(comps[0].attr.id, 'md-m2');
    assert.equal(comps[0].attr.text, undefined, 'no whole-text property');
    assert.equal(comps[0].attr.class, 'answer');
  }
});

test('the component files: json declares a component, the wxss keeps the theme', () => {
  const json = JSON.parse(fs.readFileSync(COMPONENT + '.json', 'utf8'));
  assert.equal(json.component, true);
  const chat = JSON.parse(fs.readFileSync(path.join(DEMO, 'pages', 'chat', 'chat.json'), 'utf8'));
  assert.equal(chat.usingComponents['chunkwise-markdown'], '/components/chunkwise-markdown/chunkwise-markdown');
  const wxss = fs.readFileSync(COMPONENT + '.wxss', 'utf8');
  for (const sel of ['.md-kw', '.md-table', '.md-pre', '@media (prefers-color-scheme: dark)']) assert.ok(wxss.includes(sel), sel);
  const wxml = fs.readFileSync(COMPONENT + '.wxml', 'utf8');
  assert.match(wxml, /wx:for="\{\{ids\}\}" wx:key="\*this"/, '*this over numbers, not over node arrays');
});
