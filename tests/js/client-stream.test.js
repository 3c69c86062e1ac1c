'use strict';
// Unit tests of the client (js/client/) with a fake wx.request-shaped function: streaming an
// answer through streamChat and fetchRequest: the device globals client.js may use, random
// splits, the request's shape, batched updates, the success-body fallback, skip(), option
// checks.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { ROOT, StreamDecoder, streamChat, fetchRequest, GEN, BASE, relayEvents, ANSWER, THINK, split, toAB, sleep, fakeNet, sendAll, sendFirst, run, joined } = require('./client-harness');

test('the mini-program client.js names none of the globals a device lacks and runs with only ECMAScript and timers', () => {
  const src = fs.readFileSync(path.join(ROOT, 'pkg', 'miniprogram', 'client.js'), 'utf8');
  const hit = src.match(/\b(TextDecoder|TextEncoder|WebAssembly|fetch|window|document|import\.meta|queueMicrotask|setImmediate)\b/);
  assert.equal(hit, null, hit && `client.js mentions ${hit[0]}`);
  assert.doesNotMatch(src, /\brequire\(/, 'client.js requires nothing: it is handed the decoder');
  // It runs in a realm that has only the ECMAScript built-ins and timers.
  const ctx = vm.createContext({ setInterval, clearInterval, setTimeout, clearTimeout, module: { exports: {} } });
  vm.runInContext(src, ctx);
  const client = ctx.module.exports.default(StreamDecoder, () => null);
  assert.equal(typeof client.streamChat, 'function');
  assert.equal(typeof client.fetchRequest, 'function');
});

test('streams an answer split at random byte positions, paced and unpaced', async () => {
  for (const pace of [undefined, false]) {
    for (const seed of [1, 2, 3]) {
      const net = fakeNet((call) => sendAll(call, relayEvents({ reasoning: THINK, content: ANSWER }), { seed, max: 1 + seed * 5 }));
      const opts = { request: net.request };
      if (pace === false) opts.pace = false;
      const r = await run(opts);
      assert.equal(r.done, true);
      assert.equal(r.view.text, joined);
      assert.equal(r.view.reasoning, THINK.join(''));
      assert.equal(r.view.finishReason, 'stop');
      assert.deepEqual(r.view.usage, { prompt_tokens: 3, completion_tokens: ANSWER.length, total_tokens: 3 + ANSWER.length });
      assert.equal(r.view.status, 'done');
      assert.equal(r.view.done, true);
      assert.equal(r.view.id, GEN);
      assert.equal(r.view.error, null);
      // The deltas add up to the text: a page can append them.
      assert.equal(r.updates.map((u) => u.delta).join(''), joined);
      assert.equal(r.updates.map((u) => u.reasoningDelta).join(''), THINK.join(''));
      assert.equal(r.updates.filter((u) => u.done).length, 1);
      assert.equal(net.calls.length, 1);
    }
  }
});

test('the request is chunked, binary, not JSON-parsed, and asks for a stream', async () => {
  const net = fakeNet((call) => sendAll(call, relayEvents({ content: ['a'] })));
  await run({ request: net.request, headers: { Authorization: 'Bearer t' }, timeout: 30000 });
  const o = net.calls[0].opts;
  assert.equal(o.url, BASE);
  assert.equal(o.method, 'POST');
  assert.equal(o.enableChunked, true);
  assert.equal(o.responseType, 'arraybuffer');
  assert.notEqual(o.dataType, 'json');
  assert.equal(o.timeout, 30000);
  assert.equal(o.header.Authorization, 'Bearer t');
  assert.equal(o.header['content-type'], 'application/json');
  const body = JSON.parse(o.data);
  assert.equal(body.stream, true);
  assert.equal(body.model, 'demo');
});

test('updates are batched: at most one per interval', async () => {
  const events = relayEvents({ content: Array.from({ length: 120 }, (_, i) => `w${i} `) });
  const net = fakeNet((call) => sendAll(call, events, { max: 40, gapMs: 1 }));
  const started = Date.now();
  const r = await run({ request: net.request, intervalMs: 50, pace: { cps: 400, maxLagMs: 300, drainMs: 100 } });
  const elapsed = Date.now() - started;
  assert.equal(r.view.text, Array.from({ length: 120 }, (_, i) => `w${i} `).join(''));
  assert.ok(r.updates.length <= Math.ceil(elapsed / 50) + 2, `${r.updates.length} updates in ${elapsed} ms`);
  assert.ok(r.updates.length >= 3, 'the typewriter shows the answer in steps');
});

test('falls back to the success body when no chunk ever arrives (PC WeChat)', async () => {
  const all = Buffer.concat(relayEvents({ reasoning: THINK, content: ANSWER }).map((e) => e.bytes));
  for (const data of [toAB(all), all.toString('utf8')]) {
    const net = fakeNet((call) => {
      call.headers(200, {});
      call.success(200, data);
    });
    const r = await run({ request: net.request });
    assert.equal(r.view.text, joined);
    assert.equal(r.view.reasoning, THINK.join(''));
    assert.equal(r.view.status, 'done');
  }
});

test('skip() shows everything decoded at once', async () => {
  let task;
  const net = fakeNet(async (call) => {
    sendFirst(call, relayEvents({ content: ANSWER }).slice(0, 6));
    await sleep(20);
    task.skip();
    const v = task.view();
    assert.equal(v.text, ANSWER.slice(0, 5).join(''));
    task.cancel();
  });
  const r = await run({ request: net.request, pace: { cps: 1, maxLagMs: 100000, drainMs: 100000 } }, { onTask: (t) => (task = t) });
  assert.equal(r.view.status, 'stopped');
});

test('options are checked', () => {
  assert.throws(() => streamChat(), /options object/);
  assert.throws(() => streamChat({ url: BASE }), /options\.request/);
  assert.throws(() => streamChat({ request() {} }), /options\.url/);
  assert.throws(() => streamChat({ request() {}, url: BASE, intervalMs: -1 }), /intervalMs/);
});

test('fetchRequest: streamChat over the Fetch API and a ReadableStream body', async () => {
  const events = relayEvents({ reasoning: THINK, content: ANSWER });
  const seen = [];
  function fakeFetch(url, init) {
    seen.push({ url, init });
    if (url.includes('/cancel')) return Promise.resolve(new Response('{}', { status: 200 }));
    if (init.method === 'POST' && JSON.parse(init.body).model === 'bad') {
      return Promise.resolve(new Response('{"error":{"message":"model \\"bad\\" is not available","type":"invalid_request_error","code":"model_not_allowed"}}', { status: 400 }));
    }
    const after = url.includes('after=') ? Number(new URL(url).searchParams.get('after')) : 0;
    const pieces = split(Buffer.concat(events.filter((e) => e.seq > after).map((e) => e.bytes)), 9, 23);
    const cut = seen.filter((x) => !x.url.includes('/cancel')).length === 1 ? 12 : Infinity; // the first response is cut
    let i = 0;
    const body = new ReadableStream({
      pull(controller) {
        if (i === cut) controller.error(new TypeError('network error'));
        else if (i >= pieces.length) controller.close();
        else controller.enqueue(new Uint8Array(pieces[i++]));
      },
    });
    return Promise.resolve(new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream', 'x-chunkwise-generation': GEN } }));
  }
  const request = fetchRequest(fakeFetch);
  const r = await run({ request });
  assert.equal(r.view.text, joined);
  assert.equal(r.view.reasoning, THINK.join(''));
  assert.equal(r.view.resumes, 1);
  assert.equal(seen[0].init.method, 'POST');
  assert.match(seen[1].url, new RegExp(`/v1/chat/stream/${GEN}\\?after=\\d+$`));
  assert.equal(seen[1].init.body, undefined);
  const bad = await run({ request, body: { model: 'bad', messages: [] } });
  assert.equal(bad.error.status, 400);
  assert.equal(bad.error.message, 'model "bad" is not available');
});
