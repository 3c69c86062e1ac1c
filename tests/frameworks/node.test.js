'use strict';
// Node: `import` and `require` of `npm pack` of pkg/ in a project, each in its own process,
// streaming an answer through fetchRequest(fetch) and rendering Markdown.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');
const fs = require('node:fs');
const path = require('node:path');
const { scratch, installPackage, startChatServer, checkAnswer } = require('./helpers');

const ESM = `
import { init, StreamDecoder, FORMATS, streamChat, fetchRequest } from 'chunkwise';
import * as markdown from 'chunkwise/markdown';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const resolved = { index: import.meta.resolve('chunkwise'), markdown: import.meta.resolve('chunkwise/markdown') };
const sameInstance = require('chunkwise').StreamDecoder === StreamDecoder;
`;
const CJS = `
const { init, StreamDecoder, FORMATS, streamChat, fetchRequest } = require('chunkwise');
const markdown = require('chunkwise/markdown');
const resolved = { index: require.resolve('chunkwise'), markdown: require.resolve('chunkwise/markdown') };
const sameInstance = true;
`;
// The README's Node example after the imports.
const BODY = `
async function main() {
  await Promise.all([init(), markdown.init()]);
  const md = new markdown.MarkdownRenderer({ patches: 'blocks' });
  const blocks = [];
  const show = (patch) => {
    for (const b of patch.blocks) blocks[b.index] = b.nodes;
    blocks.length = patch.count;
  };
  const view = await new Promise((resolve, reject) => {
    streamChat({
      request: fetchRequest(fetch),
      url: process.env.CHAT_URL,
      body: { model: 'demo', messages: [{ role: 'user', content: '你好' }] },
      pace: false,
      onUpdate: (v) => show(md.append(v.delta)),
      onDone: resolve,
      onError: (e) => reject(new Error(e.type + ': ' + e.message)),
    });
  });
  show(md.finish());
  const names = [typeof init, typeof StreamDecoder, Array.isArray(FORMATS), typeof streamChat, typeof fetchRequest];
  console.log(JSON.stringify({ text: view.text, blocks, resolved, sameInstance, names }));
}
main().catch((e) => { console.error(e); process.exit(1); });
`;

let chat;
let project;
test.before(async () => {
  chat = await startChatServer();
  project = scratch('node');
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  installPackage(project);
});
test.after(() => chat.close());

/** Runs a script in the project (asynchronously: the chat server lives in this process). */
async function runScript(name, source) {
  const file = path.join(project, name);
  fs.writeFileSync(file, source);
  const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: project, env: Object.assign({}, process.env, { CHAT_URL: chat.url }), encoding: 'utf8', timeout: 60000 });
  return JSON.parse(stdout);
}

for (const [label, file, head, want] of [
  ['ESM import resolves to node/index.mjs (the CommonJS build, one instance)', 'app.mjs', ESM, /\/node\/index\.mjs$/],
  ['CommonJS require resolves to node/index.js', 'app.cjs', CJS, /\/node\/index\.js$/],
]) {
  test(`Node: ${label}`, async () => {
    const out = await runScript(file, head + BODY);
    assert.match(out.resolved.index, want);
    assert.match(out.resolved.markdown, /\/node\/markdown\.m?js$/);
    assert.equal(out.sameInstance, true, 'import and require load two copies');
    assert.deepEqual(out.names, ['function', 'function', true, 'function', 'function']);
    checkAnswer(out);
  });
}
