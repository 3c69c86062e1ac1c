// StreamDecoder: the public JS API over the decoder module's numbers-only surface
// (wasm/src/lib.rs). Each package entry (js/targets/) loads the wasm its own way and calls
// `bindDecoder(glue)`. Nothing here may use the Encoding API or browser globals: a mini
// program has none of them (tools/make-packages.js checks the mini-program build for each).
import { WasmHeap, notLoaded, describe } from './wasm-heap.js';
import { encodeUtf8 } from './utf8.js';

/** The format names, in the order of `Format::ALL` in src/formats/mod.rs (a test checks it). */
export var FORMATS = ['text', 'sse', 'ndjson', 'hex-records', 'openai', 'openai-responses', 'anthropic', 'gemini', 'ollama', 'dashscope', 'dify'];
/** Typewriter defaults, the same numbers as `PaceOptions::default()` (a test checks it). */
var DEFAULT_PACE = { cps: 40, maxLagMs: 1500, drainMs: 1000 };
var DEFAULT_MAX_BUFFER_BYTES = 1048576;

var MORE = 0x80000000;
var DONE = 0x40000000;
var LEN_MASK = DONE - 1;

var glue = null; // the wasm-bindgen glue, once loaded
var heap = null;
// With `builtinUtf8` on, the text of a tick at least this long is decoded by the engine's
// builtins; shorter text costs more in calls than it saves.
var BUILTIN_MIN_BYTES = 128; // measured: see docs/performance.md, "How plain text is decoded without JIT"
var ios = false; // a mini program on iOS: `builtinUtf8` defaults to on
var builtinsOk = false; // the engine's builtins decode UTF-8 as the spec says (checked once)
var fromCharCode = String.fromCharCode;
var fromCodePoint = String.fromCodePoint;
var APPLY_MAX = 8192;
// The module's one input buffer (wasm/src/lib.rs: shared by every decoder): address and size,
// reused while chunks fit.
var inputAt = 0;
var inputSize = 0;

/** The decoder module is instantiated: `loadedGlue` has RawDecoder and wasm_memory. */
export function bindDecoder(loadedGlue) {
  glue = loadedGlue;
  heap = new WasmHeap(glue.wasm_memory());
  builtinsOk = builtinsDecodeUtf8();
  ios = onIos();
  if (!ios) warmUp();
}

// A short OpenAI stream and plain text: the role chunk, a delta of ASCII, an escape, an
// emoji and CJK, then the last chunk, with usage (the plain text's UTF-8 ends inside a
// character when cut 3 bytes before its end).
var WARM_SSE =
  'data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n' +
  'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi \\"x\\" \ud83d\ude00 \u4f60\u597d\\n"},"finish_reason":null}]}\n\n';
var WARM_END = 'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"total_tokens":3}}\n\ndata: [DONE]\n\n';
var WARM_TEXT = '# Hi w\u00f6rld \ud83d\ude00, some text \u4f60\u597d\n';
// Measured in JavaScriptCore with JIT: 20 rounds compile what the first 64 KB of an answer
// run (docs/performance.md, "Warming the engine at init()"); 10 leave part of it to the answer.
var WARM_ROUNDS = 20;

/**
 * Decodes a short stream on throwaway decoders at load: plain text, OpenAI SSE, and OpenAI
 * paced as streamChat paces it. An engine with a JIT compiles each wasm and JS function only
 * once it has run a while (JavaScriptCore starts wasm in an interpreter), and that compiling
 * was most of what the first answer cost; a page calls init() at launch, long before its
 * first answer. Not done in a mini program on iOS: no JIT there, so nothing to compile, and
 * the same work would only make init() slower. Each decoder is freed; what remains is the
 * module's shared buffers, sized for these chunks.
 */
