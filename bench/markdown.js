#!/usr/bin/env node
'use strict';
// The Markdown renderer benchmark: what a streamed answer costs per append, in V8 and in
// JavaScriptCore (the engine of WeChat's logic layer on iOS, which runs without JIT).
//
//   node bench/markdown.js            (pkg/ built, tests/js/node_modules installed; ./build.sh bench)
//   BENCH_ROUNDS=3 node bench/markdown.js   (runs of each measurement; default 5 in V8, 3 in JSC)
//   BENCH_JSC=0 node bench/markdown.js      (skip JavaScriptCore)
//
// Input: bench/corpus/answer-zh.md (23.5 KB: prose, lists, a table, a 120-line code block)
// and answer-en.md, appended 2 UTF-16 code units at a time (a typewriter at 40 characters a
// second, 20 ticks a second), then finish(). Each append is followed by dataFor(), the setData
// object a page builds. bench/markdown-measure.js measures, the same code in every engine:
//   total against one-shot (append of the whole text + finish + dataFor): target ≤ 5×;
//   per append p50, p99 (target ≤ 1 ms) and max (target ≤ 8 ms: half a frame) in JSC
//   without JIT; setData bytes (every dataFor object's JSON) against the final blocks' JSON.
// Each measurement streams the answer several times: total and percentiles are the run of
// median total's; beside them the sum and percentiles of each append's fastest time over the
// runs (the sum against the fastest one-shot render), which leave out what the other
// processes of a shared machine add to a single run (on 2 busy cores a run's slowest 1% of
// appends are mostly its moments without the CPU, and a median run's total grows with the
// load while the one-shot anchor, one call, mostly escapes it).
// chunkwise is the mini-program build (pkg/miniprogram/markdown.js) loaded as a phone loads
// it: in V8 inside tests/js/mp-sandbox.js, in JSC through tests/jsc/run.js (no WebAssembly
// global, WXWebAssembly by package path). Beside it, in V8: the common approach (towxml,
// mp-html) of re-rendering the whole text with markdown-it on every append and sending all of
// it (bytes counted as the HTML: a lower bound of the node JSON those libraries send), and
// chunkwise's 'blocks' patch mode (a changed block re-sent whole).
// Results: a Markdown report printed and written to bench/results/markdown.md.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createRequire } = require('node:module');
const { measureMarkdown } = require('./markdown-measure.js');

const ROOT = path.join(__dirname, '..');
const PKG = path.join(ROOT, 'pkg', 'miniprogram');
const testsRequire = createRequire(path.join(ROOT, 'tests', 'js', 'package.json'));
const { createSandbox } = require(path.join(ROOT, 'tests', 'js', 'mp-sandbox.js'));
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS || 5));
const JSC_RUNS = Math.max(1, Number(process.env.BENCH_ROUNDS || 3));
const PIECE = 2;
const CORPORA = ['answer-zh.md', 'answer-en.md'];
const TARGET = { ratio: 5, p99: 1, max: 8, raw: 300000, br: 110000 };

for (const f of ['markdown.js', 'chunkwise_markdown.wasm.br']) {
  if (!fs.existsSync(path.join(PKG, f))) {
    console.error(`bench/markdown.js: pkg/miniprogram/${f} is missing: run ./build.sh first`);
    process.exit(2);
  }
}
let MarkdownIt;
try {
  MarkdownIt = testsRequire('markdown-it');
} catch (e) {
  console.error('bench/markdown.js: markdown-it is missing: npm ci in tests/js (./build.sh bench does it)');
  process.exit(2);
}

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
const text = (f) => fs.readFileSync(path.join(__dirname, 'corpus', f), 'utf8');

