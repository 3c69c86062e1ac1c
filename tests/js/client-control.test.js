'use strict';
// Unit tests of the client (js/client/) with a fake wx.request-shaped function: the caller's
// controls: cancel(), abort(), pause() and resume() (onHide / onShow), and stall detection.
const test = require('node:test');
const assert = require('node:assert/strict');
const { streamChat, GEN, BASE, relayEvents, ANSWER, sleep, fakeNet, sendAll, sendFirst, run, joined } = require('./client-harness');

test('cancel(): aborts, POSTs the relay cancel URL, ends as stopped with what arrived', async () => {
  const events = relayEvents({ content: ANSWER });
  let task;
  const net = fakeNet(async (call, n) => {
    if (n === 0) {
      sendFirst(call, events.slice(0, 4));
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
      sendFirst(call, events.slice(0, 3));
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
      sendFirst(call, events.slice(0, 3));
      return; // silent forever
    }
    await sendAll(call, events.filter((e) => e.seq > 3));
  });
  const r = await run({ request: net.request, stallMs: 150 });
  assert.equal(r.view.text, joined);
  assert.equal(net.calls[0].aborted, true);
  assert.equal(net.calls.length, 2);
});
