#!/usr/bin/env node
'use strict';
// The decoder benchmark in V8 (Node), in one process. Its twin for JavaScriptCore, the
// engine of iOS, is bench/decoder-jsc.js.
//
//   ./build.sh bench            (builds pkg/, installs tests/js deps, runs this)
//   node bench/decoder.js       (pkg/ built and tests/js/node_modules installed)
//   BENCH_MS=200 node bench/decoder.js   (a quicker, noisier look; default 500 ms per measurement)
//
// chunkwise is the mini-program build (pkg/miniprogram) loaded as a phone loads it: inside the
// sandbox of tests/js/mp-sandbox.js, which has no TextDecoder, TextEncoder, WebAssembly or
// fetch, through WXWebAssembly.instantiate('/chunkwise.wasm.br'); its loop runs in that realm,
// on ArrayBuffers of that realm (what onChunkReceived gives). Beside it, in the same process:
//   text:   native TextDecoder({stream: true}); the text-encoding polyfill; the
//           fastestsmallesttextencoderdecoder polyfill (loaded where no native TextDecoder
//           exists, so its own code runs; it ignores {stream: true}); the hand-written
//           decoder of bench/lib/handwritten.js (the anchor where no TextDecoder exists); the
//           blog code (String.fromCharCode.apply per chunk).
//   openai: native TextDecoder + eventsource-parser + JSON.parse (the browser pipeline), and
//           the same on text-encoding and on the hand-written decoder.
// Input: bench/lib/corpus.js. Measuring: bench/lib/measure.js (checked output, warm-up,
// interleaved rounds, median). Results: a Markdown report printed and written to
// bench/results/decoder.md.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const vm = require('node:vm');
const zlib = require('node:zlib');
const { createRequire } = require('node:module');

const ROOT = path.join(__dirname, '..');
// CHUNKWISE_PKG: another build's pkg/miniprogram (A/B runs of two builds in the same minutes).
const PKG = process.env.CHUNKWISE_PKG ? path.resolve(process.env.CHUNKWISE_PKG) : path.join(ROOT, 'pkg', 'miniprogram');
const testsRequire = createRequire(path.join(ROOT, 'tests', 'js', 'package.json'));
const { createSandbox } = require(path.join(ROOT, 'tests', 'js', 'mp-sandbox.js'));
const corpus = require('./lib/corpus.js');
const handwritten = require('./lib/handwritten.js');
const { measureAll: measureWith, split, ROUNDS } = require('./lib/measure.js');
const BENCH_MS = Number(process.env.BENCH_MS || 500);
const KB = 1000;

for (const f of ['index.js', 'chunkwise.wasm.br']) {
  if (!fs.existsSync(path.join(PKG, f))) {
    console.error(`bench/decoder.js: pkg/miniprogram/${f} is missing; run ./build.sh first`);
    process.exit(2);
  }
}
let createParser;
let PolyfillTextDecoder;
try {
  ({ createParser } = testsRequire('eventsource-parser'));
  PolyfillTextDecoder = testsRequire('text-encoding').TextDecoder;
  testsRequire.resolve('fastestsmallesttextencoderdecoder/EncoderDecoderTogether.min.js');
} catch (e) {
  console.error('bench/decoder.js: the JS dependencies are missing; run (cd tests/js && npm ci) or ./build.sh bench\n' + e.message);
  process.exit(2);
}

const corpora = corpus.corpora();

// ---- the mini-program build, as a phone loads it ---------------------------------------------

async function loadChunkwise() {
  const sb = createSandbox({ packageRoot: PKG });
  const leaked = sb.leakedGlobals();
  if (leaked.length) throw new Error('the sandbox has ' + leaked.join(', '));
  const cw = sb.require('/index.js');
  await cw.init({ wasmPath: '/chunkwise.wasm.br' });
  // The loops run in the mini-program realm, on ArrayBuffers of that realm.
  const make = sb.run(`(function (cw) {
    return {
      text: function (paced) {
        var options = paced ? { format: 'text' } : { format: 'text', pace: false };
        return function (chunks) {
          var d = new cw.StreamDecoder(options);
          var out = '';
          for (var i = 0; i < chunks.length; i++) out += d.push(chunks[i]).text;
          out += d.finish().text;
          if (paced) d.skip();
          d.free();
          return out;
        };
      },
      openai: function (check) {
        return function (chunks) {
          var d = new cw.StreamDecoder({ format: 'openai', pace: false });
          var out = '';
          var finishReason = null;
          var usage = null;
          var done = false;
          for (var i = 0; i < chunks.length; i++) {
            var u = d.push(chunks[i]);
            out += u.text;
            if (u.finishReason !== null) finishReason = u.finishReason;
            if (u.usage !== null) usage = u.usage;
            done = u.done;
          }
          out += d.finish().text;
          d.free();
          if (check) check(finishReason, JSON.stringify(usage), done);
          return out;
        };
      },
      chunks: function (hostChunks) {
        var out = [];
        for (var i = 0; i < hostChunks.length; i++) {
          var ab = new ArrayBuffer(hostChunks[i].byteLength);
          new Uint8Array(ab).set(new Uint8Array(hostChunks[i]));
          out.push(ab);
        }
        return out;
      },
    };
  })`)(cw);
  return { sb, make };
}