function warmUp() {
  var chunks = [encodeUtf8(WARM_TEXT), encodeUtf8(WARM_SSE), encodeUtf8(WARM_SSE)];
  var options = [{ format: 'text', pace: false }, { format: 'openai', pace: false }, { format: 'openai', pacedUpdateText: false }];
  for (var f = 0; f < 3; f++) {
    var d = new StreamDecoder(options[f]);
    var b = chunks[f];
    var n = b.length;
    for (var r = 0; r < WARM_ROUNDS; r++) {
      d.push(b.subarray(0, n - 21));
      d.push(b.subarray(n - 21, n - 3));
      d.push(b.subarray(n - 3));
      if (f === 2) d.tick(r * 16);
    }
    if (f > 0) d.push(encodeUtf8(WARM_END));
    d.finish();
    if (f === 2) d.skip();
    d.free();
  }
}

/**
 * Valid UTF-8 bytes (a Uint8Array) as text, by the engine's builtins: each byte as a
 * Latin-1 character (String.fromCharCode.apply), escape() makes the non-ASCII ones %XX, and
 * decodeURIComponent reads %XX sequences as UTF-8 (ECMA-262 Decode), throwing a URIError
 * at any ill-formed or incomplete one. In JavaScriptCore without JIT these builtins are
 * compiled code, several times faster than the same work done by interpreted wasm or JS.
 */
function decodeWithBuiltins(u8) {
  return decodeURIComponent(escape(u8.length <= APPLY_MAX ? fromCharCode.apply(null, u8) : latin1Of(u8)));
}

/** Bytes as a Latin-1 string, APPLY_MAX at a time (apply takes them as arguments: a few
 * thousand at a time are within any engine's limit). */
function latin1Of(u8) {
  var s = '';
  for (var at = 0; at < u8.length; at += APPLY_MAX) s += fromCharCode.apply(null, u8.subarray(at, at + APPLY_MAX));
  return s;
}

/**
 * The engine's builtins reject what the spec calls ill-formed (overlong forms, surrogates,
 * code points past U+10FFFF, stray and missing continuation bytes) and decode the rest
 * exactly; checked once, so an engine that differs keeps every byte in the core's decoder.
 */
function builtinsDecodeUtf8() {
  // Overlong 2/3/4-byte forms (C0/C1 leads too), high and low surrogates, past U+10FFFF (F4 90,
  // lead F5), a 5-byte form, a stray continuation, a cut sequence at the end and before ASCII.
  var ill = [
    [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xf0, 0x80, 0x80, 0x80],
    [0xed, 0xa0, 0x80], [0xed, 0xb0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80],
    [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80], [0xe6, 0xb5], [0xe6, 0xb5, 0x41], [0xff]
  ];
  try {
    if (decodeWithBuiltins(new Uint8Array([0x25, 0xc3, 0xa9, 0xe6, 0xb5, 0x81, 0xf0, 0x9f, 0x98, 0x80])) !== '%\u00e9\u6d41\ud83d\ude00') return false;
  } catch (e) {
    return false;
  }
  for (var i = 0; i < ill.length; i++) {
    try {
      decodeWithBuiltins(new Uint8Array(ill[i]));
      return false;
    } catch (e) {
      // rejected, as it must be
    }
  }
  return true;
}

/**
 * A WeChat (or Douyin) mini program on iOS, whose logic layer runs in JavaScriptCore without
 * JIT: Apple allows no JIT outside WebKit's own processes, so there both JS and wasm are
 * interpreted while builtins stay compiled. The mini program says so itself
 * (`getDeviceInfo().platform`, or `getSystemInfoSync()` before base library 2.20.1).
 */
function onIos() {
  try {
    var api = typeof wx === 'object' ? wx : tt;
    return (api.getDeviceInfo ? api.getDeviceInfo() : api.getSystemInfoSync()).platform === 'ios';
  } catch (e) {
    return false; // not a mini program
  }
}

function toBytes(chunk) {
  // (push() tests for onChunkReceived's ArrayBuffer itself: each test costs in an interpreter.)
  if (chunk instanceof Uint8Array) return chunk;
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  // A SharedArrayBuffer, or an ArrayBuffer from another realm (a mini program's wx.request
  // may hand one from the native side): duck-type on byteLength + slice.
  if (chunk && typeof chunk.byteLength === 'number' && typeof chunk.slice === 'function') return new Uint8Array(chunk);
  throw new TypeError('chunkwise: push() takes an ArrayBuffer or a Uint8Array (the `data` of onChunkReceived), got ' + describe(chunk));
}

