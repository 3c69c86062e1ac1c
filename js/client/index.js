// chunkwise client: the request side of a streamed chat answer, on top of StreamDecoder.
// Each package ships it as client.js beside index.js, which hands it the StreamDecoder of
// its own build (so the decoder glue stays small and loads once). It runs in a mini program's
// logic layer, so it uses only what a device has: no Encoding API, no browser globals, no
// wasm API of its own, no network function but the one it is given.
//
//   var task = streamChat({
//     request: wx.request,          // or uni.request, Taro.request, tt.request; in a browser
//                                   // fetchRequest(<the Fetch API function>)
//     url: 'https://relay.example.com/v1/chat/completions',
//     body: { model: 'demo', messages: [{ role: 'user', content: '你好' }] },
//     onUpdate: function (view) { page.setData({ 'msgs[3].text': view.text }); },
//   });
//   task.cancel();                       // the stop button: abort + tell the relay to stop
//
// What it does, so that a page does not have to:
// - starts the request with enableChunked and feeds every onChunkReceived ArrayBuffer to a
//   StreamDecoder; reads the status and headers in onHeadersReceived; a non-2xx body (from
//   the chunks or from `success`) becomes one error with the body's own message;
// - falls back to the `success` body when no chunk ever arrived (PC WeChat does that);
// - drives the decoder's typewriter (`tick`) on one timer and calls onUpdate at most once per
//   `intervalMs` (default 50 ms: at most 20 setData calls a second), only when something changed;
// - resumes a cut stream (resume.js);
// - cancel(): aborts the request and POSTs `<base>/chat/stream/{id}/cancel`.
//
// Guarantees: exactly one of onDone / onError is called, after a last onUpdate whose view has
// `done: true`; no callback after that, nor after abort(). The decoders' wasm memory is freed
// when the task ends.
import { startChat, Controller } from './chat.js';
import { fetchRequest } from './fetch-request.js';

/**
 * `streamChat` and `fetchRequest` over the decoder of the build that loads this file:
 * `StreamDecoder`, and `readErrorBody(bytes)`, the core's reader of providers' error bodies.
 */
export default function makeClient(StreamDecoder, readErrorBody) {
  var decoding = { Decoder: StreamDecoder, readErrorBody: readErrorBody };
  return {
    streamChat: function streamChat(options) {
      return new Controller(startChat(options, decoding));
    },
    fetchRequest: fetchRequest,
  };
}
