'use strict';
// chunkwise/markdown from JS: the Node build and the mini-program build (in mp-sandbox: no
// WebAssembly global, WXWebAssembly by path) give the same patches; answers fed 2 characters
// at a time, their patches applied to a copy of the page's data with setData's path rules,
// end equal to a one-shot render after finish(), in both patch modes; misuse throws clearly.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { createSandbox } = require('./mp-sandbox');
const { parsePath } = require('./mp-page-sandbox');

const ROOT = path.join(__dirname, '..', '..');
const NODE_BUILD = path.join(ROOT, 'pkg', 'node', 'markdown.js');
const MP_DIR = path.join(ROOT, 'pkg', 'miniprogram');
const md = require(NODE_BUILD);

/** Answers with everything the renderer handles: the demo model's, the benchmark's, the fixtures', a synthetic one. */
function corpus() {
  const out = [];
  const add = (name, file) => {
    if (fs.existsSync(file)) out.push({ name, text: fs.readFileSync(file, 'utf8') });
  };
  add('demo zh', path.join(ROOT, 'relay', 'src', 'demo', 'answer.zh.md'));
  add('demo en', path.join(ROOT, 'relay', 'src', 'demo', 'answer.en.md'));
  add('bench zh', path.join(ROOT, 'bench', 'corpus', 'answer-zh.md'));
  add('bench en', path.join(ROOT, 'bench', 'corpus', 'answer-en.md'));
  const answers = path.join(ROOT, 'markdown', 'tests', 'fixtures', 'markdown_answers');
  if (fs.existsSync(answers)) for (const f of fs.readdirSync(answers).sort()) if (f.endsWith('.md')) add(f, path.join(answers, f));
  out.push({ name: 'synthetic', text: SYNTHETIC });
  return out;
}

const SYNTHETIC = [
  '# 标题 with `code` and **bold *nested* text**',
  '',
  'Setext heading',
  '---',
  '',
  'A paragraph with ~~strike~~, _em_, a [link](https://example.com/a?b=1&c=2 "title"), an autolink https://chunkwise.dev/x and <mail@example.com>, an image ![logo](https://example.com/logo.png), math $E = mc^2$ and & < > "quotes".',
  'A soft break, then a hard one  ',
  'after it.',
  '',
  '- [ ] task',
  '- [x] done task',
  '  - nested *item*',
  '    1. deep ordered',
  '',
  '3. starts at three',
  '4. four',
  '',
  '> a quote',
  '> > nested quote with `code`',
  '',
  '```python',
  'def f(x: int) -> str:',
  '    # comment',
  '    return "s" + str(x * 3.5)',
  '```',
  '',
  '```rust',
  'fn main() { let v: Vec<u8> = vec![1, 2]; println!("{:?}", v); }',
  '```',
  '',
  '```',
  'plain block',
  '```',
  '',
  '| left | center | right |',
  '| :--- | :----: | ----: |',
  '| a | **b** | `c` |',
  '| 中文 | 😀 | 3.14 |',
  '',
  '$$',
  '\\sum_{i=1}^n i = \\frac{n(n+1)}{2}',
  '$$',
  '',
  '***',
  '',
  'Term with [ref link][r] and trailing text',
  '',
  '[r]: https://example.com/ref',
  '',
  '    indented code',
  '',
  'Last line without a newline **unclosed',
].join('\n');

/** setData's path rules on a plain object (values cross as JSON). */
function applyData(page, data) {
  for (const [key, value] of Object.entries(JSON.parse(JSON.stringify(data)))) {
    const keys = parsePath(key);
    let obj = page;
    for (let i = 0; i < keys.length - 1; i++) {
      if (obj[keys[i]] === null || typeof obj[keys[i]] !== 'object') obj[keys[i]] = typeof keys[i + 1] === 'number' ? [] : {};
      obj = obj[keys[i]];
    }
    obj[keys[keys.length - 1]] = value;
  }
}