function number(options, name, fallback, min) {
  var value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= min) || value === Infinity) {
    throw new TypeError('chunkwise: option ' + name + ' must be a finite number >= ' + min + ', got ' + String(value));
  }
  return value;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    return text;
  }
}

// Shared by every update without errors or events: one allocation less per chunk. Frozen,
// so a caller that pushes into one gets an error instead of corrupting the others.
var NONE = Object.freeze([]);

function emptyUpdate(text, done) {
  return { text: text, reasoning: '', done: done, finishReason: null, usage: null, error: null, errors: NONE, events: NONE };
}

// An update of a decoder whose paced text reaches JS from tick() only, in one literal: a
// property added afterwards changes the object's shape on every push, which an interpreter
// pays for.
function queuedUpdate(queued, done) {
  return { text: '', reasoning: '', done: done, finishReason: null, usage: null, error: null, errors: NONE, events: NONE, queued: queued };
}

/**
 * Decodes one streamed response body. See README.md for the options and the Update shape.
 * @param {{format?: string, cumulative?: boolean, pace?: false | {cps?: number, maxLagMs?: number, drainMs?: number}, pacedUpdateText?: boolean, maxBufferBytes?: number}} [options]
 */
export function StreamDecoder(options) {
  if (!(this instanceof StreamDecoder)) throw new TypeError("chunkwise: use 'new StreamDecoder(options)'");
  if (glue === null) throw notLoaded('StreamDecoder');
  options = options === undefined ? {} : options;
  if (options === null || typeof options !== 'object') throw new TypeError('chunkwise: StreamDecoder options must be an object');
  var format = options.format === undefined ? 'text' : options.format;
  var index = FORMATS.indexOf(format);
  if (index < 0) {
    throw new Error('chunkwise: unknown format ' + JSON.stringify(format) + '; use one of: ' + FORMATS.join(', '));
  }
  var pace = options.pace === undefined ? {} : options.pace;
  var cps = 0;
  var maxLagMs = DEFAULT_PACE.maxLagMs;
  var drainMs = DEFAULT_PACE.drainMs;
  if (pace !== false) {
    if (pace === true) pace = {};
    if (pace === null || typeof pace !== 'object') throw new TypeError('chunkwise: option pace must be an object or false');
    cps = number(pace, 'cps', DEFAULT_PACE.cps, Number.MIN_VALUE);
    maxLagMs = number(pace, 'maxLagMs', DEFAULT_PACE.maxLagMs, 0);
    drainMs = number(pace, 'drainMs', DEFAULT_PACE.drainMs, 0);
  }
  var maxBufferBytes = number(options, 'maxBufferBytes', DEFAULT_MAX_BUFFER_BYTES, 1);
  // A speed choice only: where the builtins are missing or decode otherwise, the core decodes.
  var builtinUtf8 = builtinsOk && (options.builtinUtf8 === undefined ? ios : options.builtinUtf8);
  if (maxBufferBytes > 0xffffffff) throw new TypeError('chunkwise: option maxBufferBytes must be at most 4 GiB');
  this.format = format;
  this.paced = pace !== false;
  // Paced text reaches JS once, from tick(), unless the updates are asked to carry it too.
  this._tickOnly = this.paced && options.pacedUpdateText === false;
  // Paced plain text with the builtins: they decode each chunk once, as without pacing, and
  // the text waits here, in `_parts`, while the core keeps its bytes to pace (it never checks
  // or transcodes them): a tick answers how many UTF-16 units of it to show.
  this._js = this.paced && format === 'text' && !!builtinUtf8;
  this._parts = [];
  this._raw = glue.RawDecoder.create(index, options.cumulative === true, cps, maxLagMs, drainMs, maxBufferBytes >>> 0, this._js ? 2 : this._tickOnly ? 1 : 0);
  this._results = this._raw.results_ptr() >>> 2; // [out, meta, queued bytes, UTF-8 range, held], see wasm/src/lib.rs
  // Plain text without pacing: an update is its text alone, never done before finish().
  this._plain = format === 'text' && pace === false;
  // The least bytes of text the builtins decode (0xffffffff: never): of a tick's text, and
  // of a plain-text chunk (any length: in a chunk too short for the core to decide from its
  // ends, only a whole one that needs no call of the core at all).
  this._utf8Min = !builtinUtf8 ? -1 >>> 0 : builtinUtf8 === true ? BUILTIN_MIN_BYTES : builtinUtf8 >>> 0;
  this._wholeMin = this._plain || this._js ? (builtinUtf8 === true ? 1 : this._utf8Min) : -1 >>> 0;
  // The core's last answer: it holds no byte of plain text (see push).
  this._clean = false;
}

