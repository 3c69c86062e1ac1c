// Views of a wasm module's linear memory, shared by the decoder (decoder.js) and the Markdown
// renderer (markdown.js): each binding crosses text as UTF-16 code units in its memory
// (wasm/src/lib.rs, markdown/src/wasm.rs), never through the Encoding API, which a device lacks.

var fromCharCode = String.fromCharCode;

/** The views of `memory` (a WebAssembly.Memory, or WXWebAssembly's). */
export function WasmHeap(memory) {
  this.memory = memory;
  this.u8 = null;
  this.u16 = null;
  this.u32 = null;
  this.refresh();
}

/** Call after any call into wasm, before reading: memory growth detaches the old views. */
WasmHeap.prototype.refresh = function () {
  // A detached view's length is 0. Reading memory.buffer on every call is measurably slow; a
  // length check is not.
  if (this.u8 === null || this.u8.byteLength === 0) {
    var buffer = this.memory.buffer;
    this.u8 = new Uint8Array(buffer);
    this.u16 = new Uint16Array(buffer);
    this.u32 = new Uint32Array(buffer);
  }
};

/** `len` UTF-16 code units at byte address `ptr` as a JS string. */
WasmHeap.prototype.readString = function (ptr, len) {
  // Fixed-arity fromCharCode calls, sixteen units at a time, joined with +=: measured 2-3x
  // faster in V8 than fromCharCode.apply on a typed-array view (which copies the view into
  // an argument list first), flattening of the joined string included.
  var h = this.u16;
  var at = ptr >>> 1;
  var end = at + len;
  var out = '';
  for (; at + 16 <= end; at += 16) {
    out += fromCharCode(
      h[at], h[at + 1], h[at + 2], h[at + 3], h[at + 4], h[at + 5], h[at + 6], h[at + 7],
      h[at + 8], h[at + 9], h[at + 10], h[at + 11], h[at + 12], h[at + 13], h[at + 14], h[at + 15]
    );
  }
  if (at + 8 <= end) {
    out += readShort(h, at, 8);
    at += 8;
  }
  return at < end ? out + readShort(h, at, end - at) : out;
};

/** Writes the UTF-16 code units of `text` at byte address `ptr` (room for text.length units). */
WasmHeap.prototype.writeString = function (ptr, text) {
  var h = this.u16;
  var at = ptr >>> 1;
  for (var i = 0; i < text.length; i++) h[at + i] = text.charCodeAt(i);
};

function readShort(h, at, len) {
  switch (len) {
    case 0: return '';
    case 1: return fromCharCode(h[at]);
    case 2: return fromCharCode(h[at], h[at + 1]);
    case 3: return fromCharCode(h[at], h[at + 1], h[at + 2]);
    case 4: return fromCharCode(h[at], h[at + 1], h[at + 2], h[at + 3]);
    case 5: return fromCharCode(h[at], h[at + 1], h[at + 2], h[at + 3], h[at + 4]);
    case 6: return fromCharCode(h[at], h[at + 1], h[at + 2], h[at + 3], h[at + 4], h[at + 5]);
    case 7: return fromCharCode(h[at], h[at + 1], h[at + 2], h[at + 3], h[at + 4], h[at + 5], h[at + 6]);
    default: return fromCharCode(h[at], h[at + 1], h[at + 2], h[at + 3], h[at + 4], h[at + 5], h[at + 6], h[at + 7]);
  }
}

/** The error for a wrapper created before its module's init() resolved. */
export function notLoaded(what) {
  return new Error('chunkwise: the wasm module is not loaded yet; await init() before creating a ' + what);
}

/** A value, described for an error message about what an API was given. */
export function describe(value) {
  if (value === null) return 'null';
  if (typeof value === 'string') return 'a string (decode bytes, not text: pass res.data as it comes)';
  if (typeof value === 'object') return 'an object ' + Object.prototype.toString.call(value);
  return typeof value;
}
