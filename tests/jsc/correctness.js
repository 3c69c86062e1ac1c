// The decoder's conformance vectors, run against pkg/miniprogram inside JavaScriptCore (by
// tests/jsc/run.js; without JIT in ./build.sh test): the engine the code runs on in iOS
// WeChat, so that nothing V8-only can hide.
// - tests/fixtures/wpt/textdecoder.json: the WHATWG/WPT UTF-8 vectors, format 'text';
// - tests/fixtures/sse/cases.json: the event-stream vectors, format 'sse';
// - tests/fixtures/providers/*/*.txt: captured provider streams against their
//   .expected.json (written by an independent oracle, see tests/fixtures/SOURCES.md);
// each whole, cut at random positions (seeded, so a failure can be replayed), and the small
// ones also one byte at a time; paced decoding is checked on the text vectors too, and plain
// text through both UTF-8 paths (wasm, and the engine's builtins for complete ranges), also
// on random UTF-8-ish bodies.
'use strict';
var cw = JSC.require('/index.js');
var SEED = Number(JSC.args[0] || 1);
var RANDOM_SPLITS = Number(JSC.args[1] || 12);

function rng(seed) {
  var s = seed >>> 0 || 1;
  return function (n) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}

function hexBytes(hex) {
  var out = new Uint8Array(hex.length / 2);
  for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}

