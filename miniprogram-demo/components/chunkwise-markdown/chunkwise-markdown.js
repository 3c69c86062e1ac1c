// chunkwise-markdown: renders a streamed Markdown answer with chunkwise's MarkdownRenderer.
//
// Fed deltas (linear: each tick costs what it adds, in the renderer and in setData):
//
//   <chunkwise-markdown id="md-{{item.key}}" bind:linktap="onLink" />
//   const md = this.selectComponent('#md-' + key);
//   md.append(more);    // each tick: the text revealed since the last one
//   md.finish();        // the stream ended, was stopped or failed
//   md.reset();         // a retry: start over
//
// or, for a text that is already complete (history): <chunkwise-markdown text="{{t}}" done />.
// The `text` property also streams (the component appends what extends the previous value),
// but then the page re-sends the whole text on every tick: its setData grows with the square
// of the answer. Use append() while streaming.
//
// The component setData's only what changed, with path keys ('children' patches:
// 'b[7]' for a new block, 'b[7][0].children[3]' for a part of one, 'b[7][0].children[3].text'
// for a text that grew). The blocks' field is `b`: it starts every key, one a tick. A code
// block's lines live apart, in `c[7]` (line j's nodes at `c[7][j]`, `pre` and `code` are
// elements of the template): a code line's key is `c[7][31][2].text`, not
// `b[7][0].children[0].children[31].children[2].text`, and most of a streamed answer's
// keys are a code line's.
//
// Events (rich-text carries none inside, so each lives where the component can catch it):
// - a code block is a rich-text inside a view with a bar: its language and a copy button
//   (wx.setClipboardData with the code's text); event `copycode` {index, code};
// - a paragraph that is only an image is an <image>: a tap calls wx.previewImage with every
//   image of the answer; a tap on a block holding images inside text does the same;
// - a tap on a block with links gives the page the URL: event `linktap` {url, index} (one
//   link: at once; several: the user picks in an action sheet). The page copies it or opens
//   a web-view page. A long press on a block offers to copy its links.
const markdown = require('../../miniprogram_npm/chunkwise/markdown.js');

// init() once per app: the module (and so this promise) is shared by every instance.
let loading = null;
function load() {
  if (loading === null) {
    loading = markdown.init().catch(function (e) {
      loading = null; // a later instance may try again
      throw e;
    });
  }
  return loading;
}

/** Dedupes URLs, keeping the first occurrence's order. */
function unique(urls) {
  const out = [];
  for (let i = 0; i < urls.length; i++) if (out.indexOf(urls[i]) < 0) out.push(urls[i]);
  return out;
}

/** The text of rich-text nodes (text nodes carry `&` as `&amp;`, as rich-text decodes it). */
function textOf(nodes, out) {
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    if (n.type === 'text') out.push(n.text.replace(/&amp;/g, '&'));
    else if (n.children) textOf(n.children, out);
  }
  return out;
}

/** The `src` of every image in `nodes`, in order. */
function imagesOf(nodes, out) {
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    if (n.name === 'img' && n.attrs && n.attrs.src) out.push(n.attrs.src);
    else if (n.children) imagesOf(n.children, out);
  }
  return out;
}

/** The keys of a setData path ('b[7][0].children[3].text' → ['b', 7, 0, 'children', 3, 'text']). */
function pathOf(key) {
  const keys = [];
  key.replace(/([^.[\]]+)|\[(\d+)\]/g, (m, name, idx) => keys.push(idx !== undefined ? Number(idx) : name));
  return keys;
}

/** Sets `value` at path `keys` below `root`, as setData does. */
function setAt(root, keys, value) {
  let o = root;
  for (let i = 0; i < keys.length - 1; i++) o = o[keys[i]];
  o[keys[keys.length - 1]] = value;
}

/**
 * A code block's lines, each as the nodes of its own rich-text, or null if the block is not
 * a code block of that shape: [pre > code > lines], every line a highlighted line (a `span`
 * of class `ln`: its tokens) or, without highlighting, every line a text node. `pre`: the
 * classes of pre, code and the lines ('' for text lines), which the template gives its views.
 */
function linesOf(nodes) {
  if (!Array.isArray(nodes) || nodes.length !== 1 || nodes[0].name !== 'pre') return null;
  const pre = nodes[0];
  const code = pre.children && pre.children.length === 1 ? pre.children[0] : null;
  if (!code || code.name !== 'code' || !Array.isArray(code.children)) return null;
  const lines = code.children;
  const ln = lines.length > 0 && lines[0].name === 'span' ? classOf(lines[0]) : '';
  const out = [];
  for (let j = 0; j < lines.length; j++) {
    const line = lineOf(lines[j], ln);
    if (line === null) return null;
    out.push(line);
  }
  return { pre: { pre: classOf(pre), code: classOf(code), ln: ln }, lines: out };
}

