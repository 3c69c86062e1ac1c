// The Encoding API objects wasm-bindgen's glue creates (`new TextDecoder('utf-8', ...)`,
// `new TextEncoder()`), for the mini-program build only: a device has neither. esbuild's
// `inject` (tools/make-packages.js) points the glue's references to these globals here.
import { decodeUtf8, encodeUtf8 } from '../../utf8.js';

function Utf8Codec() {}
Utf8Codec.prototype.decode = function (bytes) {
  return bytes === undefined ? '' : decodeUtf8(bytes);
};
Utf8Codec.prototype.encode = function (text) {
  return encodeUtf8(text);
};
Utf8Codec.prototype.encodeInto = function (text, view) {
  var bytes = encodeUtf8(text);
  view.set(bytes.subarray(0, view.length));
  return { read: text.length, written: Math.min(bytes.length, view.length) };
};

export { Utf8Codec as TextDecoder, Utf8Codec as TextEncoder };
