// UTF-8 outside the wasm module, for the few strings that cross as bytes: a response body a
// platform handed over as text (wx.request's `success` may do that), and the short messages
// Rust writes (a panic). A device has no Encoding API; stream text itself crosses as UTF-16
// (wasm/src/lib.rs), so none of this is on the hot path.
// https://encoding.spec.whatwg.org/#utf-8-encoder and #utf-8-decoder

/** The UTF-8 bytes of a string; a lone surrogate becomes U+FFFD, as the Encoding API does. */
export function encodeUtf8(s) {
  var out = new Uint8Array(s.length * 3);
  var n = 0;
  for (var i = 0; i < s.length; i++) {
    var c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      var d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c < 0xe000) c = 0xfffd;
    if (c < 0x80) out[n++] = c;
    else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 63);
    } else if (c < 0x10000) {
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 63);
      out[n++] = 0x80 | (c & 63);
    } else {
      out[n++] = 0xf0 | (c >> 18);
      out[n++] = 0x80 | ((c >> 12) & 63);
      out[n++] = 0x80 | ((c >> 6) & 63);
      out[n++] = 0x80 | (c & 63);
    }
  }
  return out.subarray(0, n);
}

/**
 * The text of complete UTF-8 bytes; an ill-formed sequence becomes one U+FFFD per maximal
 * subpart. The input is whole (no streaming): wasm-bindgen hands over complete messages.
 */
export function decodeUtf8(bytes) {
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
}
