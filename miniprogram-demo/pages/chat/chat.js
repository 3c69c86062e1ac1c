// The chat page. All the streaming work (wx.request with enableChunked, decoding, the
// typewriter timer, batching, resume after the 60 s cap or the background, cancel) is
// chunkwise's streamChat. Each update costs what it adds: the page setData's only the keys
// view.setData gives (the last reasoning part, the status), at most 20 a second, and hands
// the new answer text (view.delta) to the answer's chunkwise-markdown component, which
// setData's only its changed blocks. The answer's whole text stays here, for the history.
const chunkwise = require('../../lib/chunkwise.js');

const STATUS_TEXT = {
  connecting: '',
  streaming: '',
  resuming: '网络中断，正在续传…',
  paused: '已暂停，回到前台后继续',
  done: '',
  stopped: '已停止',
  error: '',
};

// Scrolling follows the answer, but not on every update, and not once the reader scrolled
// up (more than SCROLL_SLACK_PX above the furthest point reached) until they come back down.
const SCROLL_EVERY_MS = 300;
const SCROLL_SLACK_PX = 40;

let nextKey = 1;

function newAnswer() {
  // answering: some answer text has arrived (the text itself goes to the component).
  return { key: 'm' + nextKey++, role: 'assistant', answering: false, reasoningParts: [], showReasoning: true, pinned: false, status: 'connecting', statusText: '', error: '' };
}

function describeError(error) {
  if (!error) return '';
  let text = error.message || '出错了';
  if (error.status && error.status !== 200 && text.indexOf('HTTP ' + error.status) < 0) text += '（HTTP ' + error.status + '）';
  return text;
}