StreamDecoder.prototype._live = function () {
  if (this._raw === null) throw new Error('chunkwise: this StreamDecoder was freed');
  return this._raw;
};

/** Decodes the next chunk: an ArrayBuffer (onChunkReceived's res.data) or a Uint8Array. */
StreamDecoder.prototype.push = function (chunk) {
  // Written out for interpreters, where each call and statement counts at small chunks.
  var raw = this._raw;
  if (raw === null) this._live();
  var bytes = chunk instanceof ArrayBuffer ? new Uint8Array(chunk) : toBytes(chunk);
  var n = bytes.length;
  // Plain text with the builtins: the chunk's bytes stay here, as a Latin-1 string for the
  // builtins (which throw at anything ill-formed or incomplete), built only when one is used.
  if (n >= this._wholeMin) {
    // When the core's last answer said it holds nothing and the builtins decode the chunk,
    // the core would give the same text and still hold nothing (Utf8Decoder::holds_nothing
    // in src/utf8.rs), so it is not called. Tried only on a chunk that ends in ASCII: one
    // that ends inside a character would throw, which costs more than the call it saves.
    if (this._clean && bytes[n - 1] < 0x80) {
      try {
        return emptyUpdate(decodeURIComponent(escape(n <= APPLY_MAX ? fromCharCode.apply(null, bytes) : latin1Of(bytes))), false);
      } catch (e) {
        // Ill-formed: the core replaces it, below.
      }
    } else if (n >= 8) {
      // Otherwise the core decides the chunk's ends from its first and last four bytes
      // (Utf8Decoder::edges): the character it held, completed, and where the cut character
      // it now holds starts; the builtins decode the complete middle. Paced, the core reads
      // the chunk from its input buffer and queues it for the typewriter as well.
      if (this._js) copyInput(bytes);
      var edges = raw.edges(n, bytes[0] | bytes[1] << 8 | bytes[2] << 16 | bytes[3] << 24, bytes[n - 4] | bytes[n - 3] << 8 | bytes[n - 2] << 16 | bytes[n - 1] << 24);
      if (edges !== 0) {
        var tail = (edges >>> 26) & 3;
        try {
          // (in the try: whatever throws here, the bytes the core queued are taken back)
          var latin1 = n <= APPLY_MAX ? fromCharCode.apply(null, bytes) : latin1Of(bytes);
          var middle = decodeURIComponent(escape(latin1.slice((edges >>> 24) & 3, n - tail)));
          var completed = edges & 0xffffff;
          if (completed !== 0) middle = fromCodePoint(completed - 1) + middle;
          if (this._js) return this._queue(middle, false);
          this._clean = tail === 0;
          return emptyUpdate(middle, false);
        } catch (e) {
          // Ill-formed: the core goes back to before the call and replaces it, below.
          raw.undo_edges();
        }
      }
    }
  }
  // (copyInput written out: a call per chunk costs in an interpreter.)
  if (n > inputSize) {
    inputAt = glue.input(n);
    inputSize = n;
  }
  heap.refresh();
  heap.u8.set(bytes, inputAt);
  if (!this._plain) return this._read(raw.push(n));
  var len = raw.push(n);
  heap.refresh();
  this._clean = heap.u32[this._results + 5] === 0;
  return emptyUpdate(heap.readString(heap.u32[this._results], len), false);
};

