'use strict';
// Unit tests of the client (js/client/: streamChat, fetchRequest) with a fake wx.request-shaped function:
// chunking, status and error bodies, the success-body fallback, resume after a cut, pause and
// resume, cancel, abort, stalls, the update rate. The decoder is the real one (pkg/node).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const ROOT = path.join(__dirname, '..', '..');
// The Node build's client: client.js handed that build's StreamDecoder and error-body reader.
const { StreamDecoder, streamChat, fetchRequest } = require(path.join(ROOT, 'pkg', 'node', 'index.js'));

const GEN = 'chatcmpl-test123';
const BASE = 'http://relay.test/v1/chat/completions';

/** Relay-shaped SSE events (seq from 1): role, reasoning deltas, content deltas, finish, usage, [DONE]. */
function relayEvents({ reasoning = [], content = [], error = null, finish = 'stop', gen = GEN } = {}) {
  const head = `{"id":"${gen}","object":"chat.completion.chunk","created":1,"model":"demo"`;
  const datas = [`${head},"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`];
  for (const r of reasoning) datas.push(`${head},"choices":[{"index":0,"delta":{"reasoning_content":${JSON.stringify(r)}},"finish_reason":null}]}`);
  for (const c of content) datas.push(`${head},"choices":[{"index":0,"delta":{"content":${JSON.stringify(c)}},"finish_reason":null}]}`);
  if (error) datas.push(JSON.stringify({ error }));
  else {
    datas.push(`${head},"choices":[{"index":0,"delta":{},"finish_reason":"${finish}"}]}`);
    datas.push(`${head},"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":${content.length},"total_tokens":${3 + content.length}}}`);
  }
  datas.push('[DONE]');
  return datas.map((d, i) => ({ seq: i + 1, bytes: Buffer.from(`id: ${i + 1}\ndata: ${d}\n\n`, 'utf8') }));
}

const ANSWER = ['你好', '！这是', '一个 ', 'streaming', ' 测试 🚀', '👨‍👩‍👧 ', 'done.'];
const THINK = ['Let me ', 'think… ', '嗯。'];