/** fastestsmallesttextencoderdecoder's own code: loaded where there is no native TextDecoder. */
function loadFastest() {
  const ctx = vm.createContext({});
  const file = testsRequire.resolve('fastestsmallesttextencoderdecoder/EncoderDecoderTogether.min.js');
  vm.runInContext(fs.readFileSync(file, 'utf8'), ctx, { filename: file });
  const run = vm.runInContext(`(function (chunks) {
    var td = new TextDecoder();
    var out = '';
    for (var i = 0; i < chunks.length; i++) out += td.decode(chunks[i], { stream: true });
    out += td.decode();
    return out;
  })`, ctx);
  if (typeof ctx.TextDecoder !== 'function' || /\[native code\]/.test(String(ctx.TextDecoder))) throw new Error('fastestsmallesttextencoderdecoder did not install its own TextDecoder');
  return run;
}

// ---- the other pipelines (host realm) ------------------------------------------------------

function textDecoderPipeline(Decoder) {
  return function (chunks) {
    const td = new Decoder();
    let out = '';
    for (let i = 0; i < chunks.length; i++) out += td.decode(chunks[i], { stream: true });
    out += td.decode();
    return out;
  };
}

function blogPipeline(chunks) {
  let out = '';
  for (let i = 0; i < chunks.length; i++) out += String.fromCharCode.apply(null, new Uint8Array(chunks[i]));
  return out;
}

// ---- measuring ------------------------------------------------------------------------------

function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}

