// The decoder benchmark inside JavaScriptCore, run by bench/decoder-jsc.js through
// tests/jsc/run.js (pkg/miniprogram loaded as a phone loads it). Prints one `RESULT {json}`
// line per measurement. Arguments: MODE DATA_DIR BENCH_MS [PIPELINE KIND SIZE [CORPUS RUNS]]
// - steady: every pipeline on both corpora at every chunk size, warmed up and interleaved;
// - fresh: one pipeline decodes the first 64 KB of one body, once, in this fresh realm;
// - init: require('/index.js') and init() to ready;
// - repeat: one pipeline decodes one corpus (answer-zh.md, answer-en.md) RUNS times, untimed:
//   for an instruction count of the jsc process (valgrind --tool=callgrind), where the
//   difference between two RUNS, divided by the runs and the chunks, is the cost of one chunk
//   (of one tick, between the paced and the unpaced pipeline), free of the machine's load.
'use strict';
var started = JSC.now();
var mode = JSC.args[0];
var dataDir = JSC.args[1];
var benchMs = Number(JSC.args[2] || 300);
var measure = JSC.require('measure');
var handwritten = JSC.require('handwritten');
var createParser = JSC.require('eventsource-parser').createParser;
var PolyfillTextDecoder = JSC.require('text-encoding').TextDecoder;
var FRESH_BYTES = 64000;
var FRAME_MS = 16;

function chunkwise(cw, kind, paced) {
  // Paced as streamChat paces: the text reaches JS from tick() only.
  var options = paced ? { format: kind, pace: {}, pacedUpdateText: false } : { format: kind, pace: false };
  return function (chunks) {
    var d = new cw.StreamDecoder(options);
    var out = '';
    var t = 0;
    for (var i = 0; i < chunks.length; i++) {
      var u = d.push(chunks[i]);
      // Paced: one animation frame per chunk; what the page shows is the typewriter's text.
      if (paced) out += d.tick((t += FRAME_MS));
      else out += u.text;
    }
    var end = d.finish();
    out += paced ? d.skip() : end.text;
    d.free();
    return out;
  };
}

function pipelines(cw, kind) {
  var list = [
    { id: 'chunkwise', fn: chunkwise(cw, kind, false) },
    { id: 'chunkwise-paced', fn: chunkwise(cw, kind, true) },
  ];
  if (kind === 'text') {
    list.push({ id: 'handwritten', fn: handwritten.text(handwritten.TextDecoder) });
    list.push({ id: 'text-encoding', fn: handwritten.text(PolyfillTextDecoder) });
  } else {
    list.push({ id: 'handwritten', fn: handwritten.openai(handwritten.TextDecoder, createParser) });
    list.push({ id: 'text-encoding', fn: handwritten.openai(PolyfillTextDecoder, createParser) });
  }
  return list;
}

function body(name, kind) {
  return new Uint8Array(JSC.readBytes(dataDir + '/' + name + (kind === 'text' ? '.txt' : '.sse')));
}

function report(r) {
  print('RESULT ' + JSON.stringify(r));
}

function steady(cw) {
  ['answer-zh.md', 'answer-en.md'].forEach(function (corpus) {
    [['text', [16, 1024, 65536]], ['openai', [200, 1400]]].forEach(function (k) {
      var kind = k[0];
      var expected = JSC.readText(dataDir + '/' + corpus + (kind === 'text' ? '.txt' : '.sse.txt'));
      var bytes = body(corpus, kind);
      k[1].forEach(function (size) {
        var chunks = measure.split(bytes, size);
        var list = pipelines(cw, kind);
        var rs = measure.measureAll(list.map(function (p) {
          return { fn: p.fn, chunks: chunks };
        }), bytes.length, expected, JSC.now, benchMs);
        list.forEach(function (p, i) {
          report({ kind: kind, corpus: corpus, chunk: size, pipeline: p.id, status: rs[i].status, mbps: rs[i].mbps, runs: rs[i].runs, error: rs[i].error });
        });
      });
    });
  });
}

/** The first FRESH_BYTES of a body, decoded once by a pipeline that has never run before. */
function fresh(cw, id, kind, size) {
  var bytes = body('fresh', kind).subarray(0, FRESH_BYTES);
  var chunks = measure.split(bytes, size);
  var fn = pipelines(cw, kind).filter(function (p) {
    return p.id === id;
  })[0].fn;
  var t0 = JSC.now();
  var out = fn(chunks);
  var ms = JSC.now() - t0;
  report({ kind: kind, chunk: size, pipeline: id, ms: ms, mbps: bytes.length / 1e6 / (ms / 1000), chars: out.length, head: out.slice(0, 40) });
}

/** One pipeline on one corpus, `runs` times (see `repeat` above). */
function repeat(cw, id, kind, size, corpus, runs) {
  var chunks = measure.split(body(corpus, kind), size);
  var fn = pipelines(cw, kind).filter(function (p) {
    return p.id === id;
  })[0].fn;
  var chars = 0;
  for (var i = 0; i < runs; i++) chars += fn(chunks).length;
  report({ kind: kind, chunk: size, pipeline: id, corpus: corpus, runs: runs, chunks: chunks.length, chars: chars });
}

var loadStart = JSC.now();
var cw = JSC.require('/index.js');
cw.init({ wasmPath: '/chunkwise.wasm.br' }).then(function () {
  var ready = JSC.now();
  if (mode === 'init') report({ initMs: ready - loadStart, sinceStartMs: ready - started });
  else if (mode === 'steady') steady(cw);
  else if (mode === 'fresh') fresh(cw, JSC.args[3], JSC.args[4], Number(JSC.args[5]));
  else if (mode === 'repeat') repeat(cw, JSC.args[3], JSC.args[4], Number(JSC.args[5]), JSC.args[6], Number(JSC.args[7]));
  else JSC.fail('unknown mode ' + mode);
  JSC.finish(mode);
}).catch(function (e) {
  JSC.fail(e && e.stack ? e.message + '\n' + e.stack : String(e));
  JSC.finish();
});