/** markdown-it re-rendering the whole text so far on every append. */
function markdownIt(mdit, t) {
  let sent = 0;
  let sofar = '';
  const times = [];
  for (let i = 0; i < t.length; i += PIECE) {
    sofar += t.slice(i, i + PIECE);
    const s = now();
    const html = mdit.render(sofar);
    times.push(now() - s);
    sent += Buffer.byteLength(html);
  }
  const t0 = now();
  const final = mdit.render(t);
  const oneShot = now() - t0;
  times.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.floor(times.length * p))];
  return {
    oneShot, total: times.reduce((a, b) => a + b, 0), appends: times.length, p50: q(0.5), p99: q(0.99), max: times[times.length - 1],
    bytes: sent, largest: Buffer.byteLength(final), final: Buffer.byteLength(final), equal: true,
  };
}

/** The same measurement inside jsc (with or without JIT), through tests/jsc/run.js. */
function inJsc(jit) {
  const { bundle, runJsc } = require(path.join(ROOT, 'tests', 'jsc', 'run.js'));
  const script = path.join(ROOT, 'target', 'jsc', 'markdown-bench.js');
  fs.mkdirSync(path.dirname(script), { recursive: true });
  fs.writeFileSync(
    script,
    fs.readFileSync(path.join(__dirname, 'markdown-measure.js'), 'utf8') +
      `
var md = JSC.require('/markdown.js');
md.init({ wasmPath: '/chunkwise_markdown.wasm.br' }).then(function () {
  var out = {};
  JSC.args.forEach(function (f) {
    out[f] = measureMarkdown(md, JSC.readText(JSC.root + '/bench/corpus/' + f), JSC.now, ${PIECE}, undefined, ${JSC_RUNS});
  });
  print('RESULT ' + JSON.stringify(out));
  JSC.finish();
}, function (e) {
  JSC.fail(String(e && e.stack ? e.stack : e));
  JSC.finish();
});
`
  );
  const r = runJsc(bundle(script), { jit, args: CORPORA });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (r.status !== 0 || !line) throw new Error(`jsc ${jit ? 'with' : 'without'} JIT failed: ${r.stdout.slice(-2000)} ${r.stderr.slice(-2000)} ${r.error || ''}`);
  return JSON.parse(line.slice(7));
}

async function main() {
  const started = now();
  const rows = [];
  const sb = createSandbox({ packageRoot: PKG, quiet: true });
  const md = sb.require('/markdown.js');
  await md.init({ wasmPath: '/chunkwise_markdown.wasm.br' });
  const mdit = new MarkdownIt({ html: false, linkify: true });
  for (const f of CORPORA) {
    const t = text(f);
    rows.push({ engine: 'V8 (Node ' + process.version + ')', corpus: f, approach: 'chunkwise (default patches)', target: true, ...measureMarkdown(md, t, now, PIECE, undefined, ROUNDS) });
    rows.push({ engine: 'V8', corpus: f, approach: "chunkwise, patches: 'blocks'", ...measureMarkdown(md, t, now, PIECE, { patches: 'blocks' }, 2) });
    rows.push({ engine: 'V8', corpus: f, approach: 'markdown-it, whole text re-rendered and sent every append', ...markdownIt(mdit, t) });
  }
  sb.close();
  const jscMissing = ![process.env.JSC, '/usr/bin/jsc', '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.0/jsc'].some((p) => p && fs.existsSync(p));
  if (jscMissing) console.error('bench/markdown.js: no jsc (libjavascriptcoregtk-4.0-bin): the JavaScriptCore rows are left out');
  if (process.env.BENCH_JSC !== '0' && !jscMissing && fs.existsSync(path.join(ROOT, 'tests', 'jsc', 'run.js'))) {
    for (const jit of [false, true]) {
      const res = inJsc(jit);
      for (const f of CORPORA) {
        rows.push({ engine: jit ? 'JSC with JIT' : 'JSC without JIT', corpus: f, approach: 'chunkwise (default patches)', target: !jit, ...res[f] });
      }
    }
  }
  const bad = rows.filter((r) => !r.equal);
  if (bad.length) throw new Error('the streamed page differs from the one-shot render: ' + bad.map((r) => `${r.engine} ${r.corpus} ${r.approach}`).join(', '));
  const sizes = {
    raw: fs.statSync(path.join(ROOT, 'pkg', 'web', 'chunkwise_markdown_glue_bg.wasm')).size,
    br: fs.statSync(path.join(PKG, 'chunkwise_markdown.wasm.br')).size,
    js: fs.statSync(path.join(PKG, 'markdown.js')).size,
  };
  const report = render(rows, sizes, (now() - started) / 1000);
  console.log(report);
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'markdown.md'), report);
}

