'use strict';
// The H5 page (miniprogram-demo/h5, served by the relay at /) in headless Chromium: it loads
// pkg/web, asks, the answer streams in typewriter steps and renders as Markdown (pkg/web's
// MarkdownRenderer, nodes as DOM elements): its HTML ends equal to a one-shot render (by the
// Node build) of the demo model's answer;
// a second question is stopped mid-way (the relay cancels it); a screenshot goes to
// tests/js/artifacts/ (not committed). Only 127.0.0.1 is reachable; every wait is bounded.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { markdownOneShot: oneShot } = require('./helpers');
const path = require('node:path');
const { startRelay, httpRequest } = require('./mp-page-sandbox');

const ROOT = path.join(__dirname, '..', '..');
const ARTIFACTS = path.join(__dirname, 'artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ZH = '小程序里怎么做流式输出？';
const EN = 'How do I stream an answer in a browser?';

const textOf = (nodes) => nodes.map((n) => (n.type === 'text' ? n.text.replace(/&amp;/g, '&') : textOf(n.children || []))).join('');
const renderedText = (text) => oneShot(text).map(textOf).join('');
/** The HTML the page should hold for these blocks, as the browser serializes it. */
function blocksHtml(blocks) {
  const esc = (t, attr) => t.replace(/&/g, '&amp;').replace(/\u00a0/g, '&nbsp;').replace(attr ? /"/g : /[<>]/g, (c) => ({ '"': '&quot;', '<': '&lt;', '>': '&gt;' })[c]);
  const VOID = new Set(['img', 'br', 'hr']);
  const node = (n) => {
    if (n.type === 'text') return esc(n.text.replace(/&amp;/g, '&'), false);
    const attrs = ['class', 'style', 'alt', 'start', 'src'].filter((k) => n.attrs && typeof n.attrs[k] === 'string').map((k) => ` ${k}="${esc(n.attrs[k], true)}"`).join('');
    return `<${n.name}${attrs}>` + (VOID.has(n.name) ? '' : (n.children || []).map(node).join('') + `</${n.name}>`);
  };
  return blocks.map((b) => '<div class="md-block">' + b.map(node).join('') + '</div>').join('');
}

let chromium = null;
try {
  ({ chromium } = require('playwright-core'));
} catch (e) {
  chromium = null;
}
const skip = chromium === null ? 'playwright-core is not installed (npm install in tests/js)' : !fs.existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM}` : false;

async function expectedAnswer(base, messages) {
  const r = await httpRequest(`${base}/v1/chat/completions`, { method: 'POST', body: { model: 'demo', stream: false, messages } });
  assert.equal(r.status, 200, r.body);
  const msg = JSON.parse(r.body).choices[0].message;
  return { text: msg.content, reasoning: msg.reasoning_content || '' };
}

/** The last assistant message: { text, reasoning, status, resumes, error }. */
function lastAnswer(page) {
  return page.evaluate(() => {
    const all = document.querySelectorAll('.msg.assistant');
    const m = all[all.length - 1];
    if (!m) return null;
    return {
      text: m.querySelector('.answer').textContent,
      html: m.querySelector('.answer').innerHTML.replace(/ (href|target|rel)="[^"]*"/g, ''),
      reasoning: m.querySelector('.reasoning-body').textContent,
      status: m.dataset.status,
      error: m.querySelector('.error').hidden ? '' : m.querySelector('.error-text').textContent,
    };
  });
}

/** Polls the last answer every 50 ms until pred(answer); returns every distinct text length seen. */
async function watch(page, pred, timeoutMs) {
  const lengths = [];
  const started = Date.now();
  for (;;) {
    const a = await lastAnswer(page);
    if (a && lengths[lengths.length - 1] !== a.text.length) lengths.push(a.text.length);
    if (a && pred(a)) return { answer: a, lengths };
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms; last answer: ${JSON.stringify(a)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('the H5 page in headless Chromium: ask, watch the answer stream, stop, screenshot', { skip, timeout: 180000 }, async (t) => {
  const started = Date.now();
  const relay = await startRelay({ RELAY_DEMO_TOKEN_MS: '10', RELAY_DEMO_FIRST_TOKEN_MS: '150' });
  let browser = null;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      timeout: 30000,
    });
    const context = await browser.newContext({ viewport: { width: 430, height: 860 }, deviceScaleFactor: 1 });
    const problems = [];
    const requests = [];
    // Only the relay on loopback.
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url());
      if (u.hostname !== '127.0.0.1' || u.port !== String(relay.port)) return route.abort();
      return route.fallback();
    });
    const page = await context.newPage();
    page.setDefaultTimeout(20000);
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('request', (r) => requests.push({ method: r.method(), url: r.url() }));
    const failed = [];
    page.on('requestfailed', (r) => failed.push(`${r.method()} ${r.url()} ${r.failure() && r.failure().errorText}`));

    t.diagnostic(`relay and browser up in ${Date.now() - started} ms`);
    await page.goto(relay.base + '/', { waitUntil: 'load', timeout: 20000 });
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20000 }).catch((e) => {
      throw new Error(`the page did not get ready: ${e.message}\nproblems: ${JSON.stringify(problems)}\nfailed: ${JSON.stringify(failed)}\nrequests: ${JSON.stringify(requests)}`);
    });

    // 1. Ask in Chinese; the answer streams in typewriter steps and ends equal to the model's.
    await page.fill('#input', ZH);
    await page.click('#send');
    assert.equal(await page.isVisible('#stop'), true, 'the stop button shows while streaming');
    const t0 = Date.now();
    const first = await watch(page, (a) => a.status === 'done' || a.status === 'error', 90000);
    t.diagnostic(`first answer streamed in ${Date.now() - t0} ms, ${first.lengths.length} steps`);
    const zh = await expectedAnswer(relay.base, [{ role: 'user', content: ZH }]);
    assert.equal(first.answer.error, '');
    // The answer shows as Markdown: exactly a one-shot render of the model's text.
    assert.equal(first.answer.text, renderedText(zh.text));
    assert.equal(first.answer.html, blocksHtml(oneShot(zh.text)));
    for (const sel of ['.md-block h2.md-h2', 'pre.md-pre code.md-pre-code .md-kw', 'table.md-table th.md-th', '.md-blockquote', 'ol.md-ol li.md-li']) {
      assert.ok(await page.$(`.msg.assistant ${sel}`), `the answer has ${sel}`);
    }
    assert.ok(await page.$('link[href="/pkg/web/chunkwise-markdown.css"]'));
    assert.equal(await page.$eval('.msg.assistant .md-pre', (e) => getComputedStyle(e).overflowX), 'auto', 'the theme CSS applies');
    assert.equal(first.answer.reasoning, zh.reasoning);
    assert.ok(first.lengths.length >= 10, `the answer appeared in ${first.lengths.length} steps`);
    for (let i = 1; i < first.lengths.length; i++) assert.ok(first.lengths[i] > first.lengths[i - 1], 'it only grows');
    assert.equal(await page.isVisible('#send'), true);
    assert.equal(await page.$eval('.msg.assistant .reasoning', (d) => d.open), false, 'the reasoning folds when the answer starts');

    // 2. Ask again (the history goes along) and stop mid-way.
    await page.fill('#input', EN);
    await page.press('#input', 'Enter');
    const partial = await watch(page, (a) => a.text.length > 40, 30000);
    await page.click('#stop');
    const stopped = await watch(page, (a) => a.status === 'stopped', 5000);
    const en = await expectedAnswer(relay.base, [
      { role: 'user', content: ZH },
      { role: 'assistant', content: zh.text },
      { role: 'user', content: EN },
    ]);
    assert.ok(stopped.answer.text.length >= partial.answer.text.length);
    assert.ok(stopped.answer.text.length < renderedText(en.text).length, 'stopped before the end');
    // What was shown is the start of the answer: the render of one of its prefixes.
    let prefix = -1;
    for (let n = 1; n < en.text.length && prefix < 0; n++) if (renderedText(en.text.slice(0, n)) === stopped.answer.text) prefix = n;
    assert.ok(prefix > 0, `the stopped answer ${JSON.stringify(stopped.answer.text.slice(-40))} renders a prefix of the model's answer`);
    assert.equal(await page.isVisible('#send'), true);
    assert.equal(await page.textContent('.msg.assistant:last-of-type .status'), '已停止');
    const cancel = requests.find((r) => r.method === 'POST' && /\/v1\/chat\/stream\/[^/]+\/cancel$/.test(r.url));
    assert.ok(cancel, 'the page asked the relay to cancel');
    // The relay stopped generating: nothing changes afterwards.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await lastAnswer(page)).text, stopped.answer.text);

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, 'h5-chat.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(fs.statSync(shot).size > 5000);
    t.diagnostic(`screenshot: ${path.relative(ROOT, shot)}`);
    assert.deepEqual(problems, []);
    // The one request that did not complete is the stopped answer's.
    assert.deepEqual(failed, [`POST ${relay.base}/v1/chat/completions net::ERR_ABORTED`]);
    // Every request went to the relay.
    assert.ok(requests.every((r) => r.url.startsWith(relay.base + '/')), JSON.stringify(requests.map((r) => r.url)));
  } finally {
    if (browser) await browser.close().catch(() => {});
    await relay.stop();
  }
});
