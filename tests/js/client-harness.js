'use strict';
// The client tests' harness: relay-shaped SSE events, a fake wx.request-shaped function that
// scripts each request, and run(), which drives streamChat (or fetchRequest) to its end.
// The decoder is the real one (pkg/node).
const assert = require('node:assert/strict');
const path = require('node:path');

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

/** Starts the relay's answer (its generation id in the head) and sends `events` whole, leaving it open. */
function sendFirst(call, events) {
  call.headers(200, { 'x-chunkwise-generation': GEN });
  for (const e of events) call.chunk(e.bytes);
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

module.exports = {
  ROOT, StreamDecoder, streamChat, fetchRequest, GEN, BASE, relayEvents, ANSWER, THINK, joined,
  split, toAB, sleep, fakeNet, sendAll, sendFirst, run,
};
