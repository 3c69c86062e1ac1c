// ChatTask: one streamed answer, from the request to the last onUpdate. The concerns live in
// their own files and are mixed into ChatTask.prototype here:
//   transport.js  the live request (wx.request-shaped), its status, headers and chunks
//   resume.js     what a cut means, and the relay's resume and cancel protocol
//   timer.js      the typewriter and update timer
//   errors.js     a failed response as a ChatError
//   view.js       what each update changes, as a setData object
// This file holds the state, the decoding, and the public methods.
import { transportMethods, assign, makeBody } from './transport.js';
import { Parts, Changes, DEFAULT_PART_LENGTH } from './view.js';
import { resumeMethods } from './resume.js';
import { timerMethods } from './timer.js';

var DEFAULT_INTERVAL_MS = 50;
var DEFAULT_STALL_MS = 30000;
var DEFAULT_MAX_ATTEMPTS = 5;
var DEFAULT_RESUME_DELAY_MS = 500;
var MAX_WARNINGS = 20;

/** Checks the options and starts the request; `decoding`: the package's {Decoder, readErrorBody}. */
export function startChat(options, decoding) {
  if (options === null || typeof options !== 'object') throw new TypeError('chunkwise: streamChat(options) needs an options object');
  if (typeof options.request !== 'function') {
    throw new TypeError('chunkwise: streamChat needs options.request: wx.request, uni.request, Taro.request, or fetchRequest(...) in a browser');
  }
  if (typeof options.url !== 'string' || options.url === '') throw new TypeError('chunkwise: streamChat needs options.url (the chat completions URL)');
  var md = options.markdown;
  if (md !== undefined && md !== null && !(typeof md.append === 'function' && typeof md.finish === 'function' && typeof md.dataFor === 'function')) {
    throw new TypeError('chunkwise: option markdown must be a MarkdownRenderer (from chunkwise/markdown)');
  }
  return new ChatTask(options, decoding);
}

function ChatTask(o, decoding) {
  this.o = o;
  this.Decoder = decoding.Decoder;
  this.readErrorBody = decoding.readErrorBody;
  this.request = o.request;
  this.format = o.format === undefined ? 'openai' : o.format;
  this.paced = o.pace !== false;
  // Paced text is read from tick() only: the updates need not carry it too.
  this.decoderOptions = { format: this.format, pace: o.pace, cumulative: o.cumulative === true, pacedUpdateText: false };
  if (o.maxBufferBytes !== undefined) this.decoderOptions.maxBufferBytes = o.maxBufferBytes;
  this.intervalMs = positive(o.intervalMs !== undefined ? o.intervalMs : o.setDataIntervalMs, DEFAULT_INTERVAL_MS, 'intervalMs');
  this.stallMs = o.stallMs === 0 ? 0 : positive(o.stallMs, DEFAULT_STALL_MS, 'stallMs');
  var r = o.resume === undefined ? true : o.resume;
  this.resumeOpts = r === false ? null : typeof r === 'object' && r !== null ? r : {};
  this.maxAttempts = this.resumeOpts ? nonNegative(this.resumeOpts.maxAttempts, DEFAULT_MAX_ATTEMPTS, 'resume.maxAttempts') : 0;
  this.resumeDelayMs = this.resumeOpts ? nonNegative(this.resumeOpts.delayMs, DEFAULT_RESUME_DELAY_MS, 'resume.delayMs') : 0;
  this.headers = assign({ 'content-type': 'application/json', accept: 'text/event-stream' }, o.headers);
  this.body = makeBody(o.body);
  var partLength = positive(o.partLength, DEFAULT_PART_LENGTH, 'partLength');
  this.markdown = o.markdown || null; // handed over: finished and freed when the answer ends
  this.withText = o.textParts !== false && this.markdown === null; // textParts in view.setData
  this.blockCount = 0; // the renderer's block count as the page last saw it
  this.textParts = new Parts(partLength);
  this.reasoningParts = new Parts(partLength);
  this.sentStatus = null;

  // What the page sees.
  this.id = null; // the generation id (header x-chunkwise-generation, else the answer's id)
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

  this.startTimer();
  this.open(o.method || 'POST', o.url, this.body, null);
}

assign(ChatTask.prototype, transportMethods);
assign(ChatTask.prototype, resumeMethods);
assign(ChatTask.prototype, timerMethods);

// ---- decoding ------------------------------------------------------------------------

/** A decoder for a new connection; the previous ones are retired (ticked until drained). */
ChatTask.prototype.newSegment = function () {
  var seg = { dec: new this.Decoder(this.decoderOptions), retired: false };
  for (var i = 0; i < this.segments.length; i++) this.segments[i].retired = true;
  this.segments.push(seg);
  return seg;
};

ChatTask.prototype.freeSegment = function (seg) {
  seg.dec.free();
};

ChatTask.prototype.feed = function (data) {
  var dec = this.segment.dec;
  var u = dec.push(data);
  // What a resume needs: the last complete SSE event, and the generation id. Without the
  // x-chunkwise-generation header (a proxy dropped it, or CORS hid it) the relay's answer id
  // (its chunks' `id`) is the generation id.
  var last = dec.lastEventId;
  if (last !== '') this.lastEventId = last;
  if (this.id === null) this.id = dec.responseId;
  this.apply(u);
};