/** Pieces of 1..max bytes at seeded random positions. */
function split(buf, seed, max) {
  let a = seed >>> 0;
  const rnd = () => {
    a = (a * 1664525 + 1013904223) >>> 0;
    return a / 4294967296;
  };
  const out = [];
  for (let at = 0; at < buf.length; ) {
    const n = Math.min(buf.length - at, 1 + Math.floor(rnd() * max));
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

const toAB = (bytes) => {
  const ab = new ArrayBuffer(bytes.length);
  new Uint8Array(ab).set(bytes);
  return ab;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A fake wx.request. `serve(call)` scripts each request: call.headers(status, header),
 * call.chunk(bytes), call.success(status, data), call.fail(msg). Callbacks are asynchronous.
 */
function fakeNet(serve) {
  const calls = [];
  function request(opts) {
    const call = { opts, headerCbs: [], chunkCbs: [], over: false, aborted: false };
    call.headers = (status, header = {}) => {
      if (!call.over) call.headerCbs.forEach((cb) => cb({ statusCode: status, header }));
    };
    call.chunk = (bytes) => {
      if (!call.over) call.chunkCbs.forEach((cb) => cb({ data: toAB(bytes) }));
    };
    call.success = (status, data = new ArrayBuffer(0), header = {}) => {
      if (call.over) return;
      call.over = true;
      if (opts.success) opts.success({ statusCode: status, data, header, errMsg: 'request:ok' });
    };
    call.fail = (msg) => {
      if (call.over) return;
      call.over = true;
      if (opts.fail) opts.fail({ errMsg: msg });
    };
    const task = {
      abort() {
        if (call.over) return;
        call.aborted = true;
        call.fail('request:fail abort');
      },
      onHeadersReceived: (cb) => call.headerCbs.push(cb),
      onChunkReceived: (cb) => call.chunkCbs.push(cb),
    };
    calls.push(call);
    setTimeout(() => serve(call, calls.length - 1), 1);
    return task;
  }
  return { request, calls };
}

/** Sends events (optionally split) with a small gap, then ends the response. */
async function sendAll(call, events, { seed = 1, max = 17, gapMs = 0, end = true } = {}) {
  call.headers(200, { 'Content-Type': 'text/event-stream', 'X-Chunkwise-Generation': GEN });
  const all = Buffer.concat(events.map((e) => e.bytes));
  for (const piece of split(all, seed, max)) {
    if (call.over) return;
    call.chunk(piece);
    if (gapMs) await sleep(gapMs);
  }
  if (end) call.success(200);
}

/** Runs streamChat to its end; resolves with { view, updates, error, done }. */
function run(options, { timeoutMs = 10000, onTask, impl = streamChat } = {}) {
  return new Promise((resolve, reject) => {
    const updates = [];
    let result = null;
    const timer = setTimeout(() => reject(new Error('streamChat did not end in time; last view: ' + JSON.stringify(updates[updates.length - 1]))), timeoutMs);
    const finish = (r) => {
      assert.equal(result, null, 'exactly one of onDone/onError');
      result = r;
      clearTimeout(timer);
      // Let any stray callback surface before resolving.
      setTimeout(() => resolve(Object.assign(r, { updates })), 30);
    };
    const task = impl(
      Object.assign(
        {
          url: BASE,
          body: { model: 'demo', messages: [{ role: 'user', content: 'hi' }] },
          intervalMs: 10,
          pace: { cps: 5000, maxLagMs: 100, drainMs: 50 },
          onUpdate: (v) => {
            assert.equal(result, null, 'no update after the end');
            updates.push(v);
          },
          onDone: (v) => finish({ view: v, done: true }),
          onError: (e, v) => finish({ view: v, error: e }),
        },
        options
      )
    );
    if (onTask) onTask(task);
  });
}

const joined = ANSWER.join('');

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

test('a non-2xx status becomes one error with the body message (from the chunks)', async () => {
  const body = Buffer.from(JSON.stringify({ error: { message: 'too many requests from 127.0.0.1', type: 'rate_limit_error', code: 'rate_limited' } }));
  const net = fakeNet((call) => {
    call.headers(429, { 'Retry-After': '3', 'content-type': 'application/json' });
    for (const p of split(body, 5, 7)) call.chunk(p);
    call.success(429, new ArrayBuffer(0));
  });
  const r = await run({ request: net.request });
  assert.equal(r.error.status, 429);
  assert.equal(r.error.type, 'rate_limit_error');
  assert.equal(r.error.code, 'rate_limited');
  assert.match(r.error.message, /too many requests from 127\.0\.0\.1/);
  assert.match(r.error.message, /retry after 3 s/);
  assert.equal(r.view.status, 'error');
  assert.equal(r.view.text, '');
  assert.equal(net.calls.length, 1, 'an HTTP error is not resumed');
});

test('a non-2xx status with the body only in success (or nowhere) is still a clear error', async () => {
  // The body as a string in success (no chunk), with a non-ASCII message.
  let net = fakeNet((call) => {
    call.headers(400, {});
    call.success(400, JSON.stringify({ error: { message: '消息太长：最多 8000 字', type: 'invalid_request_error', code: 'message_too_long' } }));
  });
  let r = await run({ request: net.request });
  assert.equal(r.error.message, '消息太长：最多 8000 字');
  assert.equal(r.error.code, 'message_too_long');
  // The reported 4xx/5xx quirk: no chunk, success data ''. No onHeadersReceived either.
  net = fakeNet((call) => call.success(502, ''));
  r = await run({ request: net.request });
  assert.equal(r.error.status, 502);
  assert.equal(r.error.message, 'HTTP 502');
  assert.equal(r.error.type, 'http_error');
  // A body that is not JSON: its text.
  net = fakeNet((call) => {
    call.headers(503, {});
    call.chunk(Buffer.from('upstream is down'));
    call.success(503);
  });
  r = await run({ request: net.request });
  assert.equal(r.error.message, 'upstream is down');
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

test('resumes after a cut with ?after=<last complete event>: nothing lost, nothing repeated', async () => {
  const events = relayEvents({ reasoning: THINK, content: ANSWER });
  for (const cutAt of [3, 6, 9]) {
    const net = fakeNet(async (call, n) => {
      if (n === 0) {
        call.headers(200, { 'x-chunkwise-generation': GEN });
        // events 1..cutAt whole, then half of the next one, then the 60 s cap.
        for (const e of events.slice(0, cutAt)) call.chunk(e.bytes);
        const next = events[cutAt].bytes;
        call.chunk(next.subarray(0, Math.floor(next.length / 2)));
        await sleep(5);
        call.fail('request:fail timeout');
        return;
      }
      const after = Number(new URL(call.opts.url).searchParams.get('after'));
      await sendAll(call, events.filter((e) => e.seq > after), { seed: n });
    });
    const r = await run({ request: net.request, url: BASE + '?chaos=1' });
    assert.equal(r.view.text, joined, `cut after event ${cutAt}`);
    assert.equal(r.view.reasoning, THINK.join(''));
    assert.equal(r.view.resumes, 1);
    assert.equal(net.calls.length, 2);
    const resume = net.calls[1].opts;
    assert.equal(resume.method, 'GET');
    assert.equal(resume.url, `http://relay.test/v1/chat/stream/${GEN}?after=${cutAt}&chaos=1`);
    assert.equal(resume.header['last-event-id'], String(cutAt));
    assert.equal(resume.data, undefined);
    assert.equal(resume.enableChunked, true);
  }
});

test('one decoder per connection gives the text, the resume point and the generation id (no second decoder)', async () => {
  const events = relayEvents({ reasoning: THINK, content: ANSWER });
  const net = fakeNet(async (call, n) => {
    if (n === 0) {
      call.headers(200, {}); // no x-chunkwise-generation: the id comes from the answer's chunks
      for (const e of events.slice(0, 5)) call.chunk(e.bytes);
      call.chunk(events[5].bytes.subarray(0, 30));
      call.fail('request:fail timeout');
      return;
    }
    const after = Number(new URL(call.opts.url).searchParams.get('after'));
    await sendAll(call, events.filter((e) => e.seq > after), { seed: 5, max: 7 });
  });
  // Every decoder that is pushed bytes, by its format.
  const pushed = new Map();
  const push = StreamDecoder.prototype.push;
  StreamDecoder.prototype.push = function (chunk) {
    pushed.set(this, this.format);
    return push.call(this, chunk);
  };
  try {
    const r = await run({ request: net.request });
    assert.equal(r.view.text, joined);
    assert.equal(r.view.reasoning, THINK.join(''));
    assert.equal(r.view.id, GEN);
    assert.equal(net.calls[1].opts.url, `http://relay.test/v1/chat/stream/${GEN}?after=5`);
  } finally {
    StreamDecoder.prototype.push = push;
  }
  assert.deepEqual([...pushed.values()], ['openai', 'openai'], 'one openai decoder per connection, nothing else');
});

test("error bodies of each provider's shape are read by the core: type, message, code", async () => {
  const cases = [
    [529, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, { type: 'overloaded_error', message: 'Overloaded', code: null }],
    [429, [{ error: { code: 429, message: 'Resource has been exhausted', status: 'RESOURCE_EXHAUSTED' } }], { type: 'RESOURCE_EXHAUSTED', message: 'Resource has been exhausted', code: 429 }],
    [400, { code: 'InvalidParameter', message: 'Range of input length should be [1, 6000]', request_id: 'x' }, { type: 'InvalidParameter', message: 'Range of input length should be [1, 6000]', code: 'InvalidParameter' }],
    [404, { error: 'model "llama9" not found, try pulling it first' }, { type: 'http_error', message: 'model "llama9" not found, try pulling it first', code: null }],
    [502, '<html><body>502 Bad Gateway</body></html>', { type: 'http_error', message: '<html><body>502 Bad Gateway</body></html>', code: null }],
  ];
  for (const [status, body, want] of cases) {
    const bytes = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const net = fakeNet((call) => {
      call.headers(status, {});
      for (const p of split(bytes, status, 11)) call.chunk(p);
      call.success(status);
    });
    const r = await run({ request: net.request });
    assert.deepEqual({ type: r.error.type, message: r.error.message, code: r.error.code }, want, JSON.stringify(body));
    assert.equal(r.error.status, status);
  }
});

test('resumes several times, finds the generation id in the chunks when the header is missing', async () => {
  const events = relayEvents({ content: ANSWER });
  const net = fakeNet(async (call, n) => {
    const after = n === 0 ? 0 : Number(new URL(call.opts.url).searchParams.get('after'));
    call.headers(200, {}); // a proxy dropped x-chunkwise-generation
    const rest = events.filter((e) => e.seq > after);
    // Each connection delivers two events and a half, then the connection drops.
    for (const e of rest.slice(0, 2)) call.chunk(e.bytes);
    if (rest.length > 2) {
      call.chunk(rest[2].bytes.subarray(0, 9));
      call.fail('request:fail socket hang up');
    } else call.success(200);
  });
  const r = await run({ request: net.request });
  assert.equal(r.view.text, joined);
  assert.ok(r.view.resumes >= 3);
  assert.ok(net.calls.slice(1).every((c) => c.opts.url.startsWith(`http://relay.test/v1/chat/stream/${GEN}?after=`)));
});

test('a connection closed normally before [DONE] is a cut too', async () => {
  const events = relayEvents({ content: ANSWER });
  const net = fakeNet(async (call, n) => {
    if (n === 0) {
      call.headers(200, { 'x-chunkwise-generation': GEN });
      for (const e of events.slice(0, 4)) call.chunk(e.bytes);
      call.success(200);
      return;
    }
    await sendAll(call, events.slice(4));
  });
  const r = await run({ request: net.request });
  assert.equal(r.view.text, joined);
  assert.equal(net.calls[1].opts.url, `http://relay.test/v1/chat/stream/${GEN}?after=4`);
});

test('gives up after resume.maxAttempts failed resumes, keeping the text', async () => {
  const events = relayEvents({ content: ANSWER });
  const net = fakeNet(async (call, n) => {
    if (n === 0) {
      call.headers(200, { 'x-chunkwise-generation': GEN });
      for (const e of events.slice(0, 3)) call.chunk(e.bytes);
      call.fail('request:fail timeout');
      return;
    }
    call.fail('request:fail connection refused');
  });
  const r = await run({ request: net.request, resume: { maxAttempts: 2, delayMs: 5 } });
  assert.equal(r.error.type, 'network_error');
  assert.match(r.error.message, /2 attempts/);
  assert.equal(r.view.text, ANSWER.slice(0, 2).join(''));
  assert.equal(net.calls.length, 3);
});

test('a resume refused by the relay (expired generation) is a resume_failed error', async () => {
  const events = relayEvents({ content: ANSWER });
  const net = fakeNet(async (call, n) => {
    if (n === 0) {
      call.headers(200, { 'x-chunkwise-generation': GEN });
      for (const e of events.slice(0, 3)) call.chunk(e.bytes);
      call.fail('request:fail timeout');
      return;
    }
    call.headers(404, {});
    call.chunk(Buffer.from('{"error":{"message":"no generation here","type":"invalid_request_error","code":"generation_not_found"}}'));
    call.success(404);
  });
  const r = await run({ request: net.request });
  assert.equal(r.error.type, 'resume_failed');
  assert.equal(r.error.code, 'generation_not_found');
  assert.equal(r.view.text, ANSWER.slice(0, 2).join(''));
});

test('without resume, a cut is an error', async () => {
  const events = relayEvents({ content: ANSWER });
  const net = fakeNet((call) => {
    call.headers(200, { 'x-chunkwise-generation': GEN });
    for (const e of events.slice(0, 3)) call.chunk(e.bytes);
    call.fail('request:fail timeout');
  });
  const r = await run({ request: net.request, resume: false });
  assert.equal(r.error.type, 'network_error');
  assert.equal(r.error.message, 'request:fail timeout');
  assert.equal(net.calls.length, 1);
});

test('a cut stream without event ids (format text) is an error, never a repeat', async () => {
  const net = fakeNet((call) => {
    call.headers(200, { 'x-chunkwise-generation': GEN, 'content-type': 'text/plain' });
    call.chunk(Buffer.from('你好，世界'));
    call.fail('request:fail timeout');
  });
  const r = await run({ request: net.request, format: 'text' });
  assert.equal(r.error.type, 'network_error');
  assert.match(r.error.message, /no event ids/);
  assert.equal(r.view.text, '你好，世界');
  assert.equal(net.calls.length, 1);
});

test('a failure before any response is reported at once (nothing to resume)', async () => {
  const net = fakeNet((call) => call.fail('request:fail url not in domain list'));
  const r = await run({ request: net.request });
  assert.equal(r.error.message, 'request:fail url not in domain list');
  assert.equal(net.calls.length, 1);
});

test('an error event mid-stream ends the answer with that error, text kept', async () => {
  const events = relayEvents({ content: ANSWER.slice(0, 3), error: { message: 'upstream went away', type: 'upstream_error', code: 'upstream_disconnected' } });
  const net = fakeNet((call) => sendAll(call, events));
  const r = await run({ request: net.request });
  assert.equal(r.error.message, 'upstream went away');
  assert.equal(r.error.code, 'upstream_disconnected');
  assert.equal(r.view.text, ANSWER.slice(0, 3).join(''));
  assert.equal(r.view.status, 'error');
});

test('cancel(): aborts, POSTs the relay cancel URL, ends as stopped with what arrived', async () => {
  const events = relayEvents({ content: ANSWER });
  let task;
  const net = fakeNet(async (call, n) => {
    if (n === 0) {
      call.headers(200, { 'x-chunkwise-generation': GEN });
      for (const e of events.slice(0, 4)) call.chunk(e.bytes);
      await sleep(20);
      task.cancel();
      return;
    }
    call.headers(200, {});
    call.success(200, '{"status":"cancelled"}');
  });
  const r = await run({ request: net.request, url: BASE + '?token=abc', headers: { Authorization: 'Bearer t' } }, { onTask: (t) => (task = t) });
  assert.equal(r.done, true);
  assert.equal(r.view.status, 'stopped');
  assert.equal(r.view.text, ANSWER.slice(0, 3).join(''));
  assert.equal(net.calls[0].aborted, true);
  assert.equal(net.calls.length, 2);
  assert.equal(net.calls[1].opts.method, 'POST');
  assert.equal(net.calls[1].opts.url, `http://relay.test/v1/chat/stream/${GEN}/cancel?token=abc`);
  assert.equal(net.calls[1].opts.header.Authorization, 'Bearer t');
  task.cancel(); // idempotent, no callback
});

test('abort(): no callback at all afterwards, no cancel request', async () => {
  const events = relayEvents({ content: ANSWER });
  let task;
  let calls = 0;
  const net = fakeNet(async (call) => {
    call.headers(200, { 'x-chunkwise-generation': GEN });
    call.chunk(events[0].bytes);
    call.chunk(events[1].bytes);
    await sleep(30);
    task.abort();
    call.chunk(events[2].bytes);
  });
  task = streamChat({ request: net.request, url: BASE, body: {}, intervalMs: 10, onUpdate: () => calls++, onDone: () => assert.fail('onDone'), onError: () => assert.fail('onError') });
  await sleep(120);
  const before = calls;
  await sleep(60);
  assert.equal(calls, before);
  assert.equal(net.calls.length, 1);
  assert.equal(net.calls[0].aborted, true);
});

test('pause() then a cut waits for resume() (onHide / onShow)', async () => {
  const events = relayEvents({ content: ANSWER });
  let task;
  let statusWhilePaused = null;
  const net = fakeNet(async (call, n) => {
    if (n === 0) {
      call.headers(200, { 'x-chunkwise-generation': GEN });
      for (const e of events.slice(0, 3)) call.chunk(e.bytes);
      task.pause(); // onHide
      await sleep(10);
      call.fail('request:fail interrupted'); // 5 s in the background
      await sleep(80);
      statusWhilePaused = task.view().status;
      assert.equal(net.calls.length, 1, 'no request while in the background');
      task.resume(); // onShow
      return;
    }
    await sendAll(call, events.filter((e) => e.seq > 3));
  });
  const r = await run({ request: net.request }, { onTask: (t) => (task = t) });
  assert.equal(statusWhilePaused, 'paused');
  assert.equal(r.view.text, joined);
  assert.equal(net.calls[1].opts.url, `http://relay.test/v1/chat/stream/${GEN}?after=3`);
});

test('resume() replaces a connection that went silent; a stall is detected by itself', async () => {
  const events = relayEvents({ content: ANSWER });
  // A connection that stops sending without failing: stallMs finds it.
  const net = fakeNet(async (call, n) => {
    if (n === 0) {
      call.headers(200, { 'x-chunkwise-generation': GEN });
      for (const e of events.slice(0, 3)) call.chunk(e.bytes);
      return; // silent forever
    }
    await sendAll(call, events.filter((e) => e.seq > 3));
  });
  const r = await run({ request: net.request, stallMs: 150 });
  assert.equal(r.view.text, joined);
  assert.equal(net.calls[0].aborted, true);
  assert.equal(net.calls.length, 2);
});

test('skip() shows everything decoded at once', async () => {
  let task;
  const net = fakeNet(async (call) => {
    call.headers(200, { 'x-chunkwise-generation': GEN });
    for (const e of relayEvents({ content: ANSWER }).slice(0, 6)) call.chunk(e.bytes);
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

// ---- view.setData: what crosses setData -----------------------------------------------------

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
