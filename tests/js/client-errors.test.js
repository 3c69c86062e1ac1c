'use strict';
// Unit tests of the client (js/client/) with a fake wx.request-shaped function: errors: non-2xx
// statuses with their bodies, each provider's error body read by the core, a failure before any
// response, an error event mid-stream.
const test = require('node:test');
const assert = require('node:assert/strict');
const { relayEvents, ANSWER, split, fakeNet, sendAll, run } = require('./client-harness');

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
