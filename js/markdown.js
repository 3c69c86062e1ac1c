// MarkdownRenderer: streaming Markdown to <rich-text> nodes, over the Markdown wasm module's
// surface (markdown/src/wasm.rs). Each package's markdown entry (js/targets/) loads that
// module and calls `bindMarkdown(glue)`.
import { WasmHeap, notLoaded, describe } from './wasm-heap.js';

var glue = null; // the Markdown module's wasm-bindgen glue, once loaded
// Where the results block (markdown/src/wasm.rs) holds a grown text's count of further page
// nodes (6 + its MAX_PATH; tests/js/markdown.test.js checks that the two agree).
var MORE = 16;
var heap = null;

/** The Markdown module is instantiated: `loadedGlue` has RawRenderer and wasm_memory. */
export function bindMarkdown(loadedGlue) {
  glue = loadedGlue;
  heap = new WasmHeap(glue.wasm_memory());
}

/**
 * Renders a growing Markdown message into rich-text nodes, block by block.
 * @param {{patches?: 'blocks' | 'children', highlight?: boolean, autolink?: boolean}} [options]
 *   patches: 'children' (default) sends only the changed children below `b.path` (apply with
 *   `dataFor`): an append costs what it adds, however long its block; 'blocks' sends every
 *   changed block whole, as `setData({['msgs[3].blocks[' + b.index + ']']: b.nodes})`
 *   expects (bytes grow with the block: quadratic for a long code block or table).
 */
export function MarkdownRenderer(options) {
  if (!(this instanceof MarkdownRenderer)) throw new TypeError("chunkwise: use 'new MarkdownRenderer(options)'");
  if (glue === null) throw notLoaded('MarkdownRenderer');
  options = options === undefined ? {} : options;
  if (options === null || typeof options !== 'object') throw new TypeError('chunkwise: MarkdownRenderer options must be an object');
  var patches = options.patches === undefined ? 'children' : options.patches;
  if (patches !== 'blocks' && patches !== 'children') {
    throw new Error("chunkwise: option patches must be 'blocks' or 'children', got " + JSON.stringify(patches));
  }
  this._raw = glue.RawRenderer.create(options.highlight !== false, options.autolink !== false, patches === 'blocks');
  this._results = this._raw.results_ptr() >>> 2;
  this._input = 0;
  this._inputSize = 0;
  this._finished = false;
}

MarkdownRenderer.prototype._live = function () {
  if (this._raw === null) throw new Error('chunkwise: this MarkdownRenderer was freed');
  return this._raw;
};

/** The revealed text grew by `text` (e.g. what StreamDecoder.tick returned). Returns a Patch. */
MarkdownRenderer.prototype.append = function (text) {
  if (typeof text !== 'string') throw new TypeError('chunkwise: append() takes a string, got ' + describe(text));
  var raw = this._live();
  if (this._finished) throw new Error('chunkwise: append() after finish(); reset() starts a new message');
  if (text.length > this._inputSize) {
    this._input = raw.input(text.length);
    this._inputSize = text.length;
  }
  heap.refresh();
  heap.writeString(this._input, text);
  return this._patch(raw.append(text.length));
};

/** The message is complete: the final, unhealed blocks (equal to rendering the whole text at once). */
MarkdownRenderer.prototype.finish = function () {
  var raw = this._live();
  this._finished = true;
  return this._patch(raw.finish());
};

MarkdownRenderer.prototype.reset = function () {
  this._live().reset();
  this._finished = false;
};

MarkdownRenderer.prototype.free = function () {
  if (this._raw !== null) {
    this._raw.free();
    this._raw = null;
  }
};

MarkdownRenderer.prototype._patch = function (len) {
  heap.refresh();
  var u = heap.u32;
  var r = this._results;
  var form = u[r + 1];
  // Nothing changed (a marker being typed): no JSON to read or parse.
  if (form === 2) return { blocks: [], count: u[r + 2] };
  if (form === 0) return JSON.parse(heap.readString(u[r], len));
  // One text node's text (most appends: a text node the page holds, grown; form 3: a new
  // one): the patch built without JSON. When a segment filled, the text's next segments
  // follow as new text nodes (`more` of them, their starts after it).
  var path = [];
  for (var d = 0; d < u[r + 5]; d++) path.push(u[r + 6 + d]);
  var more = u[r + MORE];
  var nodes;
  if (more === 0) nodes = [{ type: 'text', text: heap.readString(u[r], len) }];
  else {
    nodes = [];
    for (var k = 0, at = 0; k <= more; k++) {
      var end = k < more ? u[r + MORE + 1 + k] : len;
      nodes.push({ type: 'text', text: heap.readString(u[r] + 2 * at, end - at) });
      at = end;
    }
  }
  var b = { index: u[r + 2], path: path, start: u[r + 4], nodes: nodes };
  if (form === 1) b.grown = true;
  return { blocks: [b], count: u[r + 3] };
};

/**
 * The setData object of a patch for a page whose blocks live at `prefix` (e.g.
 * 'msgs[3].blocks'): one path key per changed block (or child, with patches: 'children').
 * Blocks at `patch.count` and after no longer exist: trim the page's array when it shrinks.
 */
MarkdownRenderer.prototype.dataFor = function (patch, prefix) {
  var data = {};
  for (var i = 0; i < patch.blocks.length; i++) {
    var b = patch.blocks[i];
    var key = prefix + '[' + b.index + ']';
    if (b.path.length === 0 && b.start === 0) {
      data[key] = b.nodes;
      continue;
    }
    for (var d = 0; d < b.path.length; d++) key += (d === 0 ? '' : '.children') + '[' + b.path[d] + ']';
    var base = b.path.length === 0 ? key : key + '.children';
    var j = 0;
    // A text node the page holds that grew: its text alone (setData cannot extend a string,
    // but it can leave the node's {"type":"text"} around it).
    if (b.grown === true) data[base + '[' + b.start + '].text'] = b.nodes[j++].text;
    for (; j < b.nodes.length; j++) data[base + '[' + (b.start + j) + ']'] = b.nodes[j];
  }
  return data;
};
