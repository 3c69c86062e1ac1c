// chunkwise-markdown: renders a streamed Markdown answer with chunkwise's MarkdownRenderer.
//
//   <chunkwise-markdown text="{{item.text}}" done="{{item.status === 'done'}}" />
//
// `text` is the revealed text so far (it grows with the typewriter); `done` says it is
// complete. On each change the renderer appends only the new suffix of `text` (a text that
// does not extend the previous one starts over), and the component setData's only what
// changed, with path keys. With `done` it calls finish(): the blocks then equal a one-shot
// render of the whole text.
//
// Patches: 'children'. An append normally changes the end of the last block only; 'blocks'
// would send that whole block every time (a long code block or table re-sent on each of
// hundreds of appends: quadratic bytes), 'children' sends the changed children below the
// deepest changed element (bench/markdown.js measures both). The keys come from dataFor():
// 'blocks[7]' for a new or rebuilt block, 'blocks[7][0].children[3].children[1]' for a part.
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

Component({
  properties: {
    /** The revealed text so far. */
    text: { type: String, value: '' },
    /** The text is complete (the stream ended, was stopped or failed). */
    done: { type: Boolean, value: false },
    /** Text selection inside the blocks (rich-text user-select, base library 2.24.0+). */
    userSelect: { type: Boolean, value: true },
  },

  data: {
    ids: [], // 0..count-1: the loop's keys
    blocks: [], // blocks[i]: the rich-text nodes of block i
    failed: false, // the wasm did not load: the text shows as plain text
  },

  lifetimes: {
    attached() {
      this._renderer = null;
      this._fed = ''; // the text given to the renderer so far
      this._finished = false;
      this._count = 0;
      this._links = []; // _links[i]: the link and image URLs of block i (from Patch.links)
      this._detached = false;
      load().then(
        () => {
          if (this._detached) return;
          this._renderer = new markdown.MarkdownRenderer({ patches: 'children' });
          this._sync();
        },
        (e) => {
          if (this._detached) return;
          this.setData({ failed: true });
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
    'text, done': function () {
      this._sync();
    },
  },

  methods: {
    /** Brings the renderer and the blocks up to date with `text` and `done`: one setData. */
    _sync() {
      const r = this._renderer;
      if (!r) return; // not loaded yet (attached() syncs when it is) or detached
      const text = this.data.text || '';
      const done = this.data.done === true;
      const data = {};
      if ((this._finished && text !== this._fed) || text.length < this._fed.length || !text.startsWith(this._fed)) {
        // Not a continuation (a retry, another message): start over.
        r.reset();
        this._fed = '';
        this._finished = false;
        this._links = [];
        this._count = 0;
        data.ids = [];
        data.blocks = [];
      }
      if (text.length > this._fed.length) {
        this._apply(r.append(text.slice(this._fed.length)), data);
        this._fed = text;
      }
      if (done && !this._finished) {
        this._apply(r.finish(), data);
        this._finished = true;
      }
      if (Object.keys(data).length > 0) this.setData(data);
    },

    /** Adds the setData entries of `patch` to `data` (a later entry for a key moves last). */
    _apply(patch, data) {
      const put = (key, value) => {
        delete data[key];
        data[key] = value;
      };
      const entries = this._renderer.dataFor(patch, 'blocks');
      for (const key in entries) put(key, entries[key]);
      for (let i = 0; i < patch.blocks.length; i++) {
        const b = patch.blocks[i];
        if (b.links) this._links[b.index] = b.links;
      }
      const count = patch.count;
      if (count > this._count) {
        for (let i = this._count; i < count; i++) put('ids[' + i + ']', i);
      } else if (count < this._count) {
        // Blocks merged (e.g. "Foo\n---" became a heading): drop the keys and the old nodes.
        const ids = [];
        for (let i = 0; i < count; i++) ids.push(i);
        put('ids', ids);
        for (let i = count; i < this._count; i++) put('blocks[' + i + ']', []);
        this._links.length = Math.min(this._links.length, count);
      }
      this._count = count;
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
