// What crosses setData. A mini program's setData replaces values and cannot extend a string,
// so a page that sets the whole answer on every tick re-sends it 20 times a second: quadratic
// bytes over a long answer. Here the answer and the reasoning are kept as parts of bounded
// length, and a tick sets only the parts it changed (normally the last one); with a
// MarkdownRenderer attached, the answer crosses as the renderer's patches of its blocks.
//
//   onUpdate: (view) => this.setData(view.setData('msgs[3]'))
//   // msgs[3].textParts: ['part 0', 'part 1', ...]   (or msgs[3].blocks with Markdown)
//   // <text><text wx:for="{{m.textParts}}" wx:key="index">{{item}}</text></text>

/** A part closes once it holds this many UTF-16 units: a tick re-sends at most about this much. */
export var DEFAULT_PART_LENGTH = 32;

/**
 * A text kept as parts of about `partLength` units, for setData. `update(text)` takes the
 * whole text so far (it only grows) and returns the indices of the parts it changed; `list`
 * holds the parts (a closed part never changes).
 */
export function Parts(partLength) {
  this.partLength = partLength;
  this.list = [];
  this.start = 0; // where the last part begins
  this.covered = 0;
}

Parts.prototype.update = function (text) {
  var changed = [];
  var end = text.length;
  var at = this.covered;
  var n = this.partLength;
  while (at < end) {
    if (this.list.length === 0 || at - this.start >= n) {
      this.list.push('');
      this.start = at;
    }
    // Grow the last part to at most n units (a long delta fills several parts), never splitting
    // a character: adjacent parts are separate text nodes, which do not join a cluster.
    var stop = safeEnd(text, Math.min(end, this.start + n), end);
    this.list[this.list.length - 1] = text.slice(this.start, stop);
    changed.push(this.list.length - 1);
    at = stop;
  }
  this.covered = end;
  return changed;
};

/**
 * `at`, or the first position after it that does not split a surrogate pair or attach a
 * joiner, variation selector, skin tone or combining mark to the part after it.
 */
function safeEnd(text, at, end) {
  while (at < end && at > 0) {
    var prev = text.charCodeAt(at - 1);
    var next = text.charCodeAt(at);
    var pair = prev >= 0xd800 && prev < 0xdc00 && next >= 0xdc00 && next < 0xe000;
    var joins = prev === 0x200d || next === 0x200d || (next >= 0xfe00 && next <= 0xfe0f) || (next >= 0x0300 && next <= 0x036f);
    var tone = next === 0xd83c && at + 1 < end && text.charCodeAt(at + 1) >= 0xdffb && text.charCodeAt(at + 1) <= 0xdfff;
    if (!pair && !joins && !tone) break;
    at++;
  }
  return at;
}

/**
 * The changes of one update, ready to become a setData object under any prefix: which text
 * and reasoning parts changed, the Markdown patches (with the renderer that made them), and
 * the status when it changed.
 */
export function Changes() {
  this.text = null; // [[index, part], ...]
  this.reasoning = null;
  this.patches = null; // [{patch, renderer}]
  this.status = null;
}

/** Adds the key of `name` under `prefix` ('' for top-level keys). */
function key(prefix, name) {
  return prefix === '' ? name : prefix + '.' + name;
}

/** The setData object for a page whose message data lives at `prefix` (e.g. 'msgs[3]'). */
Changes.prototype.data = function (prefix) {
  if (typeof prefix !== 'string') throw new TypeError("chunkwise: view.setData(prefix) takes the message's data path, e.g. 'msgs[3]'");
  var data = {};
  var i;
  if (this.text !== null) for (i = 0; i < this.text.length; i++) data[key(prefix, 'textParts[' + this.text[i][0] + ']')] = this.text[i][1];
  if (this.reasoning !== null) for (i = 0; i < this.reasoning.length; i++) data[key(prefix, 'reasoningParts[' + this.reasoning[i][0] + ']')] = this.reasoning[i][1];
  if (this.patches !== null) {
    var blocks = key(prefix, 'blocks');
    for (i = 0; i < this.patches.length; i++) {
      var p = this.patches[i];
      var entries = p.renderer.dataFor(p.patch, blocks);
      for (var k in entries) put(data, k, entries[k]);
      // Blocks merged (a setext underline, a table's delimiter row): empty the ones past the
      // end; setData cannot shorten an array in place.
      for (var b = p.patch.count; b < p.before; b++) put(data, blocks + '[' + b + ']', []);
    }
  }
  if (this.status !== null) data[key(prefix, 'status')] = this.status;
  return data;
};

/** A later entry for a key replaces an earlier one and moves last: setData applies keys in order. */
function put(data, k, value) {
  delete data[k];
  data[k] = value;
}
