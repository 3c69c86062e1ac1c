'use strict';
// Found in review: a text ending in a lone high surrogate becomes U+FFFD at finish(), and
// the final (unhealed) blocks must win over the healed ones in both patch modes.
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
