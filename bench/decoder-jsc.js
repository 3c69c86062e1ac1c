#!/usr/bin/env node
'use strict';
// The decoder benchmark in JavaScriptCore, the engine of every iPhone: WeChat runs the mini
// program in it without JIT (JS and wasm interpreted; native builtins such as JSON.parse
// and String.fromCharCode.apply still compiled), iOS browsers with JIT.
//
//   ./build.sh bench                 (after bench/decoder.js, the V8 twin)
//   node bench/decoder-jsc.js        (pkg/ built, tests/js/node_modules installed, jsc on PATH)
//   BENCH_MS=100 node bench/decoder-jsc.js   (quicker, noisier; default 300 ms per measurement)
//
// pkg/miniprogram runs as a phone loads it (tests/jsc/run.js: WXWebAssembly by package path,
// no TextDecoder/TextEncoder/WebAssembly/fetch). Beside it in the same realm: the
// hand-written JS pipeline of bench/lib/handwritten.js (the anchor: the best a page can do
// without the module) and the text-encoding polyfill. Input: bench/lib/corpus.js; the SSE
// bodies made from the first 4 KB of each answer (so that an interpreted run of the slowest
// pipeline takes seconds, not minutes).
// Measured: jsc --useJIT=false and with JIT, warmed up (bench/lib/measure.js); with JIT,
// also the first 64 KB decoded in a fresh realm (one process per measurement, median of
// FRESH_RUNS, default 9); init() (module load to ready) without JIT (the target) and with JIT.
// Report: bench/results/decoder-jsc.md.
const fs = require('node:fs');
const path = require('node:path');
const { bundle, runJsc, passed } = require('../tests/jsc/run.js');
const { corpora } = require('./lib/corpus.js');

const ROOT = path.join(__dirname, '..');
const DATA = path.join(ROOT, 'target', 'jsc', 'bench');
const BENCH_MS = Number(process.env.BENCH_MS || 300);
const FRESH_RUNS = Number(process.env.FRESH_RUNS || 9);
const MODULES = { measure: path.join(__dirname, 'lib', 'measure.js'), handwritten: path.join(__dirname, 'lib', 'handwritten.js') };
const NAMES = {
  chunkwise: 'chunkwise (pkg/miniprogram)',
  'chunkwise-paced': 'chunkwise, typewriter on (default pace, a tick per chunk)',
  handwritten: 'hand-written JS (decoder; + eventsource-parser + JSON.parse for openai)',
  'text-encoding': 'text-encoding polyfill (+ eventsource-parser + JSON.parse for openai)',
};

