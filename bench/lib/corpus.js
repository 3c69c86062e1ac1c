// The decoder benchmarks' input: bench/corpus/answer-zh.md and answer-en.md as a plain text
// body, and as an OpenAI chat.completion.chunk SSE body (one token-sized delta per event).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const DIR = path.join(__dirname, '..', 'corpus');

/** Both answers; with `maxTextBytes`, each cut at its last line break within that many bytes
 * (the interpreted engines get a shorter body, so a run takes seconds, not minutes). */
function corpora({ maxTextBytes = Infinity } = {}) {
  return ['answer-zh.md', 'answer-en.md'].map((name) => {
    let bytes = fs.readFileSync(path.join(DIR, name));
    if (bytes.length > maxTextBytes) bytes = bytes.subarray(0, bytes.lastIndexOf(10, maxTextBytes) + 1);
    const text = bytes.toString('utf8'); // the oracle: Node's own UTF-8 decoder
    const tokens = tokenize(text);
    const usage = {
      prompt_tokens: 1187,
      completion_tokens: tokens.length,
      total_tokens: 1187 + tokens.length,
      prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    };
    return { name, text, bytes, tokens: tokens.length, sse: Buffer.from(openaiSse(tokens, usage), 'utf8'), usage };
  });
}

/** Token-sized pieces, roughly as a BPE tokenizer cuts: 1-2 CJK characters, a word with its space, a number, punctuation. */
function tokenize(text) {
  const re = /[\u3400-\u9fff\uf900-\ufaff]{1,2}|[\u3000-\u303f\uff00-\uffef]|[ ]?[A-Za-z]+|[ ]?\d{1,3}|\n+|[ \t]+|[\s\S]/gu;
  const tokens = text.match(re);
  if (tokens.join('') !== text) throw new Error('tokenize lost text');
  return tokens;
}

/** An OpenAI chat.completions stream with stream_options.include_usage, as the API writes it. */
function openaiSse(tokens, usage) {
  const head = { id: 'chatcmpl-BbC8sZ1vQp4Xn2LkR7mT0yHdW3eFg', object: 'chat.completion.chunk', created: 1748333421, model: 'gpt-4o-2024-08-06', service_tier: 'default', system_fingerprint: 'fp_07871e2ad8' };
  const event = (choices, extra) => 'data: ' + JSON.stringify(Object.assign({}, head, { choices }, extra)) + '\n\n';
  let out = event([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], { usage: null });
  for (const t of tokens) out += event([{ index: 0, delta: { content: t }, logprobs: null, finish_reason: null }], { usage: null });
  out += event([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], { usage: null });
  out += event([], { usage });
  out += 'data: [DONE]\n\n';
  return out;
}

module.exports = { corpora };
