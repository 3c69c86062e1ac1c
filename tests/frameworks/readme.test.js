'use strict';
// The README's framework sections show exactly what these tests build and run: every code
// block tagged `<!-- test: <path> -->` must appear in that file as consecutive lines (blank
// lines and indentation aside). A README line with 'https://your.domain/' stands for the
// line of the file that starts the same way (the tests point the projects at a loopback
// server instead).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT } = require('./helpers');

const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const BLOCK = /<!-- test: (\S+) -->\n```[a-z]*\n([\s\S]*?)\n```/g;

const lines = (text) => text.split('\n').map((l) => l.trim()).filter((l) => l !== '');

function sameLine(readme, file) {
  const at = readme.indexOf("'https://your.domain/");
  if (at < 0) return readme === file;
  return file.startsWith(readme.slice(0, at)) && file.length > at;
}

function contains(fileLines, want) {
  for (let i = 0; i + want.length <= fileLines.length; i++) {
    if (want.every((w, j) => sameLine(w, fileLines[i + j]))) return true;
  }
  return false;
}

const blocks = [...README.matchAll(BLOCK)];

test('the README tags its framework examples', () => {
  const files = new Set(blocks.map((m) => m[1]));
  for (const dir of ['native', 'taro', 'uniapp', 'web']) {
    assert.ok([...files].some((f) => f.startsWith(`tests/frameworks/${dir}/`)), `no README example is taken from tests/frameworks/${dir}/`);
  }
});

for (const [i, m] of blocks.entries()) {
  test(`README example ${i + 1} is in ${m[1]}`, () => {
    const file = path.join(ROOT, m[1]);
    assert.ok(fs.existsSync(file), `${m[1]} does not exist`);
    assert.ok(contains(lines(fs.readFileSync(file, 'utf8')), lines(m[2])), `the README's block is not in ${m[1]} as written:\n${m[2]}`);
  });
}