function run(file, jit, args) {
  const r = runJsc(file, { jit, args });
  if (r.status !== 0 || !passed(r.stdout)) throw new Error(`jsc ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)));
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function main() {
  const started = Date.now();
  fs.mkdirSync(DATA, { recursive: true });
  // The text bodies whole; the SSE bodies (a hundred times longer) from the first 4 KB of text.
  const bodies = corpora();
  corpora({ maxTextBytes: 4096 }).forEach((cut, i) => {
    bodies[i].sse = cut.sse;
    fs.writeFileSync(path.join(DATA, cut.name + '.txt'), bodies[i].bytes);
    fs.writeFileSync(path.join(DATA, cut.name + '.sse'), cut.sse);
    fs.writeFileSync(path.join(DATA, cut.name + '.sse.txt'), cut.bytes);
  });
  // The fresh-realm bodies: the whole zh answer's SSE body, and its text repeated past 64 KB.
  const zh = corpora()[0];
  fs.writeFileSync(path.join(DATA, 'fresh.sse'), zh.sse);
  fs.writeFileSync(path.join(DATA, 'fresh.txt'), Buffer.concat([zh.bytes, zh.bytes, zh.bytes]));
  const file = bundle(path.join(__dirname, 'jsc', 'decoder.js'), MODULES);
  const steady = {};
  for (const jit of [false, true]) {
    process.stderr.write(`jsc ${jit ? 'with' : 'without'} JIT: steady state ...\n`);
    steady[jit] = run(file, jit, ['steady', DATA, String(BENCH_MS)]);
  }
  process.stderr.write('jsc with JIT: the first 64 KB in fresh realms ...\n');
  const fresh = [];
  for (const [kind, size] of [['openai', 200], ['text', 1024]]) {
    for (const id of ['chunkwise', 'handwritten']) {
      const runs = [];
      for (let i = 0; i < FRESH_RUNS; i++) runs.push(run(file, true, ['fresh', DATA, '0', id, kind, String(size)])[0]);
      fresh.push({ kind, chunk: size, pipeline: id, mbps: median(runs.map((r) => r.mbps)), head: runs[0].head, chars: runs[0].chars });
    }
  }
  process.stderr.write('jsc without and with JIT: init() ...\n');
  const inits = { false: [], true: [] };
  for (let i = 0; i < FRESH_RUNS; i++) for (const jit of [false, true]) inits[jit].push(run(file, jit, ['init', DATA])[0].initMs);
  const report = render({ bodies, steady, fresh, initMs: median(inits.false), initJitMs: median(inits.true), seconds: (Date.now() - started) / 1000 });
  console.log(report.text);
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'decoder-jsc.md'), report.text);
  if (report.wrong.length) {
    console.error('WRONG OUTPUT: ' + report.wrong.join('; '));
    process.exitCode = 1;
  }
  console.error(`bench/decoder-jsc.js: ${report.met} of ${report.targets} targets met; report in bench/results/decoder-jsc.md`);
}

function sizeLabel(n) {
  return n >= 1024 && n % 1024 === 0 ? n / 1024 + ' KiB' : n + ' B';
}

function cell(r) {
  if (!r) return '—';
  if (r.status === 'throws') return 'throws';
  const v = r.mbps >= 100 ? r.mbps.toFixed(0) : r.mbps.toFixed(1);
  return r.status === 'ok' ? v : `${v} (garbles)`;
}

function render({ bodies, steady, fresh, initMs, initJitMs, seconds }) {
  const lines = [];
  const ratios = [];
  const wrong = [];
  const get = (jit, kind, corpus, chunk, pipeline) => steady[jit].find((r) => r.kind === kind && r.corpus === corpus && r.chunk === chunk && r.pipeline === pipeline);
  const ratio = (label, jit, kind, corpus, chunk, a, b, target) => {
    const x = get(jit, kind, corpus, chunk, a);
    const y = get(jit, kind, corpus, chunk, b);
    const value = x && y && x.status === 'ok' && y.status === 'ok' ? x.mbps / y.mbps : NaN;
    ratios.push({ label, corpus, chunk, value, target, pass: value >= target });
  };
  const version = (() => {
    try {
      return require('node:child_process').execSync("dpkg-query -W -f='${Version}' libjavascriptcoregtk-4.0-bin", { encoding: 'utf8' });
    } catch (e) {
      return 'unknown version';
    }
  })();
  lines.push('# chunkwise decoder benchmark in JavaScriptCore');
  lines.push('');
  lines.push(`jsc of libjavascriptcoregtk-4.0-bin ${version}, ${new Date().toISOString()}; ${BENCH_MS} ms per measurement in interleaved rounds, median round; ${seconds.toFixed(0)} s in all.`);
  lines.push('Text bodies whole; SSE bodies from the first 4 KB of each answer. MB/s of input bytes (1 MB = 10^6 B).');
  for (const jit of [false, true]) {
    for (const kind of ['text', 'openai']) {
      for (const c of bodies) {
        const rows = steady[jit].filter((r) => r.kind === kind && r.corpus === c.name);
        const chunks = [...new Set(rows.map((r) => r.chunk))];
        lines.push('');
        lines.push(`## JSC ${jit ? 'with JIT (iOS browsers)' : 'without JIT (iOS WeChat)'}: ${kind} ${c.name} (${kind === 'text' ? c.bytes.length : c.sse.length} bytes)`);
        lines.push('');
        lines.push('| pipeline | ' + chunks.map((n) => sizeLabel(n) + ' chunks').join(' | ') + ' |');
        lines.push('| --- | ' + chunks.map(() => '---:').join(' | ') + ' |');
        for (const id of Object.keys(NAMES)) lines.push(`| ${NAMES[id]} | ` + chunks.map((n) => cell(rows.find((r) => r.pipeline === id && r.chunk === n))).join(' | ') + ' |');
        for (const r of rows) if (r.pipeline !== 'text-encoding' && r.status !== 'ok') wrong.push(`${jit ? 'JIT' : 'no JIT'} ${kind} ${c.name} ${r.chunk} ${r.pipeline}: ${r.status}`);
      }
    }
  }
  for (const c of bodies) {
    const n = c.name;
    ratio('no JIT: openai, chunkwise / hand-written', false, 'openai', n, 200, 'chunkwise', 'handwritten', 1.5);
    ratio('no JIT: openai, chunkwise / hand-written', false, 'openai', n, 1400, 'chunkwise', 'handwritten', 1.5);
    ratio('no JIT: text, chunkwise / hand-written', false, 'text', n, 16, 'chunkwise', 'handwritten', 1.0);
    ratio('no JIT: text, chunkwise / hand-written', false, 'text', n, 1024, 'chunkwise', 'handwritten', 1.5);
    ratio('no JIT: text, chunkwise / hand-written', false, 'text', n, 65536, 'chunkwise', 'handwritten', 1.5);
    for (const [kind, size] of [['openai', 200], ['openai', 1400], ['text', 1024], ['text', 65536]]) {
      ratio(`no JIT: ${kind}, typewriter on / off (cost ≤ 25%)`, false, kind, n, size, 'chunkwise-paced', 'chunkwise', 0.75);
    }
    for (const [kind, size] of [['text', 16], ['text', 1024], ['text', 65536], ['openai', 200], ['openai', 1400]]) {
      ratio(`JIT: ${kind}, chunkwise / hand-written`, true, kind, n, size, 'chunkwise', 'handwritten', 1.0);
    }
  }
  lines.push('');
  lines.push('## JSC with JIT: the first 64 KB a fresh realm decodes (answer-zh.md; one process per run, median)');
  lines.push('');
  lines.push('| body | chunks | chunkwise | hand-written |');
  lines.push('| --- | ---: | ---: | ---: |');
  for (const [kind, size] of [['openai', 200], ['text', 1024]]) {
    const a = fresh.find((r) => r.kind === kind && r.chunk === size && r.pipeline === 'chunkwise');
    const b = fresh.find((r) => r.kind === kind && r.chunk === size && r.pipeline === 'handwritten');
    lines.push(`| ${kind} | ${sizeLabel(size)} | ${a.mbps.toFixed(1)} | ${b.mbps.toFixed(1)} |`);
    if (a.head !== b.head || a.chars !== b.chars) wrong.push(`fresh ${kind} ${size}: chunkwise and hand-written disagree`);
    ratios.push({ label: `JIT, fresh realm, first 64 KB: ${kind}, chunkwise / hand-written`, corpus: 'answer-zh.md', chunk: size, value: a.mbps / b.mbps, target: 1.0, pass: a.mbps / b.mbps >= 1.0 });
  }
  lines.push('');
  lines.push('## Targets');
  lines.push('');
  lines.push('| ratio | corpus | chunks | measured | target | |');
  lines.push('| --- | --- | ---: | ---: | ---: | --- |');
  for (const r of ratios) {
    lines.push(`| ${r.label} | ${r.corpus} | ${sizeLabel(r.chunk)} | ${Number.isNaN(r.value) ? 'n/a' : r.value.toFixed(2) + '×'} | ≥ ${r.target}× | ${r.pass ? 'PASS' : 'FAIL'} |`);
  }
  const initPass = initMs <= 20;
  lines.push(`| init(), module load to ready, no JIT (median of ${FRESH_RUNS} fresh realms) | | | ${initMs.toFixed(1)} ms | ≤ 20 ms | ${initPass ? 'PASS' : 'FAIL'} |`);
  // With a JIT, init() also runs the decoding paths once so that they are compiled before the first answer.
  lines.push(`| init() with JIT, for comparison (median of ${FRESH_RUNS}) | | | ${initJitMs.toFixed(1)} ms | | |`);
  lines.push('');
  const met = ratios.filter((r) => r.pass).length + (initPass ? 1 : 0);
  return { text: lines.join('\n'), wrong, met, targets: ratios.length + 1 };
}

try {
  main();
} catch (e) {
  console.error(e);
  process.exit(1);
}
