// The request side of a ChatTask: one connection through a wx.request-shaped function
// (wx.request, uni.request, Taro.request, tt.request, or fetchRequest(fetch)), its status and
// headers, its chunks, and the body that `success` hands over when no chunk came.
import { encodeUtf8 } from '../utf8.js';

var MAX_ERROR_BODY = 65536;
export var GENERATION_HEADER = 'x-chunkwise-generation';

/** ChatTask methods (js/client/chat.js) for the live connection. */
export var transportMethods = {
  /** Starts a request; its callbacks act only while it is `this.conn` (a replaced one is ignored). */
  open: function (method, url, body, extraHeaders) {
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
      this.pendingError = { type: 'request_error', message: 'the request function threw: ' + (e && e.message ? e.message : String(e)), code: null, status: 0 };
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
  },

  onHeaders: function (conn, res) {
    if (typeof res.statusCode === 'number') conn.status = res.statusCode;
    conn.header = res.header || res.headers || null;
    var id = headerValue(conn.header, GENERATION_HEADER);
    if (id && this.id === null && conn.status < 300) this.id = id;
    if (conn.status >= 200 && conn.status < 300) this.setStatus('streaming');
  },

  onChunk: function (conn, data) {
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
  },

  onComplete: function (conn, res) {
    if (typeof res.statusCode === 'number') conn.status = res.statusCode;
    if (!conn.header && res.header) conn.header = res.header;
    var data = res.data;
    if (conn.chunks === 0 && data !== undefined && data !== null && byteLengthOrString(data) > 0) {
      // No chunk ever arrived: the whole body is here (PC WeChat, or a platform without
      // onChunkReceived, or an error body).
      if (typeof data === 'string') data = encodeUtf8(data);
      else if (typeof data === 'object' && !isBytes(data)) data = encodeUtf8(JSON.stringify(data));
      this.onChunk(conn, data);
    }
    this.onClosed(conn, null);
  },

  /** Stops the live request, if any, without a callback from it. */
  abortConn: function () {
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
  },
};

/** Calls the platform's request function as `wx.request(opts)` would be, not as a method of ours. */
export function callRequest(request, req) {
  return request.call(undefined, req);
}

export function assign(target, source) {
  if (source) for (var k in source) if (Object.prototype.hasOwnProperty.call(source, k)) target[k] = source[k];
  return target;
}

export function omit(headers, name) {
  var out = {};
  for (var k in headers) if (Object.prototype.hasOwnProperty.call(headers, k) && k.toLowerCase() !== name) out[k] = headers[k];
  return out;
}

/** The request body: an object as JSON, asking for a stream unless it says otherwise. */
export function makeBody(body) {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  // The relay (and every OpenAI-compatible server) streams only when asked to.
  var b = assign({}, body);
  if (b.stream === undefined) b.stream = true;
  return JSON.stringify(b);
}

/** A header's value, case-insensitively, from a plain object or a Headers-like `get`. */
export function headerValue(header, name) {
  if (!header) return null;
  if (typeof header.get === 'function') return header.get(name);
  for (var k in header) if (Object.prototype.hasOwnProperty.call(header, k) && k.toLowerCase() === name) return String(header[k]);
  return null;
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