const kb = (n) => (n / 1000).toFixed(1) + ' KB';
const ms = (n) => (n >= 100 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(3)) + ' ms';

function render(rows, sizes, seconds) {
  const verdict = (r, ok) => (r.target ? (ok ? ' ✓' : ' ✗') : '');
  const fastRatio = (r) => `${ms(r.minTotal)} / ${ms(r.minOneShot)} = ${(r.minTotal / r.minOneShot).toFixed(1)}×${verdict(r, r.minTotal <= TARGET.ratio * r.minOneShot)}`;
  const lines = [];
  lines.push('# chunkwise Markdown renderer benchmark', '');
  lines.push(`${os.cpus()[0] ? os.cpus()[0].model.trim() : 'unknown CPU'} (${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}), ${new Date().toISOString().slice(0, 16)}Z; ${seconds.toFixed(0)} s. Answers appended ${PIECE} characters at a time, then finish(); each append followed by dataFor(). Runs: V8 ${ROUNDS} ('blocks': 2), JSC ${JSC_RUNS}; total, p50, p99, max of the run of median total; "fastest" columns: each append's fastest time over the runs, their sum (with the fastest finish) against the fastest of the 3 one-shot renders.`, '');
  lines.push(`| engine | answer | approach | one-shot | total (≤ ${TARGET.ratio}× one-shot) | per append p50 | p99 (≤ ${TARGET.p99} ms) | max (≤ ${TARGET.max} ms) | fastest: total / one-shot (≤ ${TARGET.ratio}×), p99 / max | bytes sent | final | bytes / final | largest |`);
  lines.push('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    const ratio = r.total / r.oneShot;
    lines.push(
      `| ${r.engine} | ${r.corpus} (${r.appends} appends) | ${r.approach} | ${ms(r.oneShot)} | ${ms(r.total)} = ${ratio.toFixed(1)}×${verdict(r, ratio <= TARGET.ratio)} | ${ms(r.p50)} | ${ms(r.p99)}${verdict(r, r.p99 <= TARGET.p99)} | ${ms(r.max)}${verdict(r, r.max <= TARGET.max)} | ${r.minP99 === undefined ? '' : `${fastRatio(r)}; ${ms(r.minP99)}${verdict(r, r.minP99 <= TARGET.p99)} / ${ms(r.minMax)}${verdict(r, r.minMax <= TARGET.max)}`} | ${kb(r.bytes)} | ${kb(r.final)} | ${(r.bytes / r.final).toFixed(1)}× | ${kb(r.largest)} |`
    );
  }
  lines.push('');
  lines.push('- ✓/✗: the targets (timing targets are for JSC without JIT, the iOS logic layer; V8 should do the same or better). "bytes sent": the JSON of every setData object (path keys and values); "final": the JSON of the final blocks; "largest": the largest single setData.');
  lines.push('- markdown-it rows: "one-shot" is one markdown-it render of the final text; "bytes sent" the HTML of every re-render (towxml / mp-html send node JSON, larger than HTML: a lower bound).');
  lines.push(`- Markdown module: chunkwise_markdown.wasm ${sizes.raw} bytes raw (${kb(sizes.raw)}, target ≤ ${kb(TARGET.raw)}${sizes.raw <= TARGET.raw ? ' ✓' : ' ✗'}), ${sizes.br} bytes brotli (${kb(sizes.br)}, target ≤ ${kb(TARGET.br)}${sizes.br <= TARGET.br ? ' ✓' : ' ✗'}); markdown.js ${sizes.js} bytes.`);
  return lines.join('\n') + '\n';
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