Page({
  data: {
    msgs: [],
    input: '',
    busy: false,
    ready: false,
    loadError: '',
  },

  onLoad() {
    this.task = null;
    this.streaming = -1;
    this.lastScroll = 0;
    this.following = true; // the page keeps the typing answer in view
    this.furthest = 0; // the largest scrollTop seen: the bottom, as far as the page knows
    this.unsent = {}; // key → answer text its component has not been given yet
    this.answers = {}; // key → the answer's whole text, once it ended (the history)
    // Loads chunkwise.wasm.br once (WXWebAssembly), from its default package path
    // /miniprogram_npm/chunkwise/chunkwise.wasm.br.
    chunkwise.init().then(
      () => this.setData({ ready: true }),
      (e) => this.setData({ loadError: '解码器加载失败：' + e.message })
    );
  },

  // The app going to the background kills a request after 5 s; streamChat then waits for
  // resume() and continues from the last event it decoded.
  onHide() {
    if (this.task) this.task.pause();
  },

  onShow() {
    if (this.task) this.task.resume();
  },

  onUnload() {
    if (this.task) this.task.abort();
    this.task = null;
  },

  onInput(e) {
    this.setData({ input: e.detail.value });
  },

  onSend() {
    const text = (this.data.input || '').trim();
    if (!text || this.data.busy || !this.data.ready) return;
    const n = this.data.msgs.length;
    this.setData({
      ['msgs[' + n + ']']: { key: 'm' + nextKey++, role: 'user', text: text },
      ['msgs[' + (n + 1) + ']']: newAnswer(),
      input: '',
    });
    this.following = true;
    this.ask(n + 1);
  },

  /** Streams the answer of message `i` from the history before it. */
  ask(i) {
    const app = getApp();
    const g = app.globalData;
    const messages = this.data.msgs
      .slice(0, i)
      .filter((m) => m.role === 'user' || m.status === 'done' || m.status === 'stopped')
      .map((m) => ({ role: m.role, content: this.textOf(m) }))
      .filter((m) => m.content);
    this.streaming = i;
    this.setData({ busy: true });
    this.task = chunkwise.streamChat({
      request: wx.request,
      url: g.relay + '/v1/chat/completions',
      body: { model: g.model, messages: messages },
      headers: g.token ? { Authorization: 'Bearer ' + g.token } : {},
      intervalMs: 50,
      textParts: false, // the answer goes to its chunkwise-markdown component instead
      onUpdate: (view) => this.show(i, view),
      onDone: () => this.ended(i),
      onError: () => this.ended(i),
    });
  },

  /** One update of the streaming answer → one setData with only the changed paths. */
  show(i, view) {
    const key = 'msgs[' + i + ']';
    const m = this.data.msgs[i];
    const patch = view.setData(key); // { 'msgs[1].reasoningParts[4]': '…', 'msgs[1].status': … }
    if (view.status !== m.status) patch[key + '.statusText'] = STATUS_TEXT[view.status] || '';
    if (view.text !== '' && !m.answering) {
      patch[key + '.answering'] = true;
      // Collapse the reasoning when the answer starts, unless the user opened it.
      if (m.reasoningParts.length > 0 && !m.pinned) patch[key + '.showReasoning'] = false;
    }
    const error = describeError(view.error);
    if (error !== m.error) patch[key + '.error'] = error;
    if (view.done) {
      this.answers[m.key] = view.text;
      patch.busy = false;
    }
    const fed = this.feed(m.key, view.delta, view.done);
    // A component not rendered yet gets its text once the render layer has caught up.
    const later = fed ? undefined : () => this.feed(m.key, '', view.done);
    if (Object.keys(patch).length > 0 || later) this.setData(patch, later);
    this.follow(view.done);
  },

  /** Hands what the answer gained to its chunkwise-markdown component; false: not rendered yet. */
  feed(key, delta, done) {
    const unsent = (this.unsent[key] || '') + delta;
    const md = this.selectComponent('#md-' + key);
    if (md === null) {
      // The render layer creates it after the setData that added the message.
      this.unsent[key] = unsent;
      return false;
    }
    delete this.unsent[key];
    if (unsent !== '') md.append(unsent);
    if (done) md.finish();
    return true;
  },

  /** The text of message `m`: what the user wrote, or the answer once it ended ('' before). */
  textOf(m) {
    return m.role === 'user' ? m.text : this.answers[m.key] || '';
  },

  ended(i) {
    if (this.streaming === i) {
      this.task = null;
      this.streaming = -1;
    }
  },

  follow(force) {
    if (!this.following) return;
    const now = Date.now();
    if (!force && now - this.lastScroll < SCROLL_EVERY_MS) return;
    this.lastScroll = now;
    if (typeof wx.pageScrollTo === 'function') wx.pageScrollTo({ selector: '#bottom', duration: 0 });
  },

  /** A reader who scrolls up stops the page following the answer; back at the bottom, it follows again. */
  onPageScroll(e) {
    if (e.scrollTop < this.furthest - SCROLL_SLACK_PX) this.following = false;
    else if (e.scrollTop >= this.furthest) this.following = true;
    this.furthest = Math.max(this.furthest, e.scrollTop);
  },

  /** The stop button: abort the request and have the relay stop generating. */
  onStop() {
    if (this.task) this.task.cancel();
  },

  /** Ask again for a failed answer, with the same history. */
  onRetry(e) {
    const i = Number(e.currentTarget.dataset.index);
    if (this.data.busy || !(i >= 0) || !this.data.msgs[i]) return;
    const fresh = newAnswer();
    fresh.key = this.data.msgs[i].key;
    delete this.unsent[fresh.key];
    delete this.answers[fresh.key];
    const md = this.selectComponent('#md-' + fresh.key);
    if (md !== null) md.reset();
    this.setData({ ['msgs[' + i + ']']: fresh });
    this.ask(i);
  },

  toggleReasoning(e) {
    const i = Number(e.currentTarget.dataset.index);
    const m = this.data.msgs[i];
    if (!m) return;
    this.setData({ ['msgs[' + i + '].showReasoning']: !m.showReasoning, ['msgs[' + i + '].pinned']: true });
  },

  /** A tap on the typing answer shows the rest at once. */
  onTapAnswer(e) {
    if (this.task && Number(e.currentTarget.dataset.index) === this.streaming) this.task.skip();
  },
});
