// chunkwise client: the request side of a streamed chat answer, on top of StreamDecoder.
//
// This file has no import or export: tools/make-packages.js wraps it into each package's
// client.js as a function that is handed StreamDecoder (js/core.js) and returns `streamChat`
// and `fetchRequest`. It runs in a mini program's logic layer, so it uses only what a device
// has: no Encoding API, no browser globals, no wasm API of its own, no network function but
// the one it is given.
//
//   var task = streamChat({
//     request: wx.request,          // or uni.request, Taro.request, tt.request; in a browser
//                                   // fetchRequest(<the Fetch API function>), see below
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
// - resumes a cut stream (the ~60 s wx.request cap, a dropped connection, the 5 s background
//   limit, a stall) with `GET <base>/chat/stream/{id}?after=<last SSE id>`: the relay sends
//   exactly the events after the last complete one this client decoded, so nothing is lost or
//   repeated. A cut event (half received) is dropped from the decoder and comes again whole.
// - cancel(): aborts the request and POSTs `<base>/chat/stream/{id}/cancel`.
//
// Guarantees: exactly one of onDone / onError is called, after a last onUpdate whose view has
// `done: true`; no callback after that, nor after abort(). The decoders' wasm memory is freed
// when the task ends.
var streamChat = (function () {
  'use strict';

  var DEFAULT_INTERVAL_MS = 50;
  var DEFAULT_STALL_MS = 30000;
  var DEFAULT_MAX_ATTEMPTS = 5;
  var DEFAULT_RESUME_DELAY_MS = 500;
  var MAX_ERROR_BODY = 65536;
  var GENERATION_HEADER = 'x-chunkwise-generation';
  // The relay's resumable stream lives beside the OpenAI-compatible endpoint.
  var COMPLETIONS_PATH = '/chat/completions';

  /**
   * Streams one answer. See js/client.d.ts for the options and the view passed to onUpdate.
   * @returns {{cancel: function(): void, abort: function(): void, pause: function(): void,
   *   resume: function(): void, skip: function(): void, view: function(): object}}
   */
  function streamChat(options) {
    if (options === null || typeof options !== 'object') throw new TypeError('chunkwise: streamChat(options) needs an options object');
    if (typeof options.request !== 'function') {
      throw new TypeError('chunkwise: streamChat needs options.request: wx.request, uni.request, Taro.request, or fetchRequest(...) in a browser');
    }
    if (typeof options.url !== 'string' || options.url === '') throw new TypeError('chunkwise: streamChat needs options.url (the chat completions URL)');
    return new ChatTask(options);
  }

  function ChatTask(o) {
    var self = this;
    this.o = o;
    this.request = o.request;
    this.format = o.format === undefined ? 'openai' : o.format;
    this.paced = o.pace !== false;
    this.decoderOptions = { format: this.format, pace: o.pace, cumulative: o.cumulative === true };
    if (o.maxBufferBytes !== undefined) this.decoderOptions.maxBufferBytes = o.maxBufferBytes;
    this.intervalMs = positive(o.intervalMs !== undefined ? o.intervalMs : o.setDataIntervalMs, DEFAULT_INTERVAL_MS, 'intervalMs');
    this.stallMs = o.stallMs === 0 ? 0 : positive(o.stallMs, DEFAULT_STALL_MS, 'stallMs');
    var r = o.resume === undefined ? true : o.resume;
    this.resumeOpts = r === false ? null : typeof r === 'object' && r !== null ? r : {};
    this.maxAttempts = this.resumeOpts ? nonNegative(this.resumeOpts.maxAttempts, DEFAULT_MAX_ATTEMPTS, 'resume.maxAttempts') : 0;
    this.resumeDelayMs = this.resumeOpts ? nonNegative(this.resumeOpts.delayMs, DEFAULT_RESUME_DELAY_MS, 'resume.delayMs') : 0;
    this.headers = assign({ 'content-type': 'application/json', accept: 'text/event-stream' }, o.headers);
    this.body = makeBody(o.body);

    // What the page sees.
    this.id = null; // the generation id (header x-chunkwise-generation, else the first chunk's id)
    this.lastEventId = '';
    this.text = ''; // revealed answer text
    this.reasoning = '';
    this.sentText = 0; // lengths already passed to onUpdate
    this.sentReasoning = 0;
    this.finishReason = null;
    this.usage = null;
    this.error = null;
    this.warnings = [];
    this.status = 'connecting';
    this.resumes = 0;

    this.ended = false; // the stream delivered its end marker (or a fatal error, or cancel)
    this.stopped = false; // cancel() was called
    this.gotContent = false; // some answer text or reasoning was decoded
    this.closed = false; // callbacks done, resources freed
    this.paused = false;
    this.attempts = 0;
    this.conn = null; // the live request
    this.lastByteAt = 0;
    this.resumeTimer = null;
    this.dirty = false;
    // Decoders in stream order: each connection has its own (a cut leaves a partial event in
    // the old one); an old one is ticked until its typewriter backlog is shown, then freed.
    this.segments = [];

    this.timer = setInterval(function () {
      self.pump();
    }, this.intervalMs);
    this.open(o.method || 'POST', o.url, this.body, null);
  }

  // ---- connections -----------------------------------------------------------------

  ChatTask.prototype.newSegment = function () {
    var seg = { dec: new StreamDecoder(this.decoderOptions), ids: null, fed: 0, retired: false };
    // The last SSE event id is what a resume needs: StreamDecoder.lastEventId gives it. With a
    // decoder that lacks it (an older build), a second, unpaced 'sse' decoder on the same
    // bytes reports the events and their ids.
    this.nativeIds = typeof seg.dec.lastEventId === 'string';
    if (this.resumeOpts && !this.nativeIds && this.format !== 'sse') seg.ids = new StreamDecoder({ format: 'sse', pace: false });
    for (var i = 0; i < this.segments.length; i++) this.segments[i].retired = true;
    this.segments.push(seg);
    return seg;
  };

  ChatTask.prototype.open = function (method, url, body, extraHeaders) {
    var self = this;
    var conn = { status: 0, header: null, chunks: 0, errorParts: [], errorLen: 0, resume: method === 'GET' && this.id !== null, task: null, live: true };
    this.conn = conn;
    this.lastByteAt = Date.now();
    this.segment = this.newSegment();
    var req = {
      url: url,
      method: method,
      header: assign(method === 'GET' ? omit(this.headers, 'content-type') : assign({}, this.headers), extraHeaders),
      enableChunked: true,
      responseType: 'arraybuffer',
      dataType: 'arraybuffer', // anything but 'json': never parse the body
      success: function (res) {
        if (conn.live) self.onComplete(conn, res);
      },
      fail: function (res) {
        if (conn.live) self.onClosed(conn, (res && res.errMsg) || 'request:fail');
      },
    };
    if (body !== undefined) req.data = body;
    if (this.o.timeout !== undefined) req.timeout = this.o.timeout;
    var task;
    try {
      task = callRequest(this.request, req);
    } catch (e) {
      conn.live = false;
      this.conn = null;
      // Reported from the timer, not from inside streamChat(): callbacks are never synchronous.
      this.pendingError = { type: 'request_error', message: 'the request function threw: ' + messageOf(e), code: null, status: 0 };
      return;
    }
    conn.task = task;
    if (task && typeof task.onHeadersReceived === 'function') {
      task.onHeadersReceived(function (res) {
        if (conn.live) self.onHeaders(conn, res || {});
      });
    }
    if (task && typeof task.onChunkReceived === 'function') {
      task.onChunkReceived(function (res) {
        if (conn.live && res) self.onChunk(conn, res.data);
      });
    }
  };

  ChatTask.prototype.onHeaders = function (conn, res) {
    if (typeof res.statusCode === 'number') conn.status = res.statusCode;
    conn.header = res.header || res.headers || null;
    var id = headerValue(conn.header, GENERATION_HEADER);
    if (id && this.id === null && conn.status < 300) this.id = id;
    if (conn.status >= 200 && conn.status < 300) this.setStatus('streaming');
  };

  ChatTask.prototype.onChunk = function (conn, data) {
    if (data === undefined || data === null) return;
    this.lastByteAt = Date.now();
    conn.chunks++;
    if (conn.status >= 300) {
      // An error body: keep it (bounded) for the message.
      if (conn.errorLen < MAX_ERROR_BODY) {
        conn.errorParts.push(data);
        conn.errorLen += byteLength(data);
      }
      return;
    }
    this.feed(data);
  };

  ChatTask.prototype.onComplete = function (conn, res) {
    if (typeof res.statusCode === 'number') conn.status = res.statusCode;
    if (!conn.header && res.header) conn.header = res.header;
    var data = res.data;
    if (conn.chunks === 0 && data !== undefined && data !== null && byteLengthOrString(data) > 0) {
      // No chunk ever arrived: the whole body is here (PC WeChat, or a platform without
      // onChunkReceived, or an error body).
      if (typeof data === 'string') data = utf8Bytes(data);
      else if (typeof data === 'object' && !isBytes(data)) data = utf8Bytes(JSON.stringify(data));
      this.onChunk(conn, data);
    }
    this.onClosed(conn, null);
  };

  /** The connection is over (`success` or `fail`): end, resume, or report. */
  ChatTask.prototype.onClosed = function (conn, errMsg) {
    conn.live = false;
    if (this.conn === conn) this.conn = null;
    if (this.closed) return;
    var status = conn.status;
    if (status >= 300 || (status === 0 && errMsg === null)) {
      this.fail(httpError(conn, this.decodeErrorBody(conn)));
      return;
    }
    if (this.ended) return; // the end marker arrived: pump() finishes once everything is shown
    // Cut before the end marker.
    var why = errMsg || 'the connection closed before the answer ended';
    if (!this.resumeOpts) {
      this.fail({ type: 'network_error', message: why, code: null, status: status });
      return;
    }
    if (this.id === null) {
      // Without a generation id there is nothing to resume. Before any answer arrived the
      // request is simply reported (the page offers a retry).
      this.fail({ type: 'network_error', message: why, code: null, status: status });
      return;
    }
    if (this.lastEventId === '' && this.gotContent) {
      // Text arrived without SSE event ids (a 'text' or NDJSON stream): a resume could not
      // say where to continue, and starting over would repeat what is shown.
      this.fail({ type: 'network_error', message: why + ' (the stream has no event ids to resume from)', code: null, status: status });
      return;
    }
    this.scheduleResume(why);
  };

  ChatTask.prototype.scheduleResume = function (why) {
    var self = this;
    if (this.attempts >= this.maxAttempts) {
      this.fail({ type: 'network_error', message: 'the connection was lost and ' + this.attempts + ' attempts to resume failed (' + why + ')', code: null, status: 0 });
      return;
    }
    this.lastCut = why;
    if (this.paused) {
      this.setStatus('paused'); // resume() (onShow) reconnects
      return;
    }
    this.setStatus('resuming');
    var delay = this.attempts === 0 ? 0 : Math.min(this.resumeDelayMs * this.attempts, 5000);
    this.attempts++;
    this.resumeTimer = setTimeout(function () {
      self.resumeTimer = null;
      self.reconnect();
    }, delay);
  };

  ChatTask.prototype.reconnect = function () {
    if (this.closed || this.ended || this.conn !== null) return;
    this.resumes++;
    this.dirty = true;
    var after = this.lastEventId === '' ? '0' : this.lastEventId;
    var custom = this.resumeOpts && this.resumeOpts.url;
    var url = typeof custom === 'function' ? custom(this.id, after) : relayUrl(this.o.url, '/chat/stream/' + encodeURIComponent(this.id), 'after=' + encodeURIComponent(after));
    this.open('GET', url, undefined, { 'last-event-id': after });
  };

  // ---- decoding ----------------------------------------------------------------------

  ChatTask.prototype.feed = function (data) {
    var seg = this.segment;
    if (seg.fed++ === 0 && seg.ids === null && this.id === null && this.format !== 'sse') {
      // No x-chunkwise-generation header (a proxy dropped it, or CORS hid it): the relay's
      // chunk id is the generation id, so read the first events until it shows.
      seg.ids = new StreamDecoder({ format: 'sse', pace: false });
    }
    var u = seg.dec.push(data);
    if (seg.ids !== null) {
      var events = seg.ids.push(data).events;
      for (var i = 0; i < events.length; i++) this.sawEvent(events[i]);
      if (this.nativeIds && this.id !== null) {
        seg.ids.free();
        seg.ids = null;
      }
    } else if (this.format === 'sse') {
      for (var j = 0; j < u.events.length; j++) this.sawEvent(u.events[j]);
    }
    if (this.nativeIds) {
      var last = seg.dec.lastEventId;
      if (last !== '') this.lastEventId = last;
    }
    this.apply(u);
  };

  ChatTask.prototype.sawEvent = function (e) {
    if (e.id !== '') this.lastEventId = e.id;
    if (this.id === null && e.data.charAt(0) === '{') {
      // No generation header (a proxy dropped it): the relay's chunk id is the generation id.
      try {
        var chunk = JSON.parse(e.data);
        if (chunk && typeof chunk.id === 'string' && chunk.id !== '') this.id = chunk.id;
      } catch (err) {
        // not JSON: the decoder reports it
      }
    }
  };

  ChatTask.prototype.apply = function (u) {
    if (u.text !== '' || u.reasoning !== '') {
      this.gotContent = true;
      this.attempts = 0; // the connection works
    }
    if (!this.paced) this.text += u.text;
    if (u.reasoning !== '') this.reasoning += u.reasoning;
    if (u.finishReason !== null) this.finishReason = u.finishReason;
    if (u.usage !== null) this.usage = u.usage;
    if (u.text !== '' || u.reasoning !== '' || u.finishReason !== null || u.usage !== null) this.dirty = true;
    for (var i = 0; i < u.errors.length; i++) {
      var e = u.errors[i];
      if (e.type === 'bad_event' || e.type === 'buffer_limit') {
        // The decoder skipped something it could not read and went on: worth knowing, not fatal.
        if (this.warnings.length < 20) this.warnings.push(e);
        this.dirty = true;
      } else if (this.error === null) {
        // An error event from the server: the answer ends here (text so far is kept).
        this.error = { type: e.type, message: e.message, code: e.code, status: 200 };
      }
    }
    if (this.error !== null) {
      this.end();
      this.fail(this.error);
      return;
    }
    if (u.done) this.end();
  };

  /** No more input: stop the connection and let the typewriter drain. */
  ChatTask.prototype.end = function () {
    if (this.ended) return;
    this.ended = true;
    if (this.resumeTimer !== null) {
      clearTimeout(this.resumeTimer);
      this.resumeTimer = null;
    }
    if (this.conn !== null) {
      // After the end marker the body is over; detach so that a late `fail` changes nothing.
      this.conn.live = false;
      this.conn = null;
    }
  };

  ChatTask.prototype.decodeErrorBody = function (conn) {
    if (conn.errorLen === 0) return '';
    var d = new StreamDecoder({ format: 'text', pace: false });
    var s = '';
    try {
      for (var i = 0; i < conn.errorParts.length; i++) s += d.push(conn.errorParts[i]).text;
      s += d.finish().text;
    } finally {
      d.free();
    }
    return s;
  };

  // ---- the timer: typewriter, batched updates, stalls --------------------------------

  ChatTask.prototype.pump = function () {
    if (this.closed) return;
    if (this.pendingError) {
      this.fail(this.pendingError);
      return;
    }
    var now = Date.now();
    if (this.conn !== null && this.stallMs > 0 && now - this.lastByteAt > this.stallMs) {
      // Nothing at all (not even the relay's 15 s heartbeat) for stallMs: the connection is
      // dead without having said so (this happens after the app was in the background).
      var conn = this.conn;
      this.abortConn();
      this.onClosed(conn, 'no data for ' + this.stallMs + ' ms');
      if (this.closed) return;
    }
    var shown = this.reveal(now);
    if (shown !== '') {
      this.text += shown;
      this.dirty = true;
    }
    if (this.ended && this.drained()) {
      this.finish();
      return;
    }
    if (this.dirty) this.emit();
  };

  /** Ticks the decoders in order: an old one's backlog is shown before the next one's. */
  ChatTask.prototype.reveal = function (now) {
    if (!this.paced) return '';
    var out = '';
    while (this.segments.length > 0) {
      var seg = this.segments[0];
      out += seg.dec.tick(now);
      if (seg.retired && seg.dec.pending === 0) {
        // The typewriter holds back the last grapheme (more of it could follow); in a
        // retired decoder nothing follows, and finish() would parse its cut event.
        out += seg.dec.skip();
        freeSegment(seg);
        this.segments.shift();
        continue;
      }
      break;
    }
    return out;
  };

  ChatTask.prototype.drained = function () {
    if (!this.paced) return true;
    for (var i = 0; i < this.segments.length; i++) if (this.segments[i].dec.pending > 0) return false;
    return true;
  };

  /** Shows all the text decoded so far at once. */
  ChatTask.prototype.flush = function () {
    if (!this.paced) return;
    for (var i = 0; i < this.segments.length; i++) this.text += this.segments[i].dec.skip();
  };

  ChatTask.prototype.view = function () {
    var v = {
      id: this.id,
      text: this.text,
      reasoning: this.reasoning,
      delta: this.text.slice(this.sentText),
      reasoningDelta: this.reasoning.slice(this.sentReasoning),
      done: this.closed,
      status: this.status,
      error: this.error,
      finishReason: this.finishReason,
      usage: this.usage,
      resumes: this.resumes,
      warnings: this.warnings.slice(),
    };
    return v;
  };

  ChatTask.prototype.emit = function () {
    var v = this.view();
    this.sentText = this.text.length;
    this.sentReasoning = this.reasoning.length;
    this.dirty = false;
    if (typeof this.o.onUpdate === 'function') this.o.onUpdate(v);
    return v;
  };

  ChatTask.prototype.setStatus = function (status) {
    if (this.status !== status && !this.closed) {
      this.status = status;
      this.dirty = true;
    }
  };

  // ---- the end -----------------------------------------------------------------------

  ChatTask.prototype.finish = function () {
    this.status = this.error !== null ? 'error' : this.stopped ? 'stopped' : 'done';
    this.close();
    var v = this.emit();
    if (this.error !== null) {
      if (typeof this.o.onError === 'function') this.o.onError(this.error, v);
    } else if (typeof this.o.onDone === 'function') {
      this.o.onDone(v);
    }
  };

  ChatTask.prototype.fail = function (error) {
    if (this.closed) return;
    if (this.error === null) this.error = error;
    this.ended = true;
    this.abortConn();
    this.flush();
    this.finish();
  };

  ChatTask.prototype.close = function () {
    this.closed = true;
    clearInterval(this.timer);
    if (this.resumeTimer !== null) clearTimeout(this.resumeTimer);
    this.resumeTimer = null;
    this.abortConn();
    for (var i = 0; i < this.segments.length; i++) freeSegment(this.segments[i]);
    this.segments = [];
  };

  ChatTask.prototype.abortConn = function () {
    var conn = this.conn;
    if (conn === null) return;
    conn.live = false;
    this.conn = null;
    if (conn.task && typeof conn.task.abort === 'function') {
      try {
        conn.task.abort();
      } catch (e) {
        // already over
      }
    }
  };

  // ---- the public methods ------------------------------------------------------------

  /** The stop button: abort the request, tell the relay to stop generating, show what came. */
  ChatTask.prototype.cancel = function () {
    if (this.closed) return;
    var id = this.id;
    var running = !this.ended;
    this.stopped = true;
    this.ended = true;
    this.abortConn();
    if (running && id !== null && this.o.cancelUrl !== false) {
      var url = typeof this.o.cancelUrl === 'function' ? this.o.cancelUrl(id) : relayUrl(this.o.url, '/chat/stream/' + encodeURIComponent(id) + '/cancel', '');
      try {
        callRequest(this.request, { url: url, method: 'POST', header: omit(this.headers, 'accept'), data: '{}', success: noop, fail: noop });
      } catch (e) {
        // best effort: the relay cancels a generation nobody reads after its grace period
      }
    }
    this.flush();
    this.finish();
  };

  /** Stop without any further callback and without telling the relay (page unload). */
  ChatTask.prototype.abort = function () {
    if (this.closed) return;
    this.ended = true;
    this.close();
  };

  /** The app goes to the background (onHide): a cut from now on waits for resume(). */
  ChatTask.prototype.pause = function () {
    this.paused = true;
  };

  /**
   * The app is back (onShow), or a retry: reconnect now if the stream was cut. A connection
   * that has been silent for more than 3 s is presumed dead and replaced (resuming is lossless).
   */
  ChatTask.prototype.resume = function () {
    this.paused = false;
    if (this.closed || this.ended) return;
    if (this.conn !== null) {
      if (Date.now() - this.lastByteAt <= 3000 || this.id === null) return;
      this.abortConn();
    }
    if (this.resumeTimer !== null) {
      clearTimeout(this.resumeTimer);
      this.resumeTimer = null;
    }
    if (this.id === null) return;
    this.attempts = 0;
    this.setStatus('resuming');
    this.reconnect();
  };

  /** Show everything decoded so far at once (a tap on the typing answer). */
  ChatTask.prototype.skip = function () {
    if (this.closed) return;
    this.flush();
    this.dirty = true;
    this.pump();
  };

  function Controller(task) {
    this.cancel = function () {
      task.cancel();
    };
    this.abort = function () {
      task.abort();
    };
    this.pause = function () {
      task.pause();
    };
    this.resume = function () {
      task.resume();
    };
    this.skip = function () {
      task.skip();
    };
    this.view = function () {
      return task.view();
    };
  }

  // ---- helpers -----------------------------------------------------------------------

  function noop() {}

  /** Calls the platform's request function as `wx.request(opts)` would be, not as a method of ours. */
  function callRequest(request, req) {
    return request.call(undefined, req);
  }

  function freeSegment(seg) {
    seg.dec.free();
    if (seg.ids !== null) seg.ids.free();
  }

  function positive(value, fallback, name) {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !(value > 0) || value === Infinity) throw new TypeError('chunkwise: option ' + name + ' must be a positive number, got ' + String(value));
    return value;
  }

  function nonNegative(value, fallback, name) {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !(value >= 0) || value === Infinity) throw new TypeError('chunkwise: option ' + name + ' must be a number >= 0, got ' + String(value));
    return value;
  }

  function assign(target, source) {
    if (source) for (var k in source) if (Object.prototype.hasOwnProperty.call(source, k)) target[k] = source[k];
    return target;
  }

  function omit(headers, name) {
    var out = {};
    for (var k in headers) if (Object.prototype.hasOwnProperty.call(headers, k) && k.toLowerCase() !== name) out[k] = headers[k];
    return out;
  }

  function makeBody(body) {
    if (body === undefined || body === null) return undefined;
    if (typeof body === 'string') return body;
    // The relay (and every OpenAI-compatible server) streams only when asked to.
    var b = assign({}, body);
    if (b.stream === undefined) b.stream = true;
    return JSON.stringify(b);
  }

  function headerValue(header, name) {
    if (!header) return null;
    if (typeof header.get === 'function') return header.get(name);
    for (var k in header) if (Object.prototype.hasOwnProperty.call(header, k) && k.toLowerCase() === name) return String(header[k]);
    return null;
  }

  /** `<the URL up to /chat/completions><path>?<extra>&<the original query>` */
  function relayUrl(url, path, extra) {
    var q = url.indexOf('?');
    var base = q < 0 ? url : url.slice(0, q);
    var query = q < 0 ? '' : url.slice(q + 1);
    var root = base.slice(-COMPLETIONS_PATH.length) === COMPLETIONS_PATH ? base.slice(0, -COMPLETIONS_PATH.length) : base.replace(/\/+$/, '');
    var all = extra && query ? extra + '&' + query : extra || query;
    return root + path + (all ? '?' + all : '');
  }

  function httpError(conn, bodyText) {
    var status = conn.status;
    var info = null;
    try {
      info = bodyText ? JSON.parse(bodyText) : null;
    } catch (e) {
      info = null;
    }
    var inner = info && typeof info === 'object' ? (info.error && typeof info.error === 'object' ? info.error : info) : null;
    var message = inner && typeof inner.message === 'string' ? inner.message : inner && typeof inner.errMsg === 'string' ? inner.errMsg : bodyText ? bodyText.slice(0, 300) : '';
    var retryAfter = headerValue(conn.header, 'retry-after');
    if (message === '') message = status === 0 ? 'no response' : 'HTTP ' + status;
    if (retryAfter) message += ' (retry after ' + retryAfter + ' s)';
    var type = inner && typeof inner.type === 'string' ? inner.type : 'http_error';
    if (conn.resume && (status === 404 || status === 410)) type = 'resume_failed';
    return { type: type, message: message, code: inner && inner.code !== undefined ? inner.code : null, status: status };
  }

  function messageOf(e) {
    return e && e.message ? e.message : String(e);
  }

  function isBytes(x) {
    return x instanceof ArrayBuffer || ArrayBuffer.isView(x) || (x && typeof x.byteLength === 'number' && typeof x.slice === 'function');
  }

  function byteLength(x) {
    return typeof x.byteLength === 'number' ? x.byteLength : 0;
  }

  function byteLengthOrString(x) {
    if (typeof x === 'string') return x.length;
    if (isBytes(x)) return x.byteLength;
    return typeof x === 'object' ? 1 : 0;
  }

  /** UTF-8 bytes of a string (the body came as text: no encoder on a device). */
  function utf8Bytes(s) {
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
      if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // a lone surrogate
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

  return function (options) {
    return new Controller(streamChat(options));
  };
})();

