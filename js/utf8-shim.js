// A minimal UTF-8 codec standing in for the Encoding API inside the wasm-bindgen glue of the
// mini-program build (devices do not have it). Only short strings that Rust wrote take this
// path (a panic message), so the input is always valid UTF-8; stream text crosses as UTF-16.
function Utf8Shim() {}
Utf8Shim.prototype.decode = function (bytes) {
  if (bytes === undefined) return '';
  var out = '';
  for (var i = 0; i < bytes.length; ) {
    var b = bytes[i];
    var n = b < 0x80 ? 0 : b >= 0xf0 && b < 0xf5 ? 3 : b >= 0xe0 ? 2 : b >= 0xc2 ? 1 : -1;
    var cp = n === 3 ? b & 7 : n === 2 ? b & 15 : n === 1 ? b & 31 : b;
    var j = 1;
    for (; n > 0 && j <= n && i + j < bytes.length && (bytes[i + j] & 0xc0) === 0x80; j++) cp = (cp << 6) | (bytes[i + j] & 63);
    if (n < 0 || j <= n) {
      out += '\ufffd';
      i += Math.max(1, j);
      continue;
    }
    out += String.fromCodePoint(cp);
    i += n + 1;
  }
  return out;
};
Utf8Shim.prototype.encode = function (text) {
  var bytes = [];
  for (var i = 0; i < text.length; i++) {
    var c = text.codePointAt(i);
    if (c > 0xffff) i++;
    if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // a lone surrogate
    if (c < 0x80) bytes.push(c);
    else if (c < 0x800) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(bytes);
};
Utf8Shim.prototype.encodeInto = function (text, view) {
  var bytes = this.encode(text);
  view.set(bytes.subarray(0, view.length));
  return { read: text.length, written: Math.min(bytes.length, view.length) };
};
