// pkg/node/index.js: the decoder for Node (CommonJS after bundling). wasm-bindgen's nodejs glue
// beside it reads and instantiates the wasm synchronously when required.
import * as glue from './chunkwise_glue.js';
import makeClient from './client.js';
import { FORMATS as formats, StreamDecoder, bindDecoder, readErrorBody } from '../../decoder.js';

bindDecoder(glue);
/** The module is loaded synchronously on Node; init() exists for the same code everywhere. */
export function init() {
  return Promise.resolve();
}
var client = makeClient(StreamDecoder, readErrorBody);
export var streamChat = client.streamChat;
export var fetchRequest = client.fetchRequest;
export var FORMATS = formats.slice();
export { StreamDecoder };
