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
 * A text kept as parts of `partLength` to 2 × `partLength` units, for setData. `update(text)` takes the
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
    var last = this.list.length - 1;
    if (last >= 0 && at - this.start >= n) {
      // Close the last part only where no cluster continues across (an unpaced delta may
      // have ended inside one).
      var cut = safeEnd(text, at, end);
      if (cut > at) {
        this.list[last] = text.slice(this.start, cut);
        changed.push(last);
        at = cut;
        continue;
      }
    }
    if (last < 0 || at - this.start >= n) {
      this.list.push('');
      this.start = at;
    }
    // A delta of up to n units goes whole into the last part: parts then end where ticks end,
    // and the typewriter never ends a tick inside a grapheme (adjacent parts are separate text
    // nodes, which do not join a cluster). A longer one (skip(), an unpaced chunk) is cut
    // into parts of n, never inside a character.
    var stop = end - at <= n ? end : safeEnd(text, Math.min(end, this.start + n), end);
    this.list[this.list.length - 1] = text.slice(this.start, stop);
    changed.push(this.list.length - 1);
    at = stop;
  }
  this.covered = end;
  return changed;
};

// What extends the cluster before it: a combining mark (accents, Indic vowel signs and viramas,
// variation selectors), a zero-width joiner, a skin tone, an emoji tag.
var EXTENDS = /^[\p{M}\u200d\u{1f3fb}-\u{1f3ff}\u{e0020}-\u{e007f}]/u;
// Viramas that join the next consonant into one cluster (Indic_Conjunct_Break=Linker: Devanagari,
// Bengali, Gujarati, Oriya, Telugu, Malayalam).
var LINKERS = [0x094d, 0x09cd, 0x0acd, 0x0b4d, 0x0c4d, 0x0d4d];
var LETTER = /^\p{L}/u;

/**
 * `at`, or the first position after it that splits no grapheme cluster the way a reader would
 * see it: not inside a surrogate pair or a CRLF, not before what extends a cluster or after a
 * joiner or a conjunct's virama, not between the two regional indicators of a flag. (The rules a
 * chat answer meets; Hangul jamo sequences, rare in text, are not treated.)
 */
function safeEnd(text, at, end) {
  while (at > 0 && at < end) {
    var prev = text.charCodeAt(at - 1);
    var next = text.charCodeAt(at);
    var inPair = prev >= 0xd800 && prev < 0xdc00 && next >= 0xdc00 && next < 0xe000;
    var joined = prev === 0x200d || (prev === 0x0d && next === 0x0a) || (LINKERS.indexOf(prev) >= 0 && LETTER.test(text.charAt(at))) || EXTENDS.test(text.slice(at, at + 2));
    var flag = isIndicator(text, at) && regionalRun(text, at) % 2 === 1;
    if (!inPair && !joined && !flag) break;
    at++;
  }
  return at;
}

/** Whether a regional indicator (U+1F1E6..U+1F1FF: D83C DDE6..DDFF) starts at `i`. */
function isIndicator(text, i) {
  var low = text.charCodeAt(i + 1);
  return text.charCodeAt(i) === 0xd83c && low >= 0xdde6 && low <= 0xddff;
}

/** How many regional indicators end right before `i`. */
function regionalRun(text, i) {
  var n = 0;
  while (i >= 2 && isIndicator(text, i - 2)) {
    n++;
    i -= 2;
  }
  return n;
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
