// The anchor of the decoder benchmarks: what a developer writes by hand where no TextDecoder
// exists (a mini program), in plain ES5 so that it runs as it is in V8 and JavaScriptCore.
// - Utf8Decoder: a streaming UTF-8 decoder into a reused Uint16Array, turned into a string by
//   String.fromCharCode.apply over subarrays; an incomplete sequence at a chunk's end is
//   carried to the next chunk. Ill-formed bytes become U+FFFD (not byte-exact WHATWG: the
//   benchmark corpora are valid UTF-8, and the output is checked).
// - openai(createParser): that decoder + eventsource-parser + JSON.parse, the content deltas
//   joined.
'use strict';

function Utf8Decoder() {
  this.tail = null; // the bytes of a sequence cut by the chunk's end
  this.units = new Uint16Array(1024);
}

Utf8Decoder.prototype.decode = function (bytes, stream) {
  var src = bytes;
  if (this.tail !== null) {
    src = new Uint8Array(this.tail.length + bytes.length);
    src.set(this.tail);
    src.set(bytes, this.tail.length);
    this.tail = null;
  }
  var n = src.length;
  if (this.units.length < n) this.units = new Uint16Array(n * 2);
  var out = this.units;
  var o = 0;
  var i = 0;
  while (i < n) {
    var b = src[i];
    if (b < 0x80) {
      out[o++] = b;
      i++;
      continue;
    }
    var need = b >= 0xf0 && b < 0xf5 ? 3 : b >= 0xe0 ? 2 : b >= 0xc2 ? 1 : 0;
    if (need > 0 && i + need >= n && stream) {
      this.tail = src.slice(i);
      break;
    }
    var cp = need === 0 || i + need >= n ? -1 : b & (0x7f >> (need + 1));
    for (var k = 1; k <= need && cp >= 0; k++) {
      var c = src[i + k];
      cp = (c & 0xc0) === 0x80 ? (cp << 6) | (c & 0x3f) : -1;
    }
    if (cp < 0) {
      out[o++] = 0xfffd;
      i++;
    } else if (cp >= 0x10000) {
      cp -= 0x10000;
      out[o++] = 0xd800 | (cp >> 10);
      out[o++] = 0xdc00 | (cp & 0x3ff);
      i += need + 1;
    } else {
      out[o++] = cp;
      i += need + 1;
    }
  }
  var s = '';
  for (var at = 0; at < o; at += 4096) s += String.fromCharCode.apply(null, out.subarray(at, Math.min(o, at + 4096)));
  return s;
};

/** The text pipeline: one decoder per stream, chunk by chunk. */
function text(Decoder) {
  return function (chunks) {
    var td = new Decoder();
    var out = '';
    for (var i = 0; i < chunks.length; i++) out += td.decode(new Uint8Array(chunks[i]), { stream: true });
    return out + td.decode(new Uint8Array(0));
  };
}

/** The OpenAI pipeline: a decoder, eventsource-parser, JSON.parse of each event's data. */
function openai(Decoder, createParser) {
  return function (chunks) {
    var td = new Decoder();
    var out = '';
    var parser = createParser({
      onEvent: function (e) {
        if (e.data === '[DONE]') return;
        var json = JSON.parse(e.data);
        var choice = json.choices && json.choices[0];
        var content = choice && choice.delta && choice.delta.content;
        if (content) out += content;
      },
    });
    for (var i = 0; i < chunks.length; i++) parser.feed(td.decode(new Uint8Array(chunks[i]), { stream: true }));
    parser.feed(td.decode(new Uint8Array(0)));
    return out;
  };
}

/** Adapts Utf8Decoder to TextDecoder's decode(bytes, {stream}) shape. */
function HandwrittenTextDecoder() {
  this.d = new Utf8Decoder();
}
HandwrittenTextDecoder.prototype.decode = function (bytes, options) {
  return this.d.decode(bytes, !!(options && options.stream));
};

module.exports = { Utf8Decoder: Utf8Decoder, TextDecoder: HandwrittenTextDecoder, text: text, openai: openai };
