// One measurement of the Markdown renderer, the same in V8 (bench/markdown.js, in the
// mini-program sandbox) and in JavaScriptCore (tests/jsc, with and without JIT): plain
// ES5, no imports, so bench/markdown.js can run it in either engine.
//
// measureMarkdown(md, text, now, piece, options, runs) with `md` the package's markdown.js (init() done), `now()`
// in milliseconds, `options` the renderer's (default: none): the answer appended `piece` UTF-16 code units at a time, then finish(),
// each append followed by dataFor() (the setData object a page builds), `runs` times (default 1),
// each run with a new renderer. Returns
//   oneShot: ms of append(whole text) + finish() + dataFor(), median of 3 after the streamed runs;
//   total, finish: ms, of the run of median total; p50, p99, max: ms per append, that run's;
//   minP50, minP99, minMax: the same over each append's fastest of the runs (what the renderer
//   costs without the pauses a shared machine's other processes add to one run); minTotal:
//   the sum of each append's fastest and the fastest finish, minOneShot: the fastest of the
//   3 one-shot renders (the same measure for the anchor); appends;
//   bytes: JSON of every setData object; largest: the largest one; final: JSON of the final
//   blocks; equal: the page built from the setData objects equals the one-shot render.
function measureMarkdown(md, text, now, piece, options, runs) {
  'use strict';
  function oneShot() {
    var r = new md.MarkdownRenderer();
    var t0 = now();
    var a = r.dataFor(r.append(text), 'blocks');
    var f = r.finish();
    var b = r.dataFor(f, 'blocks');
    var ms = now() - t0;
    r.free();
    var page = { blocks: [] };
    applyData(page, a);
    applyData(page, b);
    page.blocks.length = f.count;
    return { ms: ms, page: page };
  }
  var ref = oneShot();
  runs = runs || 1;
  var results = [];
  var fastest = null;
  for (var run = 0; run < runs; run++) {
    var res = streamOnce(md, text, now, piece, options);
    results.push(res);
    if (fastest === null) fastest = res.times.slice();
    else for (var a = 0; a < fastest.length; a++) if (res.times[a] < fastest[a]) fastest[a] = res.times[a];
  }
  // The anchor is timed after the streamed runs, on warm code: timed first, V8 ran it on
  // its baseline wasm tier while the optimizing tier was still compiling in the background
  // (one-shot 24 ms instead of 8 on a loaded machine), which flattered every ratio.
  var shots = [];
  for (var k = 0; k < 3; k++) shots.push(oneShot().ms);
  shots.sort(function (a, b) {
    return a - b;
  });
  results.sort(function (a, b) {
    return a.total - b.total;
  });
  var m = results[(results.length - 1) >> 1];
  var times = m.times.slice();
  var byTime = function (a, b) {
    return a - b;
  };
  times.sort(byTime);
  fastest.sort(byTime);
  var q = function (xs, p) {
    return xs[Math.min(xs.length - 1, Math.floor(xs.length * p))];
  };
  // (each append's fastest, summed, and the fastest finish; the sort above leaves the sum as it is)
  var fastTotal = fastest.reduce(function (a, b) {
    return a + b;
  }, 0);
  var fastFinish = Math.min.apply(null, results.map(function (x) {
    return x.finish;
  }));
  var finalJson = JSON.stringify(ref.page.blocks);
  return {
    oneShot: shots[1],
    total: m.total,
    minOneShot: shots[0],
    minTotal: fastTotal + fastFinish,
    finish: m.finish,
    appends: times.length,
    p50: q(times, 0.5),
    p99: q(times, 0.99),
    max: times[times.length - 1],
    runs: runs,
    minP50: q(fastest, 0.5),
    minP99: q(fastest, 0.99),
    minMax: fastest[fastest.length - 1],
    bytes: m.bytes,
    largest: m.largest,
    final: utf8Length(finalJson),
    equal: results.every(function (x) {
      return JSON.stringify(x.page.blocks) === finalJson;
    }),
  };
}

/** One streamed render: each append's ms, the total, the setData bytes and the page built. */
function streamOnce(md, text, now, piece, options) {
  var r = new md.MarkdownRenderer(options);
  var page = { blocks: [] };
  var times = [];
  var bytes = 0;
  var largest = 0;
  for (var i = 0; i < text.length; i += piece) {
    var s = now();
    var p = r.append(text.slice(i, i + piece));
    var data = r.dataFor(p, 'blocks');
    times.push(now() - s);
    // (outside the timed part: what crosses to the view, and the page it builds)
    var json = JSON.stringify(data);
    if (json.length > 2) {
      var n = utf8Length(json);
      bytes += n;
      if (n > largest) largest = n;
    }
    applyData(page, JSON.parse(json));
    page.blocks.length = p.count;
  }
  var fs = now();
  var last = r.finish();
  var fdata = r.dataFor(last, 'blocks');
  var finish = now() - fs;
  var total = times.reduce(function (a, b) {
    return a + b;
  }, 0) + finish;
  var fjson = JSON.stringify(fdata);
  if (fjson.length > 2) bytes += utf8Length(fjson);
  applyData(page, JSON.parse(fjson));
  page.blocks.length = last.count;
  r.free();
  return { times: times, total: total, finish: finish, bytes: bytes, largest: largest, page: page };
}

/** Applies a setData object's path keys to `page`, as setData does. */
function applyData(page, data) {
  for (var key in data) {
    var keys = [];
    key.replace(/([^.[\]]+)|\[(\d+)\]/g, function (m, name, idx) {
      keys.push(idx !== undefined ? Number(idx) : name);
    });
    var obj = page;
    for (var i = 0; i < keys.length - 1; i++) obj = obj[keys[i]];
    obj[keys[keys.length - 1]] = data[key];
  }
}

function utf8Length(s) {
  var n = 0;
  for (var i = 0; i < s.length; i++) {
    var c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

if (typeof module !== 'undefined') module.exports = { measureMarkdown: measureMarkdown };
