// pkg/miniprogram/index.js: the decoder for a mini program (CommonJS after bundling). The
// request helper is client.js beside it, handed this build's StreamDecoder.
import * as glue from 'wasm-glue:decoder';
import makeClient from './client.js';
import { wasmLoader } from './load.js';
import { FORMATS as formats, StreamDecoder, bindDecoder, readErrorBody } from '../../decoder.js';

/** Loads chunkwise.wasm.br once; options.wasmPath overrides its package path. */
export var init = wasmLoader('chunkwise.wasm.br', './chunkwise_glue_bg.js', glue, bindDecoder);
var client = makeClient(StreamDecoder, readErrorBody);
export var streamChat = client.streamChat;
export var fetchRequest = client.fetchRequest;
export var FORMATS = formats.slice();
export { StreamDecoder };
