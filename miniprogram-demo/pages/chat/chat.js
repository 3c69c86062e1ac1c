// The chat page. All the streaming work (wx.request with enableChunked, decoding, the
// typewriter timer, batching, resume after the 60 s cap or the background, cancel) is
// chunkwise's streamChat; this page only keeps the history and maps each update to one
// setData with path keys ('msgs[3].text'), at most 20 a second.
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

// Scrolling follows the answer, but not on every update.
const SCROLL_EVERY_MS = 300;

let nextKey = 1;

function newAnswer() {
  return { key: 'm' + nextKey++, role: 'assistant', text: '', reasoning: '', showReasoning: true, pinned: false, status: 'connecting', statusText: '', error: '' };
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
    this.ask(n + 1);
  },

  /** Streams the answer of message `i` from the history before it. */
  ask(i) {
    const app = getApp();
    const g = app.globalData;
    const messages = this.data.msgs
      .slice(0, i)
      .filter((m) => m.text && (m.role === 'user' || m.status === 'done' || m.status === 'stopped'))
      .map((m) => ({ role: m.role, content: m.text }));
    this.streaming = i;
    this.setData({ busy: true });
    this.task = chunkwise.streamChat({
      request: wx.request,
      url: g.relay + '/v1/chat/completions',
      body: { model: g.model, messages: messages },
      headers: g.token ? { Authorization: 'Bearer ' + g.token } : {},
      intervalMs: 50,
      onUpdate: (view) => this.show(i, view),
      onDone: () => this.ended(i),
      onError: () => this.ended(i),
    });
  },

  /** One update of the streaming answer → one setData with only the changed paths. */
  show(i, view) {
    const key = 'msgs[' + i + ']';
    const m = this.data.msgs[i];
    const patch = {};
    if (view.text !== m.text) {
      // ============ chunkwise-markdown slot ============
      // The answer renders through <chunkwise-markdown text="{{item.text}}">: the component
      // appends what the text gained since its last update (view.delta) to its renderer and
      // sets only the changed blocks. The page keeps the text (the history it sends).
      patch[key + '.text'] = view.text;
      // Collapse the reasoning when the answer starts, unless the user opened it.
      if (m.text === '' && m.reasoning && !m.pinned) patch[key + '.showReasoning'] = false;
    }
    if (view.reasoning !== m.reasoning) patch[key + '.reasoning'] = view.reasoning;
    if (view.status !== m.status) {
      patch[key + '.status'] = view.status;
      patch[key + '.statusText'] = STATUS_TEXT[view.status] || '';
    }
    const error = describeError(view.error);
    if (error !== m.error) patch[key + '.error'] = error;
    if (view.done) patch.busy = false;
    if (Object.keys(patch).length > 0) this.setData(patch);
    this.follow(view.done);
  },

  ended(i) {
    if (this.streaming === i) {
      this.task = null;
      this.streaming = -1;
    }
  },

  follow(force) {
    const now = Date.now();
    if (!force && now - this.lastScroll < SCROLL_EVERY_MS) return;
    this.lastScroll = now;
    if (typeof wx.pageScrollTo === 'function') wx.pageScrollTo({ selector: '#bottom', duration: 0 });
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