/** A page copy: {blocks, count} after `patch` (prefix 'blocks'). */
function applyPatch(renderer, page, patch) {
  applyData(page, renderer.dataFor(patch, 'blocks'));
  if (!page.blocks) page.blocks = [];
  page.blocks.length = Math.min(page.blocks.length, patch.count);
  page.count = patch.count;
}

/** The blocks of a one-shot render (whole blocks, from the patches of one append + finish). */
function oneShot(text, options) {
  const r = new md.MarkdownRenderer(Object.assign({}, options, { patches: 'blocks' }));
  try {
    const page = { blocks: [], count: 0 };
    applyPatch(r, page, r.append(text));
    applyPatch(r, page, r.finish());
    return page.blocks;
  } finally {
    r.free();
  }
}

function pieces(text, n) {
  const out = [];
  for (let i = 0; i < text.length; i += n) out.push(text.slice(i, i + n));
  return out;
}

let sandbox = null;
let mp = null;
test.before(async () => {
  assert.ok(fs.existsSync(NODE_BUILD), 'pkg/node/markdown.js: run ./build.sh first');
  sandbox = createSandbox({ packageRoot: MP_DIR, quiet: true });
  mp = sandbox.require('/markdown.js');
  await mp.init({ wasmPath: '/chunkwise_markdown.wasm.br' });
});
test.after(() => {
  if (sandbox) sandbox.close();
});

test('the mini-program build runs in a realm without WebAssembly and gives the Node build\'s patches, append by append', () => {
  assert.deepEqual(sandbox.leakedGlobals(), []);
  for (const { name, text } of corpus()) {
    for (const patches of ['blocks', 'children']) {
      const a = new md.MarkdownRenderer({ patches });
      const b = new mp.MarkdownRenderer({ patches });
      try {
        let step = 0;
        for (const piece of pieces(text, 2)) {
          const pa = JSON.stringify(a.append(piece));
          const pb = JSON.stringify(b.append(piece));
          if (pa !== pb) assert.fail(`[${name}, ${patches}] append ${step} (${JSON.stringify(piece)}) differs:\nnode ${pa.slice(0, 300)}\nmp   ${pb.slice(0, 300)}`);
          step++;
        }
        assert.equal(JSON.stringify(b.finish()), JSON.stringify(a.finish()), `[${name}, ${patches}] finish`);
        // dataFor is the same code in both builds, with the same keys.
        a.reset();
        a.append(text);
        const p = a.append('\n\nmore *text*');
        assert.deepEqual(JSON.parse(JSON.stringify(b.dataFor(JSON.parse(JSON.stringify(p)), 'msgs[3].blocks'))), a.dataFor(p, 'msgs[3].blocks'));
      } finally {
        a.free();
        b.free();
      }
    }
  }
});

test('2 characters at a time, patches applied with path keys: the page equals a one-shot render after finish(), in both modes', () => {
  for (const { name, text } of corpus()) {
    const want = oneShot(text);
    assert.ok(want.length > 0, name);
    const pages = {};
    for (const patches of ['blocks', 'children']) {
      const r = new md.MarkdownRenderer({ patches });
      const page = { blocks: [], count: 0 };
      const keys = new Set();
      try {
        for (const piece of pieces(text, 2)) {
          const patch = r.append(piece);
          assert.ok(Number.isInteger(patch.count) && patch.count >= 0);
          for (const b of patch.blocks) {
            assert.ok(b.index < patch.count, `[${name}] a patched block exists`);
            assert.ok(Array.isArray(b.path) && Number.isInteger(b.start));
            if (patches === 'blocks' && b.nodes.length > 0) assert.deepEqual([b.path, b.start], [[], 0], `[${name}] 'blocks' sends whole blocks`);
          }
          applyPatch(r, page, patch);
          for (const k of Object.keys(r.dataFor(patch, 'blocks'))) keys.add(k.replace(/\d+/g, 'N'));
        }
        applyPatch(r, page, r.finish());
        assert.equal(page.count, want.length, `[${name}, ${patches}] block count`);
        for (let i = 0; i < want.length; i++) assert.deepEqual(page.blocks[i], want[i], `[${name}, ${patches}] block ${i}`);
        assert.equal(page.blocks.length, want.length);
        // What the renderer holds is what the page holds.
        pages[patches] = page;
        if (patches === 'children' && text.length > 2000) assert.ok([...keys].some((k) => k.includes('.children')), `[${name}] children mode sends parts of blocks`);
      } finally {
        r.free();
      }
    }
    assert.deepEqual(pages.children.blocks, pages.blocks.blocks, name);
  }
});

