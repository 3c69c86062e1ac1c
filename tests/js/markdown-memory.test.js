'use strict';
// The Markdown module's own allocator reuses what it frees: streaming the same answers into
// fresh renderers, round after round, needs no more memory after the first round. (wasm
// memory never shrinks; an allocator that never reused a freed block would grow it every
// round.)
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const md = require(path.join(ROOT, 'pkg', 'node', 'markdown.js'));
const glue = require(path.join(ROOT, 'pkg', 'node', 'chunkwise_markdown_glue.js'));

function stream(text) {
  const r = new md.MarkdownRenderer();
  for (let i = 0; i < text.length; i += 7) r.append(text.slice(i, i + 7));
  r.finish();
  r.free();
}

test('streaming corpus answers into fresh renderers: memory stops growing after the first round', () => {
  const answers = ['answer-zh.md', 'answer-en.md'].map((f) => fs.readFileSync(path.join(ROOT, 'bench', 'corpus', f), 'utf8'));
  const sizes = [];
  for (let round = 0; round < 6; round++) {
    for (const a of answers) stream(a);
    sizes.push(glue.wasm_memory().buffer.byteLength);
  }
  assert.ok(sizes.every((s) => s === sizes[0]), `memory after each round: ${sizes.join(', ')}`);
});
