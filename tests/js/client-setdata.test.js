'use strict';
// Unit tests of the client (js/client/): view.setData, what crosses a page's setData.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { ROOT, streamChat, BASE, relayEvents, split, fakeNet, sendAll, run } = require('./client-harness');
const { parsePath } = require('./mp-page-sandbox');
const { markdownOneShot, longChineseText, plain } = require('./helpers');

/** Applies a setData object to `data` by its path keys, as a page's setData does. */
function applySetData(data, patch) {
  for (const [key, value] of Object.entries(JSON.parse(JSON.stringify(patch)))) {
    const keys = parsePath(key);
    let obj = data;
    for (let i = 0; i < keys.length - 1; i++) {
      if (obj[keys[i]] === null || typeof obj[keys[i]] !== 'object') obj[keys[i]] = typeof keys[i + 1] === 'number' ? [] : {};
      obj = obj[keys[i]];
    }
    obj[keys[keys.length - 1]] = value;
  }
  return data;
}

/** Content events for a long text, `size` characters each. */
function contentPieces(text, size) {
  const out = [];
  const chars = Array.from(text);
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
  return out;
}

test('view.setData: applying every update rebuilds the answer and reasoning as bounded parts, a tick sending the last part', async () => {
  const long = longChineseText(6000, 3);
  const think = longChineseText(1500, 4);
  for (const [pace, partLength] of [[undefined, undefined], [false, 16], [{ cps: 400, maxLagMs: 100000, drainMs: 100000 }, 64]]) {
    const net = fakeNet((call) => sendAll(call, relayEvents({ reasoning: contentPieces(think, 5), content: contentPieces(long, 3) }), { seed: 5, max: 40 }));
    const opts = { request: net.request, partLength };
    if (pace !== undefined) opts.pace = pace;
    let task = null;
    const r = await run(opts, { timeoutMs: 30000, onTask: (t) => (task = t) });
    assert.equal(r.view.text, long);
    const page = { msgs: [{ role: 'user', text: 'hi' }, {}] };
    let tickMax = 0;
    for (const u of r.updates) {
      assert.equal(u.textParts.join(''), u.text, 'view.textParts are the text so far');
      assert.equal(u.reasoningParts.join(''), u.reasoning);
      const data = u.setData('msgs[1]');
      for (const k of Object.keys(data)) assert.match(k, /^msgs\[1\]\.(textParts|reasoningParts)\[\d+\]$|^msgs\[1\]\.status$/, k);
      const parts = Object.keys(data).filter((k) => k.includes('textParts'));
      if (u.delta.length <= 2) assert.ok(parts.length <= 2, `a tick of ${u.delta.length} characters sends ${parts.length} text parts`);
      if (u.delta.length > 0 && u.delta.length < 50) tickMax = Math.max(tickMax, JSON.stringify(parts.map((k) => data[k])).length);
      applySetData(page, data);
    }
    const m = page.msgs[1];
    assert.equal(m.textParts.join(''), long, 'the parts join to the answer');
    assert.equal(m.reasoningParts.join(''), think, 'the parts join to the reasoning');
    assert.equal(m.status, 'done');
    const n = partLength || 32;
    // Parts end at grapheme boundaries (Intl.Segmenter, an independent oracle): no flag, ZWJ
    // sequence or combining mark is split across two text nodes, paced or not.
    for (const [text, parts] of [[long, m.textParts], [think, m.reasoningParts]]) {
      const boundaries = new Set([0]);
      for (const { index, segment } of new Intl.Segmenter('en', { granularity: 'grapheme' }).segment(text)) boundaries.add(index + segment.length);
      let end = 0;
      for (const part of parts) assert.ok(boundaries.has((end += part.length)), `a part ends inside a grapheme at ${end}: ${JSON.stringify(text.slice(end - 4, end + 4))}`);
    }
    for (const part of m.textParts.concat(m.reasoningParts)) {
      assert.ok(part.length < 2 * n + 16, `a part of ${part.length} units (bound 2 × ${n}, plus one emoji sequence)`);
      assert.ok(!/^[\udc00-\udfff\u200d\ufe0f]/.test(part) && !/[\ud800-\udbff\u200d]$/.test(part), `a part splits a character: ${JSON.stringify(part.slice(0, 4))}…${JSON.stringify(part.slice(-4))}`);
    }
    if (pace !== false) assert.ok(tickMax <= 2 * (2 * n + 16) * 3 + 10, `a small tick's text is at most two parts: ${tickMax} bytes`);
    // task.view() gives everything so far (a page redrawing the message).
    const redraw = applySetData({}, task.view().setData(''));
    assert.equal(redraw.textParts.join(''), long);
    assert.equal(redraw.reasoningParts.join(''), think);
  }
});

test('view.setData with a MarkdownRenderer: the page\'s blocks end equal to a one-shot render; no text parts', async () => {
  const md = require(path.join(ROOT, 'pkg', 'node', 'markdown.js'));
  // A setext heading merges two blocks into one: the block past the end is emptied.
  const answer = '# 标题\n\n第一段，**加粗**和 `code`。\n\nFoo\n---\n\n- 一\n- 二\n\n| a | b |\n| - | - |\n| 1 | 2 |\n\n```js\nconst x = 1;\n```\n\n[链接](https://example.com) 结束。\n';
  const oneShot = markdownOneShot(answer);
  for (const patches of [undefined, 'children', 'blocks']) {
    const renderer = new md.MarkdownRenderer(patches ? { patches } : {});
    const net = fakeNet((call) => sendAll(call, relayEvents({ content: contentPieces(answer, 2) }), { seed: 7, max: 30 }));
    const r = await run({ request: net.request, markdown: renderer, pace: { cps: 300, maxLagMs: 100000, drainMs: 100000 } }, { timeoutMs: 30000 });
    assert.equal(r.view.text, answer);
    const page = { msgs: [{}] };
    for (const u of r.updates) {
      const data = u.setData('msgs[0]');
      assert.ok(!Object.keys(data).some((k) => k.includes('textParts')), 'no text parts with Markdown');
      applySetData(page, data);
    }
    const blocks = page.msgs[0].blocks.filter((b) => !(Array.isArray(b) && b.length === 0));
    assert.deepEqual(blocks, plain(oneShot), `patches ${patches}`);
    assert.throws(() => renderer.append('x'), /freed/, 'the renderer is freed when the answer ends');
  }
  assert.throws(() => streamChat({ request: () => ({}), url: BASE, markdown: {} }), /MarkdownRenderer/);
});
