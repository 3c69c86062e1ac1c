// The Encoding API object wasm-bindgen's glue creates (`new TextDecoder('utf-8', ...)`, for the
// text of a panic or console message), for the mini-program build only: a device has none.
// esbuild's `inject` (tools/make-packages.js) points the glue's references to it here. No
// export of the decoder or Markdown module takes a string or an array, so the glue creates
// no `TextEncoder`; one that did would name the missing global, which the build rejects.
import { decodeUtf8 } from '../../utf8.js';

function Utf8Codec() {}
Utf8Codec.prototype.decode = function (bytes) {
  return bytes === undefined ? '' : decodeUtf8(bytes);
};

export { Utf8Codec as TextDecoder };
