// The H5 version of the demo chat, served by the relay at `/`: the same streamChat as the
// mini program, over the Fetch API (fetchRequest) instead of wx.request.
//
// Query options: ?relay=http://127.0.0.1:8787 (default: this page's origin), ?model=demo,
// ?token=<client token> (when the relay requires one).
import { init, streamChat, fetchRequest } from '/pkg/web/index.js';
import { init as initMarkdown, MarkdownRenderer } from '/pkg/web/markdown.js';

const params = new URLSearchParams(location.search);
const RELAY = (params.get('relay') || location.origin).replace(/\/+$/, '');
const MODEL = params.get('model') || 'demo';
const TOKEN = params.get('token') || '';

const STATUS_TEXT = {
  resuming: '网络中断，正在续传…',
  paused: '已暂停，回到前台后继续',
  stopped: '已停止',
};

const $ = (sel) => document.querySelector(sel);
const chat = $('#chat');
const input = $('#input');
const send = $('#send');
const stop = $('#stop');
const request = fetchRequest(window.fetch.bind(window));

/** [{ role, text, status, el }] */
const msgs = [];
let task = null;
let ready = false;
let markdownReady = false; // false: answers show as plain text

// ---- Markdown: the renderer's rich-text nodes as DOM elements with the same md-* classes ----
const TAG = /^[a-z][a-z0-9]*$/;
const ATTRS = ['class', 'style', 'alt', 'start'];
const SAFE_URL = /^(https?:|mailto:)/i;

/** A rich-text node → a DOM node. Text nodes carry & as &amp; (rich-text decodes entities). */
function toDom(n) {
  if (n.type === 'text') return document.createTextNode(n.text.replace(/&amp;/g, '&'));
  const el = document.createElement(TAG.test(n.name) ? n.name : 'span');
  const attrs = n.attrs || {};
  for (const k of ATTRS) if (typeof attrs[k] === 'string') el.setAttribute(k, attrs[k]);
  if (n.name === 'img' && typeof attrs.src === 'string' && SAFE_URL.test(attrs.src)) el.setAttribute('src', attrs.src);
  for (const c of n.children || []) el.appendChild(toDom(c));
  return el;
}

/** Once a block's URLs are known (Patch.links: links and images in order), its links open them. */
function linkify(blockEl, urls) {
  const els = blockEl.querySelectorAll('a.md-a, img.md-img');
  if (els.length !== urls.length) return; // should not happen; then the links stay text
  els.forEach((el, i) => {
    if (el.tagName === 'A' && SAFE_URL.test(urls[i])) {
      el.href = urls[i];
      el.target = '_blank';
      el.rel = 'noopener noreferrer';
    }
  });
}

/** Applies a Patch to message m's answer element: only the changed children are replaced. */
function applyPatch(m, patch) {
  const root = m.el.querySelector('.answer');
  for (const b of patch.blocks) {
    let el = m.blocks[b.index];
    if (!el) {
      el = document.createElement('div');
      el.className = 'md-block';
      root.appendChild(el); // blocks arrive in order: every earlier one exists
      m.blocks[b.index] = el;
    }
    if (typeof b.nodes === 'string') {
      el.textContent = b.nodes; // raw HTML (not enabled by this page): shown as text, never parsed
    } else {
      let parent = el;
      for (const i of b.path) parent = parent.childNodes[i];
      while (parent.childNodes.length > b.start) parent.removeChild(parent.lastChild);
      for (const n of b.nodes) parent.appendChild(toDom(n));
    }
    if (b.links) linkify(el, b.links);
  }
  while (m.blocks.length > patch.count) m.blocks.pop().remove();
}

/** The answer of m gained `delta` (final when `done`): the renderer appends it, the page applies the patch. */
function renderAnswer(m, delta, done) {
  const answer = m.el.querySelector('.answer');
  if (!markdownReady) {
    answer.classList.add('plain');
    answer.append(delta); // a text node per update: nothing shown is laid out again
    return;
  }
  if (m.md === null && !m.finished && (delta !== '' || done)) m.md = new MarkdownRenderer({ patches: 'children' });
  if (delta !== '') applyPatch(m, m.md.append(delta));
  if (done && !m.finished) {
    applyPatch(m, m.md.finish());
    m.finished = true;
    m.md.free(); // the answer is final: a retry gets a new renderer
    m.md = null;
  }
}

function setBusy(busy) {
  send.hidden = busy;
  stop.hidden = !busy;
  send.disabled = busy || !ready || input.value.trim() === '';
}

function scrollToEnd() {
  chat.scrollTop = chat.scrollHeight;
}

function addUser(text) {
  const el = $('#user-msg').content.firstElementChild.cloneNode(true);
  el.querySelector('.bubble').textContent = text;
  chat.appendChild(el);
  msgs.push({ role: 'user', text, status: 'done', el });
}

