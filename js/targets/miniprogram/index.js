// pkg/miniprogram/index.js: the decoder for a mini program (CommonJS after bundling). The
// request helper is client.js beside it, handed this build's StreamDecoder.
import * as glue from 'wasm-glue:decoder';
import { wasmLoader } from './load.js';
import { FORMATS as formats, StreamDecoder, bindDecoder, readErrorBody } from '../../decoder.js';

/** Loads chunkwise.wasm.br once; options.wasmPath overrides its package path. */
export var init = wasmLoader('chunkwise.wasm.br', './chunkwise_glue_bg.js', glue, bindDecoder);
// Required, not imported: esbuild's CommonJS output of an import (its `__toESM` interop
// helpers) would cost this file several hundred bytes, and client.js is CommonJS already.
var client = require('./client.js').default(StreamDecoder, readErrorBody);
export var streamChat = client.streamChat;
export var fetchRequest = client.fetchRequest;
export var FORMATS = formats.slice();
export { StreamDecoder };
