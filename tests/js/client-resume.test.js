'use strict';
// Unit tests of the client (js/client/) with a fake wx.request-shaped function: resume after a
// cut with ?after=<last complete event>: nothing lost or repeated, the generation id, giving
// up, refusals, and the cuts that cannot be resumed.
const test = require('node:test');
const assert = require('node:assert/strict');
const { StreamDecoder, GEN, BASE, relayEvents, ANSWER, THINK, sleep, fakeNet, sendAll, sendFirst, run, joined } = require('./client-harness');

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
      sendFirst(call, events.slice(0, 4));
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
      sendFirst(call, events.slice(0, 3));
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
      sendFirst(call, events.slice(0, 3));
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
    sendFirst(call, events.slice(0, 3));
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
