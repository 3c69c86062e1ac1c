// The official `openai` npm client against a running relay: it must stream the demo answer.
//
//   RELAY_URL=http://127.0.0.1:8787 node relay/tests/openai-client.mjs
//
// Starts nothing itself. The client comes from tests/js/node_modules (npm install there).
// Prints `N passed, N failed` and exits non-zero on any failure.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../../tests/js/package.json'));
const OpenAI = require('openai').default ?? require('openai');

const base = (process.env.RELAY_URL || 'http://127.0.0.1:8787').replace(/\/+$/, '');
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: process.env.RELAY_TOKEN || 'no-key-needed', maxRetries: 0, timeout: 120_000 });

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${String(e && e.stack || e).split('\n').join('\n  ')}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// The answer as the relay gives it in one piece (stream: false), to compare the stream with.
let expected;

await check('non-streaming completion returns the demo answer', async () => {
  const r = await client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: '小程序怎么做流式输出？' }] });
  expected = r.choices[0].message;
  assert(r.object === 'chat.completion', `object ${r.object}`);
  assert(expected.content.includes('## 小程序里的流式输出'), `unexpected answer: ${expected.content.slice(0, 80)}`);
  assert(expected.content.includes('| 做法 |') && expected.content.includes('```js'), 'answer lacks the table or the code block');
  assert(r.usage && r.usage.completion_tokens > 0, 'no usage');
});

await check('stream: true streams the same answer, reasoning first, usage and [DONE]', async () => {
  const stream = await client.chat.completions.create({
    model: 'demo',
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: '小程序怎么做流式输出？' }],
  });
  let content = '';
  let reasoning = '';
  let chunks = 0;
  let ids = new Set();
  let finish = null;
  let usage = null;
  let contentBeforeReasoningEnded = false;
  for await (const chunk of stream) {
    chunks++;
    ids.add(chunk.id);
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (choice.delta.reasoning_content) {
      if (content) contentBeforeReasoningEnded = true;
      reasoning += choice.delta.reasoning_content;
    }
    if (choice.delta.content) content += choice.delta.content;
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  assert(content === expected.content, `streamed content differs from the non-streamed answer (${content.length} vs ${expected.content.length} chars)`);
  assert(reasoning === expected.reasoning_content, 'streamed reasoning differs');
  assert(!contentBeforeReasoningEnded, 'reasoning came after content');
  assert(chunks > 100, `only ${chunks} chunks`);
  assert(ids.size === 1 && [...ids][0].startsWith('chatcmpl-'), `chunk ids: ${[...ids].slice(0, 3)}`);
  assert(finish === 'stop', `finish_reason ${finish}`);
  assert(usage && usage.total_tokens > 0, 'no usage chunk');
});

await check('errors arrive as OpenAI APIErrors with status and code', async () => {
  try {
    await client.chat.completions.create({ model: 'demo', messages: [] });
    throw new Error('no error');
  } catch (e) {
    assert(e instanceof OpenAI.APIError, `not an APIError: ${e}`);
    assert(e.status === 400, `status ${e.status}`);
    assert(e.code === 'empty_messages', `code ${e.code}`);
  }
});

await check('aborting the stream leaves the relay serving', async () => {
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model: 'demo', stream: true, messages: [{ role: 'user', content: 'hello' }] },
    { signal: controller.signal },
  );
  let n = 0;
  try {
    for await (const _ of stream) {
      if (++n === 5) controller.abort();
    }
  } catch (e) {
    assert(e.name === 'AbortError' || e.constructor.name === 'APIUserAbortError', `unexpected ${e}`);
  }
  const models = await client.models.list();
  assert(models.data.some((m) => m.id === 'demo'), 'demo model not listed');
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