/** A fresh assistant element for message m, wired to its retry, skip and reasoning toggle. */
function assistantElement(m) {
  const el = $('#assistant-msg').content.firstElementChild.cloneNode(true);
  el.querySelector('.retry').addEventListener('click', () => retry(m));
  el.querySelector('.answer-bubble').addEventListener('click', () => {
    if (task && m === current) task.skip();
  });
  el.querySelector('.reasoning summary').addEventListener('click', () => (m.pinned = true));
  return el;
}

function addAssistant() {
  const m = { role: 'assistant', text: '', reasoning: '', status: 'connecting', el: null, pinned: false, md: null, finished: false, blocks: [] };
  m.el = assistantElement(m);
  chat.appendChild(m.el);
  msgs.push(m);
  return m;
}

let current = null;

function ask(m) {
  const i = msgs.indexOf(m);
  const history = msgs
    .slice(0, i)
    .filter((x) => x.text && (x.role === 'user' || x.status === 'done' || x.status === 'stopped'))
    .map((x) => ({ role: x.role, content: x.text }));
  current = m;
  setBusy(true);
  task = streamChat({
    request,
    url: RELAY + '/v1/chat/completions',
    body: { model: MODEL, messages: history },
    headers: TOKEN ? { Authorization: 'Bearer ' + TOKEN } : {},
    onUpdate: (view) => show(m, view),
    onDone: () => ended(m),
    onError: () => ended(m),
  });
}

/**
 * One update → the few DOM changes it implies, each costing what it adds: the answer's and the
 * reasoning's new text (view.delta, view.reasoningDelta) are appended, never set whole.
 */
function show(m, view) {
  const el = m.el;
  if (view.delta !== '' || (view.done && !m.finished)) {
    // The renderer appends view.delta; done: finish(), the blocks equal a one-shot render.
    renderAnswer(m, view.delta, view.done);
    if (m.text === '' && view.text && m.reasoning && !m.pinned) el.querySelector('.reasoning').open = false;
    m.text = view.text;
  }
  if (view.reasoningDelta !== '') {
    const box = el.querySelector('.reasoning');
    box.hidden = false;
    box.querySelector('.reasoning-body').append(view.reasoningDelta);
    m.reasoning = view.reasoning;
  }
  el.querySelector('.reasoning summary').textContent = view.text || view.done ? '已深度思考' : '思考中…';
  if (view.status !== m.status) {
    m.status = view.status;
    el.dataset.status = view.status;
    const status = el.querySelector('.status');
    status.textContent = STATUS_TEXT[view.status] || '';
    status.hidden = !status.textContent;
  }
  const error = el.querySelector('.error');
  if (view.error) {
    const e = view.error;
    el.querySelector('.error-text').textContent = e.message + (e.status && e.status !== 200 && !e.message.includes('HTTP ' + e.status) ? `（HTTP ${e.status}）` : '');
    error.hidden = false;
  } else error.hidden = true;
  if (view.done) el.dataset.resumes = String(view.resumes);
  scrollToEnd();
}

function ended(m) {
  if (current === m) {
    task = null;
    current = null;
  }
  setBusy(false);
}

function retry(m) {
  if (task) return;
  const fresh = assistantElement(m);
  m.el.replaceWith(fresh);
  if (m.md !== null) m.md.free();
  m.md = null;
  Object.assign(m, { text: '', reasoning: '', status: 'connecting', el: fresh, pinned: false, finished: false, blocks: [] });
  ask(m);
}

$('#composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || task || !ready) return;
  $('#empty').hidden = true;
  input.value = '';
  addUser(text);
  ask(addAssistant());
  scrollToEnd();
});

input.addEventListener('input', () => setBusy(task !== null));
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $('#composer').requestSubmit();
  }
});
stop.addEventListener('click', () => task && task.cancel());

// A phone browser may drop the connection in the background: resume when visible again.
document.addEventListener('visibilitychange', () => {
  if (!task) return;
  if (document.hidden) task.pause();
  else task.resume();
});

// The decoder and the Markdown renderer (its own wasm module) load side by side; without the
// latter, answers show as plain text.
Promise.all([
  init(),
  initMarkdown().then(
    () => (markdownReady = true),
    (e) => console.warn('chunkwise markdown: ' + e.message + ' (answers show as plain text)')
  ),
]).then(
  () => {
    ready = true;
    input.placeholder = '问点什么…（Enter 发送，Shift+Enter 换行）';
    document.body.dataset.ready = 'true';
    setBusy(false);
  },
  (e) => {
    const p = $('#load-error');
    p.textContent = '解码器加载失败：' + e.message;
    p.hidden = false;
  }
);
