#!/usr/bin/env node
'use strict';
// What a wasm instruction costs in JavaScriptCore without JIT, by how often its code repeats.
//
//   node bench/markdown-dispatch.js        (needs jsc: libjavascriptcoregtk-4.0-bin)
//
// Why: a streamed answer runs each append's path through the module once (some 20,000 wasm
// instructions, straight through, then back to JS), while a one-shot render spends its time
// in loops over the text. jsc's wasm interpreter ends every instruction's handler with an
// indirect jump to the next one; a loop's sequence of handlers repeats, so the processor
// predicts those jumps, and a long sequence run once does not. The streamed/one-shot time
// ratio of bench/markdown.js is therefore larger than the ratio of instructions a profiler
// counts (callgrind of the whole jsc process: zh about 5×, its time about 10×).
//
// The probe: N statements `x = a OP b` (local.get, local.get, an i32 operation, local.set) as
// a loop whose body holds K statements, run N/K times: 'varied' statements of random
// operations and locals (the handler sequence repeats only every K statements), 'alike'
// statements of one shape (the same handler sequence however large the body; the locals
// differ, so the bytecode is as large as the varied body's). The x86 instructions per
// statement do not grow with K (callgrind: about 69 at K = 8, 57 at K = 32,768, the loop's
// own instructions shared by fewer statements), so what changes with K is the time each
// instruction takes.
const fs = require('node:fs');
const path = require('node:path');
const { runJsc } = require(path.join(__dirname, '..', 'tests', 'jsc', 'run.js'));

const N = Number(process.env.DISPATCH_N || 4000000);
const KS = [8, 64, 512, 4096, 32768];

// Plain ES5 for the jsc shell: builds each module's bytes by hand (no assembler needed).
function probe(N, KS) {
  function leb(n) {
    var o = [];
    do {
      var b = n & 0x7f;
      n >>>= 7;
      if (n) b |= 0x80;
      o.push(b);
    } while (n);
    return o;
  }
  function section(id, bytes) {
    return [id].concat(leb(bytes.length), bytes);
  }
  var seed = 12345;
  function rnd(n) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  }
  // i32 add, sub, mul, and, or, xor, shl, shr_u, rotl
  var OPS = [0x6a, 0x6b, 0x6c, 0x71, 0x72, 0x73, 0x74, 0x76, 0x77];
  // (func (param $n i32) (result i32) (local 8 × i32) (loop body… $n-- br_if) local 1)
  function build(K, alike) {
    var body = [1, 8, 0x7f, 0x03, 0x40];
    for (var i = 0; i < K; i++) {
      if (alike) body.push(0x20, 1 + (i % 8), 0x20, 1 + ((i + 3) % 8), 0x6a, 0x21, 1 + ((i + 5) % 8));
      else body.push(0x20, 1 + rnd(8), 0x20, 1 + rnd(8), OPS[rnd(OPS.length)], 0x21, 1 + rnd(8));
    }
    body.push(0x20, 0, 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, 0x0b, 0x20, 1, 0x0b);
    var bytes = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0].concat(
      section(1, [1, 0x60, 1, 0x7f, 1, 0x7f]),
      section(3, [1, 0]),
      section(7, [1, 1, 0x66, 0, 0]),
      section(10, [1].concat(leb(body.length), body))
    );
    return new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(bytes)), {}).exports.f;
  }
  var out = {};
  [false, true].forEach(function (alike) {
    KS.forEach(function (K) {
      var f = build(K, alike);
      f(1);
      var best = Infinity;
      for (var run = 0; run < 3; run++) {
        var t = preciseTime();
        f(Math.max(1, Math.round(N / K)));
        best = Math.min(best, (preciseTime() - t) * 1e9);
      }
      out[(alike ? 'alike ' : 'varied ') + K] = best / (Math.max(1, Math.round(N / K)) * K);
    });
  });
  print('RESULT ' + JSON.stringify(out));
}

const file = path.join(__dirname, '..', 'target', 'jsc', 'markdown-dispatch.probe.js');
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(file, probe.toString() + `\nprobe(${N}, ${JSON.stringify(KS)});\n`);
const r = runJsc(file, { jit: false });
const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
if (r.status !== 0 || !line) {
  console.error(`bench/markdown-dispatch.js: jsc failed: ${r.stdout.slice(-2000)} ${r.stderr.slice(-2000)} ${r.error || ''}`);
  process.exit(1);
}
const ns = JSON.parse(line.slice(7));
const rows = ['| statements in the loop body | varied: ns per statement | alike: ns per statement |', '|---:|---:|---:|'];
for (const K of KS) rows.push(`| ${K} (${K * 7} B) | ${ns['varied ' + K].toFixed(2)} | ${ns['alike ' + K].toFixed(2)} |`);
console.log(`JavaScriptCore without JIT, ${N} statements of 4 wasm instructions each, fastest of 3:\n\n${rows.join('\n')}`);
