'use strict';
// finish() ends a message: a text ending in a lone high surrogate becomes U+FFFD and the final
// (unhealed) blocks win over the healed ones in both patch modes; appending after it is an error
// that leaves the renderer, and every other one, as it was.
const test = require('node:test');
const assert = require('node:assert');
const { markdownOneShot: oneShot } = require('./helpers');
const path = require('path');

const md = require(path.join(__dirname, '..', '..', 'pkg', 'node', 'markdown.js'));


for (const mode of ['blocks', 'children']) {
  test(`finish() after a lone high surrogate ends with the unhealed render (${mode})`, () => {
    for (const start of ['**', '*', '`', '~~', '[', 'a\n\n> **']) {
      const r = new md.MarkdownRenderer({ patches: mode });
      r.append(start);
      r.append('\uD83D');
      const last = r.finish();
      const expected = oneShot(start + '\uFFFD');
      assert.strictEqual(last.count, expected.length, JSON.stringify(start));
      for (const b of last.blocks) {
        assert.deepStrictEqual({ path: b.path, start: b.start }, { path: [], start: 0 }, 'sent whole');
        assert.deepStrictEqual(b.nodes, expected[b.index], `${JSON.stringify(start)} block ${b.index}`);
      }
      r.free();
    }
  });
}

for (const mode of ['blocks', 'children']) {
  test(`append() after finish() throws a clear error, a second finish() changes nothing, reset() starts over (${mode})`, () => {
    for (const text of ['中', 'a **中文** b', '```js\nconst 中 = 1\n', '| a |\n| - |\n| 中 |', 'x']) {
      const other = new md.MarkdownRenderer({ patches: mode });
      other.append('other ');
      const r = new md.MarkdownRenderer({ patches: mode });
      r.append(text);
      const last = r.finish();
      assert.throws(() => r.append('x'), { name: 'Error', message: /append\(\) after finish\(\); reset\(\) starts a new message/ });
      assert.deepStrictEqual(r.finish(), { blocks: [], count: last.count }, 'a second finish() changes nothing');
      assert.throws(() => r.append(''), /after finish/);
      // The module is still alive for every renderer, and this one starts over after reset().
      assert.strictEqual(other.append('text').count, 1);
      // After reset() it gives what a fresh renderer gives for the same appends.
      r.reset();
      const fresh = new md.MarkdownRenderer({ patches: mode });
      for (const ch of Array.from(text + ' more')) assert.deepStrictEqual(r.append(ch), fresh.append(ch));
      assert.deepStrictEqual(r.finish(), fresh.finish());
      fresh.free();
      other.free();
      r.free();
    }
  });
}
