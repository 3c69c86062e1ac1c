// The relay's resume protocol. A wx.request is cut after about 60 s, by a dropped
// connection, 5 s after the app goes to the background, or by a stall; the relay keeps each
// generation's events, so a cut stream continues with
//   GET <base>/chat/stream/{id}?after=<last SSE id>      (Last-Event-ID: <last SSE id>)
// and the relay sends exactly the events after the last complete one this client decoded:
// nothing is lost or repeated. A cut event (half received) stays in the old connection's
// decoder, which is never finished, and comes again whole. The stop button POSTs
// <base>/chat/stream/{id}/cancel.
import { callRequest, omit } from './transport.js';
import { httpError } from './errors.js';

// The relay's resumable stream lives beside the OpenAI-compatible endpoint.
var COMPLETIONS_PATH = '/chat/completions';
var MAX_RESUME_DELAY_MS = 5000;
// A connection this long silent when the app comes back is presumed dead (see resume()).
var SILENT_AFTER_SHOW_MS = 3000;

/** ChatTask methods (js/client/chat.js): what happens when a connection ends. */
export var resumeMethods = {
  /** The connection is over (`success` or `fail`): end, resume, or report. */
  onClosed: function (conn, errMsg) {
    conn.live = false;
    if (this.conn === conn) this.conn = null;
    if (this.closed) return;
    var status = conn.status;
    if (status >= 300 || (status === 0 && errMsg === null)) {
      this.fail(httpError(conn, this.errorBody(conn)));
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
  },

  scheduleResume: function (why) {
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
    var delay = this.attempts === 0 ? 0 : Math.min(this.resumeDelayMs * this.attempts, MAX_RESUME_DELAY_MS);
    this.attempts++;
    this.resumeTimer = setTimeout(function () {
      self.resumeTimer = null;
      self.reconnect();
    }, delay);
  },

  reconnect: function () {
    if (this.closed || this.ended || this.conn !== null) return;
    this.resumes++;
    this.dirty = true;
    var after = this.lastEventId === '' ? '0' : this.lastEventId;
    var custom = this.resumeOpts && this.resumeOpts.url;
    var url = typeof custom === 'function' ? custom(this.id, after) : relayUrl(this.o.url, '/chat/stream/' + encodeURIComponent(this.id), 'after=' + encodeURIComponent(after));
    this.open('GET', url, undefined, { 'last-event-id': after });
  },

  /** Tells the relay to stop generating (best effort: it also stops one nobody reads). */
  cancelOnServer: function (id) {
    if (this.o.cancelUrl === false) return;
    var url = typeof this.o.cancelUrl === 'function' ? this.o.cancelUrl(id) : relayUrl(this.o.url, '/chat/stream/' + encodeURIComponent(id) + '/cancel', '');
    try {
      callRequest(this.request, { url: url, method: 'POST', header: omit(this.headers, 'accept'), data: '{}', success: noop, fail: noop });
    } catch (e) {
      // best effort: the relay cancels a generation nobody reads after its grace period
    }
  },

  /**
   * The app is back (onShow), or a retry: reconnect now if the stream was cut. A connection
   * that has been silent for more than 3 s is presumed dead and replaced (resuming is lossless).
   */
  resume: function () {
    this.paused = false;
    if (this.closed || this.ended) return;
    if (this.conn !== null) {
      if (Date.now() - this.lastByteAt <= SILENT_AFTER_SHOW_MS || this.id === null) return;
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
  },
};

function noop() {}

/** `<the URL up to /chat/completions><path>?<extra>&<the original query>` */
export function relayUrl(url, path, extra) {
  var q = url.indexOf('?');
  var base = q < 0 ? url : url.slice(0, q);
  var query = q < 0 ? '' : url.slice(q + 1);
  var root = base.slice(-COMPLETIONS_PATH.length) === COMPLETIONS_PATH ? base.slice(0, -COMPLETIONS_PATH.length) : base.replace(/\/+$/, '');
  var all = extra && query ? extra + '&' + query : extra || query;
  return root + path + (all ? '?' + all : '');
}