/**
 * A request function with wx.request's shape (enableChunked, onHeadersReceived,
 * onChunkReceived, success, fail, complete, abort) made from the Fetch API's function and a
 * ReadableStream body, so that streamChat runs the same in a browser (or in Node 18+):
 *   streamChat({ request: fetchRequest(<the Fetch API function>), ... })
 * `timeout` is honoured when given (browsers have no cap of their own). This file names no
 * browser global itself: it is part of the mini-program build too.
 */
function fetchRequest(fetchImpl) {
  'use strict';
  if (typeof fetchImpl !== 'function') throw new TypeError('chunkwise: fetchRequest(f) needs the Fetch API function (of the page or of Node 18+)');
  return function request(o) {
    var aborted = false;
    var finished = false;
    var headerCbs = [];
    var chunkCbs = [];
    var controller = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = null;
    var method = (o.method || 'GET').toUpperCase();
    var init = { method: method, headers: o.header || {}, cache: 'no-store' };
    if (controller !== null) init.signal = controller.signal;
    if (o.data !== undefined && method !== 'GET' && method !== 'HEAD') init.body = typeof o.data === 'string' || o.data instanceof ArrayBuffer ? o.data : JSON.stringify(o.data);
    function end(ok, res) {
      if (finished) return;
      finished = true;
      if (timer !== null) clearTimeout(timer);
      if (ok && typeof o.success === 'function') o.success(res);
      if (!ok && typeof o.fail === 'function') o.fail(res);
      if (typeof o.complete === 'function') o.complete(res);
    }
    function each(cbs, arg) {
      var list = cbs.slice();
      for (var i = 0; i < list.length; i++) list[i](arg);
    }
    function arrayBufferOf(view) {
      if (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength) return view.buffer;
      return view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
    }
    if (typeof o.timeout === 'number' && o.timeout > 0) {
      timer = setTimeout(function () {
        if (finished) return;
        aborted = true;
        if (controller !== null) controller.abort();
        end(false, { errMsg: 'request:fail timeout' });
      }, o.timeout);
    }
    Promise.resolve()
      .then(function () {
        return fetchImpl(o.url, init);
      })
      .then(function (res) {
        if (aborted) return undefined;
        var header = {};
        res.headers.forEach(function (value, key) {
          header[key] = value;
        });
        each(headerCbs, { statusCode: res.status, header: header });
        var reader = o.enableChunked && res.body && typeof res.body.getReader === 'function' ? res.body.getReader() : null;
        if (reader === null) {
          return res.arrayBuffer().then(function (buf) {
            if (!aborted) end(true, { statusCode: res.status, header: header, data: buf, errMsg: 'request:ok' });
          });
        }
        var pump = function () {
          return reader.read().then(function (r) {
            if (aborted) return undefined;
            if (r.done) {
              end(true, { statusCode: res.status, header: header, data: new ArrayBuffer(0), errMsg: 'request:ok' });
              return undefined;
            }
            each(chunkCbs, { data: arrayBufferOf(r.value) });
            return pump();
          });
        };
        return pump();
      })
      .catch(function (e) {
        if (!aborted) end(false, { errMsg: 'request:fail ' + (e && e.message ? e.message : String(e)) });
      });
    return {
      abort: function () {
        if (finished) return;
        aborted = true;
        if (controller !== null) controller.abort();
        end(false, { errMsg: 'request:fail abort' });
      },
      onHeadersReceived: function (cb) {
        headerCbs.push(cb);
      },
      offHeadersReceived: function (cb) {
        headerCbs = cb === undefined ? [] : headerCbs.filter(function (f) { return f !== cb; });
      },
      onChunkReceived: function (cb) {
        chunkCbs.push(cb);
      },
      offChunkReceived: function (cb) {
        chunkCbs = cb === undefined ? [] : chunkCbs.filter(function (f) { return f !== cb; });
      },
    };
  };
}