// GFM §4.10: a table ends at a blank line or another block's start, so the line after it may
// turn back into a row while it is typed (`|\` is a paragraph, `|\|` a row).
test('a table typed one character at a time keeps the row its next line becomes, in both modes', () => {
  for (const text of ['| h0 |\n|---|\n|\\|\n', '| h0 |\n|:-:|\n|  *\n']) {
    const want = oneShot(text);
    for (const patches of ['blocks', 'children']) {
      const r = new md.MarkdownRenderer({ patches });
      const page = { blocks: [], count: 0 };
      try {
        for (const piece of pieces(text, 1)) applyPatch(r, page, r.append(piece));
        applyPatch(r, page, r.finish());
        assert.deepEqual(page.blocks, want, `${JSON.stringify(text)} (${patches})`);
      } finally {
        r.free();
      }
    }
  }
});

// The blocks with the class taken off the word being typed at the end of a code block's open
// line (its trailing run of [A-Za-z0-9_$#@!:-]): a streamed frame shows that word with the class
// its start got until a character that ends it arrives (markdown/README.md), and may differ
// from a fresh render of the same prefix there, and only there.
function openWordUnclassed(blocks) {
  const out = JSON.parse(JSON.stringify(blocks));
  let kids = out[out.length - 1];
  for (;;) {
    const last = kids && kids[kids.length - 1];
    if (!last || !last.children) return out;
    kids = last.children;
    if (last.name === 'code') break;
  }
  const line = kids[kids.length - 1];
  if (!line || !line.children) return out;
  const chars = [];
  for (const n of line.children) {
    if (n.type === 'text') for (const ch of n.text) chars.push([ch, null]);
    else for (const ch of n.children.map((c) => c.text).join('')) chars.push([ch, n.attrs.class]);
  }
  for (let i = chars.length - 1; i >= 0 && /[A-Za-z0-9_$#@!:-]/.test(chars[i][0]); i--) chars[i][1] = null;
  const rebuilt = [];
  for (const [ch, cls] of chars) {
    const prev = rebuilt[rebuilt.length - 1];
    const prevCls = prev ? (prev.type === 'text' ? null : prev.attrs.class) : undefined;
    if (prev && prevCls === cls) {
      if (cls === null) prev.text += ch;
      else prev.children[0].text += ch;
    } else if (cls === null) rebuilt.push({ type: 'text', text: ch });
    else rebuilt.push({ name: 'span', attrs: { class: cls }, children: [{ type: 'text', text: ch }] });
  }
  line.children = rebuilt;
  return out;
}

test('while streaming, the page copy of each mode equals a fresh render of the same prefix (sampled)', () => {
  const text = corpus().find((c) => c.name === 'demo zh').text;
  const a = new md.MarkdownRenderer({ patches: 'blocks' });
  const c = new md.MarkdownRenderer({ patches: 'children' });
  const pa = { blocks: [], count: 0 };
  const pc = { blocks: [], count: 0 };
  let sofar = '';
  let i = 0;
  for (const piece of pieces(text, 2)) {
    sofar += piece;
    applyPatch(a, pa, a.append(piece));
    applyPatch(c, pc, c.append(piece));
    assert.deepEqual(pc.blocks, pa.blocks, `after ${sofar.length} characters`);
    if (i++ % 25 === 0) {
      const fresh = new md.MarkdownRenderer();
      const pf = { blocks: [], count: 0 };
      applyPatch(fresh, pf, fresh.append(sofar));
      fresh.free();
      assert.deepEqual(
        openWordUnclassed(pa.blocks),
        openWordUnclassed(pf.blocks),
        `a fresh render of the first ${sofar.length} characters`,
      );
    }
  }
  a.free();
  c.free();
});

test('rich-text nodes: only element and text nodes with class/style attrs, highlighted code, tables, links beside the nodes', () => {
  const r = new md.MarkdownRenderer();
  const page = { blocks: [], count: 0 };
  const links = [];
  for (const piece of pieces(SYNTHETIC, 2)) {
    const p = r.append(piece);
    for (const b of p.blocks) if (b.links) links[b.index] = b.links;
    applyPatch(r, page, p);
  }
  const last = r.finish();
  for (const b of last.blocks) if (b.links) links[b.index] = b.links;
  applyPatch(r, page, last);
  r.free();
  const ALLOWED = new Set(['a', 'abbr', 'address', 'article', 'aside', 'b', 'bdi', 'bdo', 'big', 'blockquote', 'br', 'caption', 'center', 'cite', 'code', 'col', 'colgroup', 'dd', 'del', 'div', 'dl', 'dt', 'em', 'fieldset', 'font', 'footer', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'i', 'img', 'ins', 'label', 'legend', 'li', 'mark', 'nav', 'ol', 'p', 'pre', 'q', 'rt', 'ruby', 's', 'section', 'small', 'span', 'strong', 'sub', 'sup', 'table', 'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'tt', 'u', 'ul']);
  const classes = new Set();
  (function walk(nodes) {
    for (const n of nodes) {
      if (n.type === 'text') {
        assert.deepEqual(Object.keys(n).sort(), ['text', 'type']);
        continue;
      }
      assert.ok(ALLOWED.has(n.name), `tag ${n.name} is on rich-text's list`);
      for (const k of Object.keys(n.attrs || {})) assert.ok(['class', 'style', 'src', 'alt', 'start'].includes(k), `attr ${k}`);
      assert.ok(!('href' in (n.attrs || {})));
      for (const c of (n.attrs.class || '').split(/\s+/)) if (c) classes.add(c);
      walk(n.children || []);
    }
  })(page.blocks.flat());
  for (const c of ['md-h1', 'md-h2', 'md-p', 'md-strong', 'md-em', 'md-del', 'md-a', 'md-img', 'md-ul', 'md-ol', 'md-li', 'md-task', 'md-task-done', 'md-blockquote', 'md-pre', 'md-pre-code', 'md-kw', 'md-str', 'md-com', 'md-num', 'md-type', 'md-fn', 'md-table', 'md-th', 'md-td', 'md-math', 'md-hr']) {
    assert.ok(classes.has(c), `class ${c} is used`);
  }
  // Every md-* class the renderer used has a rule in the theme (wxss and css).
  const wxss = fs.readFileSync(path.join(ROOT, 'miniprogram-demo', 'components', 'chunkwise-markdown', 'chunkwise-markdown.wxss'), 'utf8');
  const css = fs.readFileSync(path.join(ROOT, 'js', 'chunkwise-markdown.css'), 'utf8');
  for (const c of ['md-h1', 'md-p', 'md-a', 'md-kw', 'md-str', 'md-com', 'md-num', 'md-type', 'md-fn', 'md-pre', 'md-table', 'md-th', 'md-td', 'md-math', 'md-task', 'md-blockquote']) {
    assert.ok(wxss.includes('.' + c + ' ') || wxss.includes('.' + c + ','), `wxss has .${c}`);
    assert.ok(css.includes('.' + c + ' ') || css.includes('.' + c + ','), `css has .${c}`);
  }
  const allLinks = links.flat();
  for (const u of ['https://example.com/a?b=1&c=2', 'https://chunkwise.dev/x', 'https://example.com/logo.png', 'https://example.com/ref']) assert.ok(allLinks.includes(u), `links has ${u}: ${JSON.stringify(allLinks)}`);
  // Text nodes escape & (rich-text decodes entities in text).
  const json = JSON.stringify(page.blocks);
  assert.match(json, /"text":"[^"]*&amp; &lt;|&amp; < >/);
});

test('reset() starts over; a renderer per message; the same text gives the same patches', () => {
  const text = corpus()[0].text;
  const r = new md.MarkdownRenderer({ patches: 'children' });
  const first = pieces(text, 7).map((p) => JSON.stringify(r.append(p)));
  first.push(JSON.stringify(r.finish()));
  r.reset();
  const second = pieces(text, 7).map((p) => JSON.stringify(r.append(p)));
  second.push(JSON.stringify(r.finish()));
  assert.deepEqual(second, first);
  r.reset();
  assert.deepEqual(r.append(''), { blocks: [], count: 0 });
  const p = r.append('hi');
  assert.equal(p.count, 1);
  assert.deepEqual(p.blocks[0].nodes, [{ name: 'p', attrs: { class: 'md-p' }, children: [{ type: 'text', text: 'hi' }] }]);
  r.free();
});

test('an append that shows nothing gives no blocks and the block count, in both builds', () => {
  for (const build of [md, mp]) {
    const r = new build.MarkdownRenderer();
    try {
      r.append('# Title\n\nSome text');
      // (stray markers at the end of a paragraph are hidden until what follows tells; the
      // mini-program build's objects are its sandbox realm's: compared as JSON)
      assert.equal(JSON.stringify(r.append(' **')), '{"blocks":[],"count":2}');
      assert.equal(JSON.stringify(r.append('*')), '{"blocks":[],"count":2}');
      assert.equal(JSON.stringify(r.dataFor(r.append(''), 'blocks')), '{}');
      const p = r.append('x');
      assert.equal(p.count, 2);
      assert.equal(p.blocks.length, 1);
    } finally {
      r.free();
    }
  }
});

test('a surrogate pair split across appends, with an empty append between, is one character', () => {
  // ('blocks' patches: each changed block whole, so the last one sent is what the page holds)
  const r = new md.MarkdownRenderer({ patches: 'blocks' });
  const blocks = [];
  for (const p of [r.append('a \ud83d'), r.append(''), r.append('\ude00 b'), r.finish()]) for (const b of p.blocks) blocks[b.index] = b.nodes;
  assert.deepEqual(blocks, [[{ name: 'p', attrs: { class: 'md-p' }, children: [{ type: 'text', text: 'a \ud83d\ude00 b' }] }]]);
  r.free();
});

test('lone surrogates become U+FFFD, pairs one character, wherever the appends split them', () => {
  const text = 'a \ud83d\ude00 \ude00b \ud83dc \ud83d\ud83d\ude00 d\ud83d';
  const want = 'a \ud83d\ude00 \ufffdb \ufffdc \ufffd\ud83d\ude00 d\ufffd';
  for (const n of [1, 2, 3, text.length]) {
    const r = new md.MarkdownRenderer({ patches: 'blocks' });
    const blocks = [];
    for (const p of [...pieces(text, n).map((t) => r.append(t)), r.finish()]) for (const b of p.blocks) blocks[b.index] = b.nodes;
    assert.deepEqual(blocks, [[{ name: 'p', attrs: { class: 'md-p' }, children: [{ type: 'text', text: want }] }]], `appends of ${n}`);
    r.free();
  }
});

test('options: highlight false leaves code plain; autolink false leaves bare URLs as text', () => {
  const code = '```js\nconst a = 1;\n```\n';
  const plain = oneShot(code, { highlight: false });
  assert.doesNotMatch(JSON.stringify(plain), /md-kw/);
  assert.match(JSON.stringify(oneShot(code)), /md-kw/);
  assert.doesNotMatch(JSON.stringify(oneShot('see https://example.com now', { autolink: false })), /md-a/);
  assert.match(JSON.stringify(oneShot('see https://example.com now')), /md-a/);
});

test('misuse throws clear errors, in both builds', async () => {
  for (const [name, m] of [['node', md], ['mini program', mp]]) {
    const R = m.MarkdownRenderer;
    assert.throws(() => R(), /use 'new MarkdownRenderer/, name);
    assert.throws(() => new R(null), /options must be an object/, name);
    assert.throws(() => new R('blocks'), /options must be an object/, name);
    assert.throws(() => new R({ patches: 'lines' }), /patches must be 'blocks' or 'children'/, name);
    const r = new R();
    assert.throws(() => r.append(), /append\(\) takes a string/, name);
    assert.throws(() => r.append(42), /append\(\) takes a string/, name);
    assert.throws(() => r.append(new Uint8Array(2)), /append\(\) takes a string/, name);
    r.append('ok');
    r.free();
    r.free(); // twice is fine
    assert.throws(() => r.append('x'), /freed/, name);
    assert.throws(() => r.finish(), /freed/, name);
    assert.throws(() => r.reset(), /freed/, name);
  }
  // The mini-program build before init(), and init() with a wrong path (then a right one).
  const sb = createSandbox({ packageRoot: MP_DIR, quiet: true });
  try {
    const fresh = sb.require('/markdown.js');
    assert.throws(() => new fresh.MarkdownRenderer(), /not loaded yet; await init\(\)/);
    await assert.rejects(fresh.init({ wasmPath: '/nope/chunkwise_markdown.wasm.br' }), /could not load \/nope\/chunkwise_markdown\.wasm\.br.*init\(\{wasmPath\}\)/);
    await fresh.init({ wasmPath: '/chunkwise_markdown.wasm.br' });
    await fresh.init(); // idempotent once loaded, whatever the path
    const r = new fresh.MarkdownRenderer();
    assert.equal(r.append('# ok').count, 1);
    r.free();
  } finally {
    sb.close();
  }
  // In a realm without WXWebAssembly, init() says what is missing.
  const bare = createSandbox({ packageRoot: MP_DIR, quiet: true });
  try {
    bare.run('delete globalThis.WXWebAssembly', 'x.js');
    await assert.rejects(bare.require('/markdown.js').init(), /WXWebAssembly is not available/);
  } finally {
    bare.close();
  }
});

/**
 * The `usize` constants of a Rust source, `const NAME: usize = a + B;` (numbers and earlier
 * constants joined by `+`), as numbers.
 */
function rustConsts(src) {
  const out = {};
  for (const m of src.matchAll(/^const ([A-Z_]+): usize = ([^;]+);$/gm)) {
    out[m[1]] = m[2].split('+').reduce((sum, term) => {
      const t = term.trim();
      const v = /^\d+$/.test(t) ? Number(t) : out[t];
      assert.ok(Number.isInteger(v), `const ${m[1]}: cannot read ${t}`);
      return sum + v;
    }, 0);
  }
  return out;
}

test('the results block: markdown.js reads a text\'s further nodes where markdown/src/wasm.rs writes them', () => {
  const rust = rustConsts(fs.readFileSync(path.join(ROOT, 'markdown', 'src', 'wasm.rs'), 'utf8'));
  assert.ok(Number.isInteger(rust.MORE), 'wasm.rs: no const MORE');
  // Both the source and the built module, which is what the other tests run.
  for (const file of [path.join(ROOT, 'js', 'markdown.js'), NODE_BUILD, path.join(MP_DIR, 'markdown.js')]) {
    const js = fs.readFileSync(file, 'utf8').match(/\bvar MORE ?= ?(\d+);/);
    assert.ok(js, `${file}: no var MORE`);
    assert.equal(Number(js[1]), rust.MORE, file);
  }
});
