// The one timer of a ChatTask: every `intervalMs` it ticks the typewriter (each decoder's
// `tick`, src/pacer.rs), notices a stalled connection, and calls onUpdate only when something
// changed: at most 1000 / intervalMs setData calls a second, however fast the bytes come.

/** ChatTask methods (js/client/chat.js) driven by the timer. */
export var timerMethods = {
  startTimer: function () {
    var self = this;
    this.timer = setInterval(function () {
      self.pump();
    }, this.intervalMs);
  },

  pump: function () {
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
  },

  /** Ticks the decoders in order: an old one's backlog is shown before the next one's. */
  reveal: function (now) {
    if (!this.paced) return '';
    var out = '';
    while (this.segments.length > 0) {
      var seg = this.segments[0];
      out += seg.dec.tick(now);
      if (seg.retired && seg.dec.pending === 0) {
        // The typewriter holds back the last grapheme (more of it could follow); in a
        // retired decoder nothing follows, and finish() would parse its cut event.
        out += seg.dec.skip();
        this.freeSegment(seg);
        this.segments.shift();
        continue;
      }
      break;
    }
    return out;
  },

  drained: function () {
    if (!this.paced) return true;
    for (var i = 0; i < this.segments.length; i++) if (this.segments[i].dec.pending > 0) return false;
    return true;
  },

  /** Shows all the text decoded so far at once. */
  flush: function () {
    if (!this.paced) return;
    for (var i = 0; i < this.segments.length; i++) this.text += this.segments[i].dec.skip();
  },

  stopTimers: function () {
    clearInterval(this.timer);
    if (this.resumeTimer !== null) clearTimeout(this.resumeTimer);
    this.resumeTimer = null;
  },
};