function measureAll(pipelines, inputBytes, expected) {
  return measureWith(pipelines, inputBytes, expected, now, BENCH_MS);
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  const started = now();
  // sizes first: the files measured are the ones loaded (a rebuild may replace pkg/ meanwhile)
  const br = fs.readFileSync(path.join(PKG, 'chunkwise.wasm.br'));
  const sizes = [
    { label: 'mini-program wasm, raw (chunkwise.wasm.br decompressed)', bytes: zlib.brotliDecompressSync(br).length, target: 150 * KB },
    { label: 'mini-program wasm, brotli (chunkwise.wasm.br)', bytes: br.length, target: 50 * KB },
    { label: 'mini-program glue (index.js)', bytes: fs.statSync(path.join(PKG, 'index.js')).size, target: 20 * KB },
  ];
  const { make } = await loadChunkwise();
  const fastest = loadFastest();
  const results = []; // { kind, corpus, chunk, pipeline, status, mbps }

  const TEXT_SIZES = [16, 1024, 65536];
  const SSE_SIZES = [200, 1400];
  const textPipelines = [
    { id: 'chunkwise', name: 'chunkwise (mini-program build, in the sandbox)', fn: make.text(false), realm: 'sandbox' },
    { id: 'chunkwise-paced', name: 'chunkwise, typewriter on (default pace; info)', fn: make.text(true), realm: 'sandbox' },
    { id: 'native', name: 'native TextDecoder({stream: true})', fn: textDecoderPipeline(TextDecoder) },
    { id: 'text-encoding', name: 'text-encoding polyfill', fn: textDecoderPipeline(PolyfillTextDecoder) },
    { id: 'fastest', name: 'fastestsmallesttextencoderdecoder', fn: fastest },
    { id: 'handwritten', name: 'hand-written JS decoder (bench/lib/handwritten.js)', fn: handwritten.text(handwritten.TextDecoder) },
    { id: 'blog', name: 'blog code: String.fromCharCode.apply per chunk', fn: blogPipeline },
  ];
  const openaiChecks = [];
  const openaiPipelines = (corpus) => [
    {
      id: 'chunkwise',
      name: 'chunkwise openai (mini-program build, in the sandbox)',
      fn: make.openai((finishReason, usage, done) => openaiChecks.push({ corpus: corpus.name, ok: finishReason === 'stop' && usage === JSON.stringify(corpus.usage) && done === true })),
      realm: 'sandbox',
    },
    { id: 'native', name: 'native TextDecoder + eventsource-parser + JSON.parse', fn: handwritten.openai(TextDecoder, createParser) },
    { id: 'handwritten', name: 'hand-written decoder + eventsource-parser + JSON.parse', fn: handwritten.openai(handwritten.TextDecoder, createParser) },
    { id: 'text-encoding', name: 'text-encoding + eventsource-parser + JSON.parse', fn: handwritten.openai(PolyfillTextDecoder, createParser) },
  ];

  for (const corpus of corpora) {
    for (const size of TEXT_SIZES) {
      const host = split(corpus.bytes, size);
      const sandboxed = make.chunks(host);
      const rs = measureAll(textPipelines.map((p) => ({ fn: p.fn, chunks: p.realm === 'sandbox' ? sandboxed : host })), corpus.bytes.length, corpus.text);
      textPipelines.forEach((p, k) => {
        results.push(Object.assign({ kind: 'text', corpus: corpus.name, chunk: size, pipeline: p.id, name: p.name }, rs[k]));
        process.stderr.write(`text   ${corpus.name} ${String(size).padStart(5)} B  ${p.name.padEnd(50)} ${fmt(rs[k])}\n`);
      });
    }
    for (const size of SSE_SIZES) {
      const host = split(corpus.sse, size);
      const sandboxed = make.chunks(host);
      const pipes = openaiPipelines(corpus);
      const rs = measureAll(pipes.map((p) => ({ fn: p.fn, chunks: p.realm === 'sandbox' ? sandboxed : host })), corpus.sse.length, corpus.text);
      pipes.forEach((p, k) => {
        results.push(Object.assign({ kind: 'openai', corpus: corpus.name, chunk: size, pipeline: p.id, name: p.name }, rs[k]));
        process.stderr.write(`openai ${corpus.name} ${String(size).padStart(5)} B  ${p.name.padEnd(50)} ${fmt(rs[k])}\n`);
      });
    }
  }
  if (openaiChecks.length === 0 || !openaiChecks.every((c) => c.ok)) {
    results.push({ kind: 'check', status: 'wrong', name: 'chunkwise openai finishReason/usage/done' });
  }

  // ---- ratios against the targets
  const get = (kind, corpus, chunk, pipeline) => results.find((r) => r.kind === kind && r.corpus === corpus && r.chunk === chunk && r.pipeline === pipeline);
  const ratios = [];
  const ratio = (label, kind, corpus, chunk, over, target) => {
    const a = get(kind, corpus, chunk, 'chunkwise');
    const b = get(kind, corpus, chunk, over);
    const value = a && b && a.status === 'ok' && b.status === 'ok' ? a.mbps / b.mbps : NaN;
    ratios.push({ label, corpus, chunk, value, target, pass: value >= target });
  };
  // Native TextDecoder is not on the phone: the text targets are against the hand-written
  // decoder, the best JS alternative in the phone's own engine.
  for (const corpus of corpora) {
    ratio('text: chunkwise / hand-written decoder', 'text', corpus.name, 1024, 'handwritten', 1.5);
    ratio('text: chunkwise / hand-written decoder', 'text', corpus.name, 65536, 'handwritten', 1.5);
    for (const size of TEXT_SIZES) ratio('text: chunkwise / text-encoding', 'text', corpus.name, size, 'text-encoding', 20);
    for (const size of SSE_SIZES) ratio('openai: chunkwise / native + eventsource-parser', 'openai', corpus.name, size, 'native', 1.0);
    for (const size of SSE_SIZES) ratio('openai: chunkwise / text-encoding + eventsource-parser', 'openai', corpus.name, size, 'text-encoding', 10);
  }


  const report = render({ results, ratios, sizes, seconds: (now() - started) / 1000 });
  console.log(report);
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'decoder.md'), report);
  const failed = ratios.filter((r) => !r.pass).length + sizes.filter((s) => s.bytes > s.target).length;
  const wrong = results.filter((r) => ['chunkwise', 'chunkwise-paced', 'native', 'text-encoding', 'handwritten'].includes(r.pipeline) && r.status !== 'ok');
  if (wrong.length) {
    console.error('WRONG OUTPUT: ' + wrong.map((r) => `${r.kind} ${r.corpus} ${r.chunk} ${r.name}: ${r.status}`).join('; '));
    process.exitCode = 1;
  }
  console.error(`bench/decoder.js: ${ratios.length + sizes.length - failed} of ${ratios.length + sizes.length} targets met; report in bench/results/decoder.md`);
}

