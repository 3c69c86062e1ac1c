// pkg/web/index.js: the decoder as an ES module for browsers; chunkwise_glue.js (wasm-bindgen's
// web glue) and client.js are the package's files beside it.
import initGlue, * as glue from './chunkwise_glue.js';
import makeClient from './client.js';
import { wasmLoader } from './load.js';
import { FORMATS as formats, StreamDecoder, bindDecoder, readErrorBody } from '../../decoder.js';

/** Loads the wasm once; options.wasmUrl overrides where chunkwise_glue_bg.wasm is fetched from. */
export var init = wasmLoader(initGlue, glue, bindDecoder);
var client = makeClient(StreamDecoder, readErrorBody);
export var streamChat = client.streamChat;
export var fetchRequest = client.fetchRequest;
export var FORMATS = formats.slice();
export { StreamDecoder };
