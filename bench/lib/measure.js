// Measuring several pipelines on the same input, interleaved (plain ES5: the same code runs
// in Node and in JavaScriptCore). Each pipeline's output is checked against the expected
// text, it is warmed up, then run in ROUNDS rounds of benchMs / ROUNDS each, round-robin, so
// that the load of other processes falls on all of them alike. MB/s of input bytes: the
// median round.
'use strict';
var ROUNDS = 7;
var MB = 1e6;

/**
 * pipelines: [{fn, chunks}]; returns [{status: 'ok' | 'garbles' | 'throws', mbps, runs, error}].
 * now(): milliseconds.
 */
function measureAll(pipelines, inputBytes, expected, now, benchMs) {
  var state = pipelines.map(function (p) {
    var out;
    try {
      out = p.fn(p.chunks);
    } catch (e) {
      return { status: 'throws', error: e && e.message ? e.message : String(e) };
    }
    var runs = 0;
    var warmStart = now();
    while (runs < 2 || (now() - warmStart < Math.min(100, benchMs / 5) && runs < 10000)) {
      p.fn(p.chunks);
      runs++;
    }
    var perRun = Math.max((now() - warmStart) / runs, 0.001);
    return { status: out === expected ? 'ok' : 'garbles', perRound: Math.max(1, Math.round(benchMs / ROUNDS / perRun)), rates: [] };
  });
  for (var round = 0; round < ROUNDS; round++) {
    pipelines.forEach(function (p, k) {
      var st = state[k];
      if (st.status === 'throws') return;
      var t0 = now();
      for (var i = 0; i < st.perRound; i++) p.fn(p.chunks);
      st.rates.push((inputBytes * st.perRound) / MB / ((now() - t0) / 1000));
    });
  }
  return state.map(function (st) {
    if (st.status === 'throws') return st;
    st.rates.sort(function (a, b) {
      return a - b;
    });
    return { status: st.status, mbps: st.rates[st.rates.length >> 1], runs: st.perRound * ROUNDS };
  });
}

/** `bytes` (a Uint8Array) cut into `size`-byte chunks, each its own ArrayBuffer, as onChunkReceived gives. */
function split(bytes, size) {
  var out = [];
  for (var at = 0; at < bytes.length; at += size) {
    var piece = bytes.subarray(at, Math.min(bytes.length, at + size));
    var ab = new ArrayBuffer(piece.length);
    new Uint8Array(ab).set(piece);
    out.push(ab);
  }
  return out;
}

module.exports = { measureAll: measureAll, split: split, ROUNDS: ROUNDS };