/** Copies bytes to the module's input buffer (wasm/src/lib.rs, `input`). */
function copyInput(bytes) {
  if (bytes.length > inputSize) {
    inputAt = glue.input(bytes.length);
    inputSize = bytes.length;
  }
  heap.refresh();
  heap.u8.set(bytes, inputAt);
}

/** The update of text a `_js` decoder queued (its bytes are in the core's pacer). */
StreamDecoder.prototype._queue = function (text, done) {
  if (text !== '') this._parts.push(text);
  heap.refresh();
  return this._tickOnly ? queuedUpdate(heap.u32[this._results + 2], done) : emptyUpdate(text, done);
};

/** The first `units` UTF-16 code units of a `_js` decoder's queued text, taken off it. */
StreamDecoder.prototype._take = function (units) {
  var parts = this._parts;
  var s = '';
  while (units > 0 && parts.length > 0) {
    var part = parts[0];
    if (units < part.length) {
      parts[0] = part.slice(units);
      return s + part.slice(0, units);
    }
    s += part;
    units -= part.length;
    parts.shift();
  }
  return s;
};

/** End of input: flushes what is held; `done` is then true. */
StreamDecoder.prototype.finish = function () {
  this._clean = false;
  return this._read(this._live().finish());
};

/** Back to a fresh stream with the same options. */
StreamDecoder.prototype.reset = function () {
  this._clean = false;
  this._parts = [];
  this._live().reset();
};

/** Frees the wasm memory of this decoder; it cannot be used afterwards. */
StreamDecoder.prototype.free = function () {
  if (this._raw !== null) {
    this._raw.free();
    this._raw = null;
  }
};

/** The next characters to show at time nowMs (e.g. Date.now()); never splits a grapheme. */
StreamDecoder.prototype.tick = function (nowMs) {
  // Called every animation frame, most often to show nothing or one character: kept to one
  // call of the core and nothing to read when it shows nothing.
  var raw = this._raw;
  if (raw === null) this._live();
  var shown = raw.tick(typeof nowMs === 'number' ? nowMs : Date.now(), this._utf8Min);
  return shown === 0 ? '' : this._js ? this._take(shown) : this._text(shown);
};

/** Everything decoded but not yet shown by tick, at once. */
StreamDecoder.prototype.skip = function () {
  var shown = this._live().skip(this._utf8Min);
  return this._js ? this._take(Infinity) : this._text(shown);
};

/** The text of a tick or skip (wasm/src/lib.rs, `shown`): up to three UTF-16 code units in
 * the number itself, read with arithmetic alone; longer text, negated, as `_shown` reads it. */
StreamDecoder.prototype._text = function (shown) {
  if (shown < 0) return this._shown(-shown);
  var count = shown & 3;
  var a = (shown >>> 2) & 65535;
  if (count < 2) return count === 0 ? '' : fromCharCode(a);
  var b = (shown / 262144) & 65535;
  return count === 2 ? fromCharCode(a, b) : fromCharCode(a, b, (shown / 17179869184) & 65535);
};

/** The text a call wrote: UTF-16 to read, or (MORE, from tick or skip) valid UTF-8 for the builtins. */
StreamDecoder.prototype._shown = function (result) {
  heap.refresh();
  var r = this._results;
  if ((result & MORE) !== 0) return decodeWithBuiltins(heap.u8.subarray(heap.u32[r + 3], heap.u32[r + 4]));
  return heap.readString(heap.u32[r], result);
};

/** Grapheme clusters decoded but not yet shown by tick. */
Object.defineProperty(StreamDecoder.prototype, 'pending', {
  get: function () {
    return this._live().pending();
  },
});

/** The last SSE event ID seen ('' when none): resume a cut stream with ?after= or Last-Event-ID. */
Object.defineProperty(StreamDecoder.prototype, 'lastEventId', {
  get: function () {
    return this._shown(this._live().last_event_id());
  },
});