/** A code line's rich-text nodes: a highlighted line's tokens (`ln`: its class), or a plain line's text node. */
function lineOf(node, ln) {
  if (ln !== '') return node && node.name === 'span' && Array.isArray(node.children) && classOf(node) === ln ? node.children : null;
  return node && node.type === 'text' ? [node] : null;
}

/** A copy of a setData value (JSON: what setData carries). */
function copyOf(value) {
  return value !== null && typeof value === 'object' ? JSON.parse(JSON.stringify(value)) : value;
}

function classOf(node) {
  return (node.attrs && node.attrs.class) || '';
}

/** How a block that is not a code block of lines (see linesOf) is shown: a lone image, or rich-text. */
function kindOf(nodes) {
  if (!Array.isArray(nodes) || nodes.length !== 1) return 'rich';
  const n = nodes[0];
  const kids = n.children || [];
  if (n.name === 'p' && kids.length === 1 && kids[0].name === 'img') return 'image';
  return 'rich';
}

/** The language of a code block (`code.md-lang-js` → 'js'), or ''. */
function langOf(nodes) {
  const code = nodes[0] && nodes[0].children && nodes[0].children[0];
  const m = code && code.attrs && /(?:^| )md-lang-(\S+)/.exec(code.attrs.class || '');
  return m ? m[1] : '';
}