function utf8(text) {
  var out = [];
  for (var i = 0; i < text.length; i++) {
    var c = text.codePointAt(i);
    if (c > 0xffff) i++;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

/** Cuts: whole, at random positions (a few sets), and byte by byte when short. */
function splits(bytes, next) {
  var out = [[bytes]];
  for (var r = 0; r < RANDOM_SPLITS; r++) {
    var pieces = [];
    var at = 0;
    var most = 1 + next(r % 2 ? 8 : 200);
    while (at < bytes.length) {
      var n = 1 + next(most);
      pieces.push(bytes.subarray(at, at + n));
      at += n;
    }
    out.push(pieces);
  }
  if (bytes.length <= 512) {
    var ones = [];
    for (var i = 0; i < bytes.length; i++) ones.push(bytes.subarray(i, i + 1));
    out.push(ones);
  }
  return out;
}

/** Each piece as its own ArrayBuffer, as onChunkReceived hands them. */
function buffers(pieces) {
  return pieces.map(function (p) {
    var ab = new ArrayBuffer(p.length);
    new Uint8Array(ab).set(p);
    return ab;
  });
}

function decode(options, pieces) {
  var d = new cw.StreamDecoder(options);
  var all = { text: '', reasoning: '', finishReason: null, usage: null, errors: [], events: [], doneEarly: false, done: false, id: null };
  function take(u) {
    all.text += u.text;
    all.reasoning += u.reasoning;
    if (u.finishReason !== null) all.finishReason = u.finishReason;
    if (u.usage !== null) all.usage = u.usage;
    all.errors = all.errors.concat(u.errors);
    all.events = all.events.concat(u.events);
    all.done = u.done;
  }
  buffers(pieces).forEach(function (b) {
    take(d.push(b));
  });
  all.doneEarly = all.done;
  take(d.finish());
  // Paced: what the typewriter shows must be the same text (ticks, then the rest at once).
  if (d.paced) all.shown = d.tick(0) + d.tick(50) + d.skip();
  d.free();
  return all;
}

/** A paced decoder's every step as JSON: each push's update text, each tick's text and time,
 * pending, and what finish, the drain and skip give. */
function ticks(options, pieces) {
  var d = new cw.StreamDecoder(options);
  var steps = [];
  var now = 0;
  buffers(pieces).forEach(function (b, i) {
    steps.push(d.push(b).text);
    for (var k = 0; k < 1 + (i % 3); k++) steps.push(now, d.tick((now += [0, 16, 33, 400][(i + k) % 4])));
    if (i % 5 === 0) steps.push(d.pending);
  });
  steps.push(d.finish().text, d.pending);
  for (var k = 0; k < 40; k++) steps.push(d.tick((now += 16)));
  steps.push(d.skip());
  d.free();
  return JSON.stringify(steps);
}

function same(a, b) {
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
}

function sorted(v) {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(sorted);
  var out = {};
  Object.keys(v).sort().forEach(function (k) {
    out[k] = sorted(v[k]);
  });
  return out;
}

function describe(pieces) {
  return pieces.length + ' pieces of ' + pieces.map(function (p) { return p.length; }).join(',').slice(0, 80);
}

var counts = { utf8: 0, random: 0, sse: 0, providers: 0, decodes: 0 };
var UTF8_PATHS = [false, 1];
var next = rng(SEED);

function checkRealm() {
  ['TextDecoder', 'TextEncoder', 'WebAssembly', 'fetch'].forEach(function (name) {
    if (typeof this[name] !== 'undefined') JSC.fail('the realm has ' + name);
  }, this);
}

function utf8Vectors() {
  var cases = JSON.parse(JSC.readText(JSC.root + '/tests/fixtures/wpt/textdecoder.json'));
  cases.forEach(function (c) {
    var bytes = hexBytes(c.bytes_hex);
    var cuts = splits(bytes, next);
    if (c.chunks_hex) cuts.push(c.chunks_hex.map(hexBytes));
    cuts.forEach(function (pieces, k) {
      // Both UTF-8 paths of plain text: all in wasm, and the engine's builtins (builtinUtf8: 1:
      // a whole chunk when the core holds nothing, and the middle of every chunk of 8 bytes or
      // more, its ends decided by the core).
      UTF8_PATHS.forEach(function (builtinUtf8) {
        // (Paced: the typewriter's text, shown by ticks, takes the builtins path when long.)
        var options = { format: 'text', pace: k === 1 ? { cps: 1e9 } : false, builtinUtf8: builtinUtf8 };
        var got = decode(options, pieces);
        counts.decodes++;
        var how = ' (' + describe(pieces) + (k === 1 ? ', paced' : '') + ', builtinUtf8: ' + builtinUtf8 + '): ';
        if (got.text !== c.expected) JSC.fail('utf-8 ' + c.name + how + JSON.stringify(got.text) + ' != ' + JSON.stringify(c.expected));
        if (k === 1 && got.shown !== c.expected) JSC.fail('utf-8 ' + c.name + how + 'shown by the typewriter: ' + JSON.stringify(got.shown));
      });
    });
    // The per-call outputs upstream asserts.
    if (c.steps) {
      UTF8_PATHS.forEach(function (builtinUtf8) {
        var d = new cw.StreamDecoder({ format: 'text', pace: false, builtinUtf8: builtinUtf8 });
        c.steps.forEach(function (s, i) {
          var out = s.kind === 'finish' ? d.finish().text : d.push(buffers([hexBytes(s.push_hex)])[0]).text + (s.kind === 'final' ? d.finish().text : '');
          if (out !== s.out) JSC.fail('utf-8 ' + c.name + ' step ' + i + ' (builtinUtf8: ' + builtinUtf8 + '): ' + JSON.stringify(out) + ' != ' + JSON.stringify(s.out));
        });
        d.free();
      });
    }
    counts.utf8++;
  });
}

/**
 * Random UTF-8-ish bytes (valid characters, BOMs, cut, overlong, surrogate and out-of-range
 * sequences) cut at random: the builtins path gives what the wasm path gives, with the
 * default threshold and on every chunk; and the default of the realm is the builtins path
 * without JIT (WeChat on iOS), the wasm path with JIT.
 */
function utf8RandomBytes() {
  var pieces = ['a', '\n', '\u4e2d', '\u00e9', '\ud83d\ude00'].map(utf8).concat([[0xef, 0xbb, 0xbf], [0xe4, 0xb8], [0xf0, 0x9f], [0x80], [0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe0, 0x80]].map(function (b) {
    return new Uint8Array(b);
  }));
  // The default: builtins without JIT (WeChat on iOS), wasm with JIT (no mini program).
  var probe = new cw.StreamDecoder({ format: 'text', pace: false });
  var jit = !!jscOptions().useJIT;
  if ((probe._utf8Min !== -1 >>> 0) === jit) JSC.fail('JavaScriptCore ' + (jit ? 'with' : 'without') + ' JIT defaults to the ' + (jit ? 'builtins' : 'wasm') + ' path');
  probe.free();
  for (var n = 0; n < 300; n++) {
    var parts = [];
    var len = 0;
    var want = next(n % 3 === 0 ? 2000 : 40);
    while (len < want) {
      var p = pieces[next(pieces.length)];
      parts.push(p);
      len += p.length;
    }
    var bytes = new Uint8Array(len);
    for (var i = 0, at = 0; i < parts.length; at += parts[i].length, i++) bytes.set(parts[i], at);
    splits(bytes, next).forEach(function (cut, k) {
      var want = decode({ format: 'text', pace: false, builtinUtf8: false }, cut).text;
      [true, 1].forEach(function (builtinUtf8) {
        var got = decode({ format: 'text', pace: false, builtinUtf8: builtinUtf8 }, cut).text;
        counts.decodes++;
        if (got !== want) JSC.fail('random bytes (' + describe(cut) + ', builtinUtf8: ' + builtinUtf8 + '): ' + JSON.stringify(got) + ' != ' + JSON.stringify(want));
      });
      if (k === 1) {
        // The typewriter's ticks, each through the builtins.
        var paced = decode({ format: 'text', pace: { cps: 1e9 }, builtinUtf8: 1 }, cut);
        if (paced.text !== want || paced.shown !== want) JSC.fail('random bytes, paced (' + describe(cut) + '): ' + JSON.stringify(paced.shown) + ' != ' + JSON.stringify(want));
        // At the default pace, tick by tick: the text decoded once by the builtins and sliced
        // by the core's count shows what the core's own text shows, at the same times.
        var ticksWant = ticks({ format: 'text', builtinUtf8: false }, cut);
        var ticksGot = ticks({ format: 'text', builtinUtf8: 1 }, cut);
        counts.decodes += 2;
        if (ticksGot !== ticksWant) JSC.fail('random bytes, tick by tick (' + describe(cut) + '): ' + ticksGot + ' != ' + ticksWant);
      }
    });
    counts.random++;
  }
}

function sseVectors() {
  var cases = JSON.parse(JSC.readText(JSC.root + '/tests/fixtures/sse/cases.json'));
  cases.forEach(function (c) {
    var bytes = utf8(c.input);
    var cuts = splits(bytes, next);
    if (c.chunks) cuts.push(c.chunks.map(utf8));
    cuts.forEach(function (pieces) {
      var got = decode({ format: 'sse' }, pieces);
      counts.decodes++;
      if (!same(got.events, c.events)) JSC.fail('sse ' + c.name + ' (' + describe(pieces) + '): ' + JSON.stringify(got.events) + ' != ' + JSON.stringify(c.events));
    });
    counts.sse++;
  });
}

function providerFixtures() {
  JSC.fixtures.forEach(function (file) {
    var m = /^tests\/fixtures\/providers\/([^/]+)\/(.+)\.expected\.json$/.exec(file);
    if (!m || m[1] === 'upstream') return;
    var exp = JSON.parse(JSC.readText(JSC.root + '/' + file));
    var body = new Uint8Array(JSC.readBytes(JSC.root + '/tests/fixtures/providers/' + m[1] + '/' + m[2] + '.txt'));
    var skip = exp.not_asserted || {};
    splits(body, next).forEach(function (pieces) {
      var got = decode({ format: exp.format, pace: false }, pieces);
      counts.decodes++;
      var bad = [];
      if (!skip.text && got.text !== exp.text) bad.push('text ' + JSON.stringify(got.text).slice(0, 200));
      if (!skip.reasoning && got.reasoning !== exp.reasoning) bad.push('reasoning ' + JSON.stringify(got.reasoning).slice(0, 200));
      if (!skip.finish_reason && got.finishReason !== exp.finish_reason) bad.push('finishReason ' + got.finishReason);
      if (!skip.usage && !same(got.usage, exp.usage)) bad.push('usage ' + JSON.stringify(got.usage));
      if (!skip.errors) {
        var ok = got.errors.length === exp.errors.length && got.errors.every(function (g, i) {
          var w = exp.errors[i];
          return (w.kind === null || g.type === w.kind) && g.message === w.message && (w.code === null || same(g.code, JSON.parse(w.code)));
        });
        if (!ok) bad.push('errors ' + JSON.stringify(got.errors));
      }
      if (!skip.done && got.doneEarly !== exp.done) bad.push('done before finish() ' + got.doneEarly);
      if (!got.done) bad.push('not done after finish()');
      if (bad.length) JSC.fail('provider ' + m[1] + '/' + m[2] + ' (' + describe(pieces) + '): ' + bad.join('; '));
    });
    counts.providers++;
  });
}

var started = JSC.now();
cw.init({ wasmPath: '/chunkwise.wasm.br' }).then(function () {
  checkRealm.call(this);
  utf8Vectors();
  utf8RandomBytes();
  sseVectors();
  providerFixtures();
  if (counts.utf8 < 300 || counts.sse < 60 || counts.providers < 16) JSC.fail('too few vectors: ' + JSON.stringify(counts));
  JSC.finish(counts.utf8 + ' UTF-8 vectors, ' + counts.random + ' random UTF-8 bodies, ' + counts.sse + ' SSE vectors, ' + counts.providers + ' provider fixtures, ' + counts.decodes + ' decodes, seed ' + SEED + ', ' + ((JSC.now() - started) / 1000).toFixed(1) + ' s');
}).catch(function (e) {
  JSC.fail('threw: ' + (e && e.stack ? e.message + '\n' + e.stack : e));
  JSC.finish();
});