/** The id of the answer once the provider's messages gave it (OpenAI's chunk `id`, the
 * Responses API's `response.id`, Anthropic's `message.id`, Gemini's `responseId`, Dify's
 * `message_id`; a relay's generation id), else null. */
Object.defineProperty(StreamDecoder.prototype, 'responseId', {
  get: function () {
    var lenPlusOne = this._live().response_id();
    return lenPlusOne === 0 ? null : this._shown(lenPlusOne - 1);
  },
});

/**
 * Reads the error body a provider answered with instead of a stream (OpenAI, Anthropic,
 * Gemini, DashScope, Dify, Ollama shapes): {type, message, code}, or null when the body is
 * not one (an HTML page from a proxy, an empty body). `type` is null when the provider named
 * none; `code` is the provider's code value (a string or a number) or null.
 */
export function readErrorBody(body) {
  if (glue === null) throw notLoaded('readErrorBody call');
  var bytes = toBytes(body);
  copyInput(bytes);
  var at = glue.read_error_body(bytes.length);
  if (at === 0) return null;
  heap.refresh();
  var r = heap.u32.subarray(at >>> 2, (at >>> 2) + 4);
  var type = r[1] === 0 ? 0 : r[1] - 1;
  var code = r[3] === 0 ? 0 : r[3] - 1;
  var all = heap.readString(r[0], type + r[2] + code);
  return {
    type: r[1] === 0 ? null : all.slice(0, type),
    message: all.slice(type, type + r[2]),
    code: r[3] === 0 ? null : parseJson(all.slice(type + r[2])),
  };
}

StreamDecoder.prototype._read = function (result) {
  heap.refresh();
  var h32 = heap.u32;
  var out = h32[this._results];
  var done = (result & DONE) !== 0;
  if ((result & MORE) === 0) {
    if (this._js) return this._queue(heap.readString(out, result & LEN_MASK), done);
    // Paced text stays out of the update (tick() gives it): only how much was queued.
    if (this._tickOnly) return queuedUpdate(h32[this._results + 2], done);
    return emptyUpdate(heap.readString(out, result & LEN_MASK), done);
  }
  var m = h32[this._results + 1] >>> 2;
  var errorCount = h32[m + 4];
  var eventCount = h32[m + 5];
  // One string for everything, then slices: one crossing instead of one per field.
  var total = h32[m] + h32[m + 1] + Math.max(h32[m + 2] - 1, 0) + Math.max(h32[m + 3] - 1, 0);
  var lens = h32.subarray(m + 6, m + 6 + 3 * (errorCount + eventCount));
  for (var i = 0; i < lens.length; i++) total += (i < 3 * errorCount && i % 3 === 2) ? Math.max(lens[i] - 1, 0) : lens[i];
  var all = heap.readString(out, total);
  var at = 0;
  function take(len) {
    var s = all.slice(at, at + len);
    at += len;
    return s;
  }
  function optional(lenPlusOne) {
    return lenPlusOne === 0 ? null : take(lenPlusOne - 1);
  }
  var update = emptyUpdate(take(h32[m]), done);
  if (this._tickOnly) update.queued = h32[this._results + 2];
  update.errors = [];
  update.events = [];
  update.reasoning = take(h32[m + 1]);
  update.finishReason = optional(h32[m + 2]);
  var usage = optional(h32[m + 3]);
  update.usage = usage === null ? null : parseJson(usage);
  var j = 0;
  for (i = 0; i < errorCount; i++, j += 3) {
    var type = take(lens[j]);
    var message = take(lens[j + 1]);
    var code = optional(lens[j + 2]);
    update.errors.push({ type: type, message: message, code: code === null ? null : parseJson(code) });
  }
  update.error = errorCount > 0 ? update.errors[0] : null;
  for (i = 0; i < eventCount; i++, j += 3) {
    update.events.push({ event: take(lens[j]), data: take(lens[j + 1]), id: take(lens[j + 2]) });
  }
  return update;
};