Component({
  properties: {
    /** A complete (or, less efficiently, growing) text; see append() for streaming. */
    text: { type: String, value: '' },
    /** The text is complete (the stream ended, was stopped or failed). */
    done: { type: Boolean, value: false },
    /** Text selection inside the blocks (rich-text user-select, base library 2.24.0+). */
    userSelect: { type: Boolean, value: true },
  },

  data: {
    ids: [], // 0..count-1: the loop's keys
    b: [], // b[i]: the rich-text nodes of block i (a short name: it starts every setData key)
    c: [], // c[i]: a code block's lines, c[i][j] the rich-text nodes of line j (b[i] unused)
    pre: [], // pre[i]: a code block's classes {pre, code, ln} (ln: its lines', '' for plain text)
    kinds: [], // kinds[i]: 'rich' (or none) | 'code' | 'image' (how block i is shown)
    langs: [], // langs[i]: a code block's language
    failed: false, // the wasm did not load: the text shows as plain text
    plain: '', // the text, when failed
  },

  lifetimes: {
    // (state in created: the property observers run before attached)
    created() {
      this._renderer = null;
      this._text = ''; // the whole text given (by property or append)
      this._fed = 0; // how much of it the renderer has
      this._done = false; // finish() was asked for
      this._finished = false; // the renderer finished
      this._cleared = false; // the blocks must be cleared at the next sync
      this._failed = false;
      this._count = 0;
      this._links = []; // _links[i]: the link and image URLs of block i (from Patch.links)
      this._code = []; // _code[i]: code block i's nodes as the renderer has them (its lines are in c[i])
      this._pre = []; // _pre[i]: what pre[i] holds
      this._kinds = []; // _kinds[i]: what kinds[i] holds (page data may still hold a cleared message's)
      this._detached = false;
    },
    attached() {
      load().then(
        () => {
          if (this._detached) return;
          this._renderer = new markdown.MarkdownRenderer({ patches: 'children' });
          this._sync();
        },
        (e) => {
          if (this._detached) return;
          this._failed = true;
          this.setData({ failed: true, plain: this._text });
          this.triggerEvent('error', { message: e && e.message ? e.message : String(e) });
        }
      );
    },
    detached() {
      this._detached = true;
      if (this._renderer !== null) {
        this._renderer.free();
        this._renderer = null;
      }
    },
  },

  observers: {
    // (two observers: a page that streams with append() and sets only `done` must not
    // have its text replaced by the empty property)
    text: function (text) {
      text = text || '';
      if (text === this._text) return;
      if (this._text.length > 0 && text.startsWith(this._text) && !this._finished) this._text = text;
      else this._restart(text);
      this._sync();
    },
    done: function (done) {
      if (!done || this._done) return;
      this._done = true;
      this._sync();
    },
  },

  methods: {
    /** The revealed text grew by `delta`: renders what changed, in one setData. */
    append(delta) {
      if (typeof delta !== 'string') throw new TypeError('chunkwise-markdown: append() takes a string');
      if (delta.length === 0) return;
      if (this._finished) this._restart('');
      this._text += delta;
      this._sync();
    },

    /** The text is complete: the blocks become a one-shot render of it. */
    finish() {
      this._done = true;
      this._sync();
    },

    /** Forgets the text (a retry, another message). */
    reset() {
      this._restart('');
      this._sync();
    },

    /** Starts over with `text`; the next sync clears the blocks. */
    _restart(text) {
      this._text = text;
      this._fed = 0;
      this._done = false;
      this._finished = false;
      this._cleared = true;
    },

    /** Brings the renderer and the blocks up to date: one setData. */
    _sync() {
      if (this._failed) {
        if (this.data.plain !== this._text) this.setData({ plain: this._text });
        return;
      }
      const r = this._renderer;
      if (!r) return; // not loaded yet (attached() syncs when it is) or detached
      const data = {};
      if (this._cleared) {
        this._cleared = false;
        r.reset();
        this._links = [];
        this._code = [];
        this._pre = [];
        this._kinds = [];
        this._count = 0;
        data.ids = [];
        data.b = [];
        data.c = [];
        data.pre = [];
        data.kinds = [];
        data.langs = [];
      }
      const touched = [];
      if (this._text.length > this._fed) {
        this._apply(r.append(this._text.slice(this._fed)), data, touched);
        this._fed = this._text.length;
      }
      if (this._done && !this._finished) {
        this._apply(r.finish(), data, touched);
        this._finished = true;
      }
      if (Object.keys(data).length === 0) return;
      this.setData(data);
      this._classify(touched);
    },

    /** Adds the setData entries of `patch` to `data` (a later entry for a key moves last). */
    _apply(patch, data, touched) {
      const put = (key, value) => {
        delete data[key];
        data[key] = value;
      };
      const entries = this._renderer.dataFor(patch, 'b');
      for (const key in entries) this._put(put, key, entries[key]);
      for (let i = 0; i < patch.blocks.length; i++) {
        const b = patch.blocks[i];
        if (b.links) this._links[b.index] = b.links;
        if (touched.indexOf(b.index) < 0) touched.push(b.index);
      }
      const count = patch.count;
      if (count > this._count) {
        for (let i = this._count; i < count; i++) {
          put('ids[' + i + ']', i);
          // (a block without a kind shows as rich-text: a kind is sent only to change one)
          if (!this._code[i] && (this._kinds[i] || 'rich') !== 'rich') {
            put('kinds[' + i + ']', 'rich');
            this._kinds[i] = 'rich';
          }
        }
      } else if (count < this._count) {
        // Blocks merged (e.g. "Foo\n---" became a heading): drop the keys and the old nodes.
        const ids = [];
        for (let i = 0; i < count; i++) ids.push(i);
        put('ids', ids);
        for (let i = count; i < this._count; i++) {
          put('b[' + i + ']', []);
          if (this._code[i]) put('c[' + i + ']', []);
          this._code[i] = undefined;
        }
        this._links.length = Math.min(this._links.length, count);
      }
      this._count = count;
    },

    /**
     * Puts one of the renderer's entries (`key` below `b`) into `data`: a code block's go to
     * its lines in `c`, one line's part at `c[i][j][k]…`; a change that the lines cannot take
     * (the block turns into something else, or `pre` or `code` changes) re-sends the lines
     * whole, or the block as rich-text.
     */
    _put(put, key, value) {
      const keys = pathOf(key);
      const i = keys[1];
      if (keys.length === 2) {
        const code = linesOf(value);
        if (code === null) {
          if (this._code[i]) this._code[i] = undefined; // (its kind follows in _classify)
          put(key, value);
          return;
        }
        // (the copy kept here is edited by later entries: it shares no object with page data)
        this._code[i] = copyOf(value);
        this._showCode(put, i, code);
        return;
      }
      const nodes = this._code[i];
      if (!nodes) {
        put(key, value);
        return;
      }
      setAt(this._code, keys.slice(1), copyOf(value));
      // keys: b, i, 0, children, 0, children, j, … (a line of pre > code)
      const line = keys.length >= 7 && keys[2] === 0 && keys[3] === 'children' && keys[4] === 0 && keys[5] === 'children' ? keys[6] : -1;
      const ln = this._pre[i].ln;
      const rest = keys.slice(7);
      if (line >= 0 && rest.length === 0) {
        const l = lineOf(value, ln);
        if (l !== null) return put('c[' + i + '][' + line + ']', l);
      } else if (line >= 0 && ln !== '' && rest[0] === 'children' && typeof rest[1] === 'number') {
        return put('c[' + i + '][' + line + ']' + rest.slice(1).map((k) => (typeof k === 'number' ? '[' + k + ']' : '.' + k)).join(''), value);
      } else if (line >= 0 && ln === '' && rest.length === 1 && rest[0] === 'text') {
        return put('c[' + i + '][' + line + '][0].text', value);
      }
      // (a change above the lines, or a line of another shape: the block again, whole)
      const code = linesOf(nodes);
      if (code !== null) return this._showCode(put, i, code);
      this._code[i] = undefined;
      put('b[' + i + ']', nodes);
    },

    /** Shows block `i` as a code block: its classes (if new) and all its lines. */
    _showCode(put, i, code) {
      const was = this._pre[i];
      if (!was || was.pre !== code.pre.pre || was.code !== code.pre.code || was.ln !== code.pre.ln) put('pre[' + i + ']', code.pre);
      this._pre[i] = code.pre;
      // (a block that becomes code gets its language again: the block may have been code in
      // another language, or the page data still holds the last message's)
      if (this._kinds[i] !== 'code') {
        put('kinds[' + i + ']', 'code');
        put('langs[' + i + ']', langOf(this._code[i]));
      }
      this._kinds[i] = 'code';
      put('c[' + i + ']', code.lines);
    },

    /** The nodes of block `i` as the renderer has them. */
    _nodes(i) {
      return this._code[i] || this.data.b[i] || [];
    },

    /** Shows touched blocks as code, image or rich-text; a second setData only on a change. */
    _classify(touched) {
      const data = {};
      for (let k = 0; k < touched.length; k++) {
        const i = touched[k];
        if (i >= this._count || this._code[i]) continue;
        const kind = kindOf(this.data.b[i]);
        if (kind !== (this._kinds[i] || 'rich')) data['kinds[' + i + ']'] = kind;
        this._kinds[i] = kind;
      }
      if (Object.keys(data).length > 0) this.setData(data);
    },

    /** Every image of the answer, in order. */
    _images() {
      const urls = [];
      for (let i = 0; i < this._count; i++) imagesOf(this._nodes(i), urls);
      return unique(urls);
    },

    /** The copy button of a code block. */
    onCopyCode(e) {
      const i = Number(e.currentTarget.dataset.index);
      const code = textOf(this._nodes(i), []).join('').replace(/\n$/, '');
      wx.setClipboardData({ data: code });
      this.triggerEvent('copycode', { index: i, code: code });
    },

    /** A tap on an image shown alone. */
    onImageTap(e) {
      const i = Number(e.currentTarget.dataset.index);
      const mine = imagesOf(this._nodes(i), []);
      wx.previewImage({ current: mine[0], urls: this._images() });
    },

    /** A tap on a rich-text block: its images open in the previewer, else its link goes to the page. */
    onBlockTap(e) {
      const i = Number(e.currentTarget.dataset.index);
      const images = imagesOf(this._nodes(i), []);
      const urls = unique((this._links[i] || []).filter((u) => images.indexOf(u) < 0));
      if (images.length > 0 && urls.length === 0) {
        wx.previewImage({ current: images[0], urls: this._images() });
        return;
      }
      if (urls.length === 0) return;
      const give = (url) => this.triggerEvent('linktap', { url: url, index: i });
      if (urls.length === 1 && images.length === 0) {
        give(urls[0]);
        return;
      }
      const items = urls.slice(0, images.length > 0 ? 5 : 6); // showActionSheet takes at most 6
      const label = (u) => (u.length > 48 ? u.slice(0, 45) + '…' : u);
      wx.showActionSheet({
        itemList: items.map(label).concat(images.length > 0 ? ['查看图片'] : []),
        success: (res) => {
          if (res.tapIndex < items.length) give(items[res.tapIndex]);
          else wx.previewImage({ current: images[0], urls: this._images() });
        },
      });
    },

    /** A long press on a block: offer to copy its links (rich-text shows no href). */
    onLongPress(e) {
      const i = Number(e.currentTarget.dataset.index);
      const urls = unique(this._links[i] || []).slice(0, 6); // showActionSheet takes at most 6
      if (urls.length === 0) return;
      const label = (u) => (u.length > 48 ? u.slice(0, 45) + '…' : u);
      wx.showActionSheet({
        itemList: urls.map((u) => '复制链接 ' + label(u)),
        success: (res) => {
          const url = urls[res.tapIndex];
          if (url === undefined) return;
          wx.setClipboardData({ data: url });
          this.triggerEvent('copylink', { url: url, index: i });
        },
      });
    },

    /** The links of block `index` (for pages that offer them otherwise). */
    linksOf(index) {
      return (this._links[index] || []).slice();
    },
  },
});