function fmt(r) {
  if (r.status === 'throws') return 'throws: ' + r.error;
  return r.mbps.toFixed(1).padStart(8) + ' MB/s' + (r.status === 'ok' ? '' : '  (' + r.status + ')');
}

function cell(r) {
  if (!r) return '—';
  if (r.status === 'throws') return 'throws';
  if (r.status === 'wrong') return 'WRONG';
  const v = r.mbps >= 100 ? r.mbps.toFixed(0) : r.mbps.toFixed(1);
  return r.status === 'ok' ? v : `${v} (garbles)`;
}

function sizeLabel(n) {
  return n >= 1024 && n % 1024 === 0 ? n / 1024 + ' KiB' : n + ' B';
}

function render({ results, ratios, sizes, seconds }) {
  const lines = [];
  const cpu = os.cpus()[0];
  lines.push('# chunkwise decoder benchmark');
  lines.push('');
  lines.push(`Node ${process.version} (V8 ${process.versions.v8}), ${cpu ? cpu.model : 'unknown CPU'} × ${os.cpus().length}, ${new Date().toISOString()}; ${BENCH_MS} ms per measurement in ${ROUNDS} interleaved rounds, median round; ${seconds.toFixed(0)} s in all.`);
  lines.push('chunkwise = pkg/miniprogram in the mini-program sandbox (no TextDecoder/TextEncoder/WebAssembly/fetch; WXWebAssembly by path), `pace: false` unless noted.');
  lines.push('MB/s of input bytes (1 MB = 10^6 B). "garbles": the output differs from the text (kept to show the speed of wrong answers).');
  for (const kind of ['text', 'openai']) {
    for (const corpus of corpora) {
      const rows = results.filter((r) => r.kind === kind && r.corpus === corpus.name);
      const chunks = [...new Set(rows.map((r) => r.chunk))];
      const names = [...new Set(rows.map((r) => r.name))];
      lines.push('');
      lines.push(kind === 'text'
        ? `## text: ${corpus.name} (${corpus.bytes.length} bytes) as a plain body`
        : `## openai: ${corpus.name} as an OpenAI SSE body (${corpus.sse.length} bytes, ${corpus.tokens} content deltas)`);
      lines.push('');
      lines.push('| pipeline | ' + chunks.map((c) => sizeLabel(c) + ' chunks').join(' | ') + ' |');
      lines.push('| --- | ' + chunks.map(() => '---:').join(' | ') + ' |');
      for (const name of names) lines.push(`| ${name} | ` + chunks.map((c) => cell(rows.find((r) => r.name === name && r.chunk === c))).join(' | ') + ' |');
    }
  }
  const check = results.find((r) => r.kind === 'check');
  if (check) lines.push('', `**chunkwise openai: finishReason / usage / done were WRONG**`);
  lines.push('');
  lines.push('## Ratios against the targets');
  lines.push('');
  lines.push('| ratio | corpus | chunks | measured | target | |');
  lines.push('| --- | --- | ---: | ---: | ---: | --- |');
  for (const r of ratios) {
    lines.push(`| ${r.label} | ${r.corpus} | ${sizeLabel(r.chunk)} | ${Number.isNaN(r.value) ? 'n/a' : r.value.toFixed(2) + '×'} | ≥ ${r.target}× | ${r.pass ? 'PASS' : 'FAIL'} |`);
  }
  lines.push('');
  lines.push('## Size');
  lines.push('');
  lines.push('| file | bytes | KB | target | |');
  lines.push('| --- | ---: | ---: | ---: | --- |');
  for (const s of sizes) lines.push(`| ${s.label} | ${s.bytes} | ${(s.bytes / KB).toFixed(1)} | ≤ ${s.target / KB} KB | ${s.bytes <= s.target ? 'PASS' : 'FAIL'} |`);
  lines.push('');
  return lines.join('\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
