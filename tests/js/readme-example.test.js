'use strict';
// The README's 20-line mini-program example, run as written in the page sandbox (no
// TextDecoder, WXWebAssembly by path, wx.request over loopback HTTP split at random). Only its
// placeholder URL is pointed at a local server that streams an OpenAI body.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { createPageSandbox } = require('./mp-page-sandbox');

const ROOT = path.join(__dirname, '..', '..');

/** The first ```js block of the README that calls Page(): the mini-program example. */
function readmeExample() {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  const page = blocks.find((b) => b.includes('Page(') && b.includes('streamChat'));
  assert.ok(page, 'the README has a mini-program example');
  return page;
}

function openAiBody(text) {
  let body = ': keep-alive\n\n';
  for (const piece of text.match(/[\s\S]{1,3}/gu)) {
    body += 'data: ' + JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] }) + '\n\n';
  }
  return body + 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n';
}

test('the README mini-program example streams an answer into the page as written', async (t) => {
  const answer = '你好！这是 **chunkwise** 的示例：👨‍👩‍👧 一家人，🇨🇳，e\u0301。\n\n```js\nconst a = 1;\n```\n';
  const body = Buffer.from(openAiBody(answer));
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    // Small writes, cut anywhere (inside characters and lines).
    let at = 0;
    const next = () => {
      if (at >= body.length) return res.end();
      const n = 1 + ((at * 7919) % 23);
      res.write(body.subarray(at, at + n));
      at += n;
      setTimeout(next, 1);
    };
    next();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${server.address().port}/v1/chat/completions`;

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-readme-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const npm = path.join(root, 'miniprogram_npm', 'chunkwise');
  fs.mkdirSync(npm, { recursive: true });
  for (const f of fs.readdirSync(path.join(ROOT, 'pkg', 'miniprogram'))) {
    fs.copyFileSync(path.join(ROOT, 'pkg', 'miniprogram', f), path.join(npm, f));
  }
  fs.mkdirSync(path.join(root, 'pages', 'chat'), { recursive: true });
  const source = readmeExample().replace('https://your.domain/v1/chat/completions', url);
  assert.ok(source.includes(url), 'the example names the URL it streams from');
  fs.writeFileSync(path.join(root, 'pages', 'chat', 'chat.js'), source);
  fs.writeFileSync(path.join(root, 'app.js'), 'App({});\n');
  fs.writeFileSync(path.join(root, 'app.json'), JSON.stringify({ pages: ['pages/chat/chat'] }));

  const ps = createPageSandbox({ packageRoot: root, network: { split: { seed: 7, maxBytes: 9 } } });
  t.after(() => ps.close());
  ps.launch();
  const page = ps.open('pages/chat/chat');
  await page.ask([{ role: 'user', content: '你好' }]);
  const joined = () => (page.data.msgs[0].textParts || []).join('');
  await ps.waitFor(() => page.data.msgs[0].status === 'done', 20000);
  assert.strictEqual(joined(), answer);
  // The typewriter paced it: many small path-key updates, each carrying only changed parts.
  const updates = page.setDataCalls.filter((c) => Object.keys(c.patch).some((k) => k.startsWith('msgs[0].textParts[')));
  assert.ok(updates.length > 5, `${updates.length} updates`);
  // Grapheme boundaries of the answer, by the host's Intl.Segmenter (an independent oracle).
  const boundaries = new Set([0]);
  for (const { index, segment } of new Intl.Segmenter('en', { granularity: 'grapheme' }).segment(answer)) {
    boundaries.add(index + segment.length);
  }
  const parts = [];
  for (const u of updates) {
    for (const [key, value] of Object.entries(u.patch)) {
      const m = key.match(/^msgs\[0\]\.textParts\[(\d+)\]$/);
      if (m) parts[Number(m[1])] = value;
      else assert.strictEqual(key, 'msgs[0].status');
    }
    const text = parts.join('');
    assert.ok(answer.startsWith(text), 'each update is a prefix of the answer');
    assert.ok(boundaries.has(text.length), `an update ends inside a grapheme: ${JSON.stringify(text.slice(-4))}`);
    assert.ok(Object.keys(u.patch).length <= 3, `one tick sets at most a couple of parts: ${Object.keys(u.patch)}`);
  }
  ps.back();
  assert.deepStrictEqual(ps.warnings, []);
});