ChatTask.prototype.apply = function (u) {
  var gotText = u.text !== '' || u.queued > 0;
  if (gotText || u.reasoning !== '') {
    this.gotContent = true;
    this.attempts = 0; // the connection works
  }
  if (!this.paced) this.text += u.text;
  if (u.reasoning !== '') this.reasoning += u.reasoning;
  if (u.finishReason !== null) this.finishReason = u.finishReason;
  if (u.usage !== null) this.usage = u.usage;
  if (gotText || u.reasoning !== '' || u.finishReason !== null || u.usage !== null) this.dirty = true;
  for (var i = 0; i < u.errors.length; i++) {
    var e = u.errors[i];
    if (e.type === 'bad_event' || e.type === 'buffer_limit') {
      // The decoder skipped something it could not read and went on: worth knowing, not fatal.
      if (this.warnings.length < MAX_WARNINGS) this.warnings.push(e);
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

/** What connection `conn`'s error body says: {info: the provider's {type, message, code} or null, text}. */
ChatTask.prototype.errorBody = function (conn) {
  if (conn.errorLen === 0) return { info: null, text: '' };
  var bytes = new Uint8Array(conn.errorLen);
  for (var i = 0, at = 0; i < conn.errorParts.length; i++) {
    var part = new Uint8Array(conn.errorParts[i]);
    bytes.set(part, at);
    at += part.length;
  }
  var info = this.readErrorBody(bytes);
  if (info !== null) return { info: info, text: '' };
  // Not an error JSON (a proxy's HTML page, plain text): its text is the message.
  var d = new this.Decoder({ format: 'text', pace: false });
  try {
    return { info: null, text: d.push(bytes).text + d.finish().text };
  } finally {
    d.free();
  }
};

// ---- what the page sees --------------------------------------------------------------

ChatTask.prototype.view = function () {
  var self = this;
  return {
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
    textParts: this.textParts.list.slice(),
    reasoningParts: this.reasoningParts.list.slice(),
    // Everything so far as a setData object (a page redrawing the message); the views
    // passed to onUpdate carry only what changed (see emit).
    setData: function (prefix) {
      return self.everything().data(prefix);
    },
  };
};

ChatTask.prototype.emit = function () {
  var changes = this.changes(this.text.slice(this.sentText));
  var v = this.view();
  v.setData = function (prefix) {
    return changes.data(prefix);
  };
  this.sentText = this.text.length;
  this.sentReasoning = this.reasoning.length;
  this.dirty = false;
  if (typeof this.o.onUpdate === 'function') this.o.onUpdate(v);
  return v;
};

/** What changed since the previous update: the new parts, the Markdown patches, the status. */
ChatTask.prototype.changes = function (delta) {
  var c = new Changes();
  var md = this.markdown;
  if (md !== null) {
    c.patches = [];
    if (delta !== '') this.patch(c, md.append(delta));
    if (this.closed) {
      this.patch(c, md.finish());
      this.freeMarkdown();
    }
  } else if (this.withText) {
    c.text = partsOf(this.textParts, this.textParts.update(this.text));
  }
  c.reasoning = partsOf(this.reasoningParts, this.reasoningParts.update(this.reasoning));
  if (this.status !== this.sentStatus) c.status = this.sentStatus = this.status;
  return c;
};

ChatTask.prototype.patch = function (changes, patch) {
  changes.patches.push({ patch: patch, renderer: this.markdown, before: this.blockCount });
  this.blockCount = patch.count;
};

/** The text and reasoning parts as of the last update, and the status (not the Markdown blocks). */
ChatTask.prototype.everything = function () {
  var c = new Changes();
  if (this.withText) c.text = partsOf(this.textParts, allIndices(this.textParts));
  c.reasoning = partsOf(this.reasoningParts, allIndices(this.reasoningParts));
  c.status = this.status;
  return c;
};

ChatTask.prototype.freeMarkdown = function () {
  if (this.markdown !== null && typeof this.markdown.free === 'function') this.markdown.free();
};

/** [[k, part k]] for each k of `indices`. */
function partsOf(parts, indices) {
  var out = [];
  for (var i = 0; i < indices.length; i++) out.push([indices[i], parts.list[indices[i]]]);
  return out;
}

function allIndices(parts) {
  var out = [];
  for (var k = 0; k < parts.list.length; k++) out.push(k);
  return out;
}

ChatTask.prototype.setStatus = function (status) {
  if (this.status !== status && !this.closed) {
    this.status = status;
    this.dirty = true;
  }
};

// ---- the end -------------------------------------------------------------------------

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
  this.stopTimers();
  this.abortConn();
  for (var i = 0; i < this.segments.length; i++) this.freeSegment(this.segments[i]);
  this.segments = [];
};

// ---- the public methods --------------------------------------------------------------

/** The stop button: abort the request, tell the relay to stop generating, show what came. */
ChatTask.prototype.cancel = function () {
  if (this.closed) return;
  var running = !this.ended;
  this.stopped = true;
  this.ended = true;
  this.abortConn();
  if (running && this.id !== null) this.cancelOnServer(this.id);
  this.flush();
  this.finish();
};

/** Stop without any further callback and without telling the relay (page unload). */
ChatTask.prototype.abort = function () {
  if (this.closed) return;
  this.ended = true;
  this.close();
  this.freeMarkdown();
};

/** The app goes to the background (onHide): a cut from now on waits for resume(). */
ChatTask.prototype.pause = function () {
  this.paused = true;
};

/** Show everything decoded so far at once (a tap on the typing answer). */
ChatTask.prototype.skip = function () {
  if (this.closed) return;
  this.flush();
  this.dirty = true;
  this.pump();
};

/** What streamChat returns: the public methods only, bound to the task. */
export function Controller(task) {
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
