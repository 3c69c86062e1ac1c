// Type declarations of chunkwise/markdown: the streaming Markdown renderer (its own wasm module).

import type { URLObject } from './index.js';

export interface InitOptions {
  /** Mini program: the package path of chunkwise_markdown.wasm.br. Default '/miniprogram_npm/chunkwise/chunkwise_markdown.wasm.br'. */
  wasmPath?: string;
  /** Browser: where to fetch the wasm from. Default: next to markdown.js. */
  wasmUrl?: string | URLObject;
}

/** Loads the Markdown wasm module once (idempotent). */
export function init(options?: InitOptions): Promise<void>;

/** A <rich-text> node: an element or a text node. */
export type RichTextNode =
  | { name: string; attrs?: { class?: string; style?: string; [attr: string]: string | undefined }; children?: RichTextNode[] }
  | { type: 'text'; text: string };

export interface BlockPatch {
  /** The top-level block. */
  index: number;
  /** Child indices from the block's node array down to the element whose children changed ([] for the block itself). */
  path: number[];
  /** The first child replaced. */
  start: number;
  /** The block's nodes (path [] and start 0), or its changed children from `start` on; an HTML string for a raw-HTML block. */
  nodes: RichTextNode[] | string;
  /** nodes[0] is a text node the page already holds at `start`, grown: setting its `text` is enough (dataFor does). */
  grown?: boolean;
  /** The block's link and image URLs in order, when they changed (rich-text shows no href). */
  links?: string[];
}

export interface Patch {
  blocks: BlockPatch[];
  /** The number of blocks now; blocks at `count` and after no longer exist. */
  count: number;
}

export interface MarkdownRendererOptions {
  /** 'children' (default): only the changed children, apply with dataFor(). 'blocks': every changed block whole (bytes grow with the block). */
  patches?: 'blocks' | 'children';
  /** Highlight fenced code (JS/TS, Python, Java, Go, Rust, C/C++, JSON, Bash, SQL, HTML/CSS). Default true. */
  highlight?: boolean;
  /** GFM autolinks for bare URLs and emails. Default true. */
  autolink?: boolean;
}

export class MarkdownRenderer {
  constructor(options?: MarkdownRendererOptions);
  /** The revealed text grew by `text`; unclosed markup renders as if closed, stray markers at the edge are hidden. */
  append(text: string): Patch;
  /** The message is complete: blocks equal a one-shot render of the whole text. A second call changes nothing; `append` then throws until `reset`. */
  finish(): Patch;
  /** Forgets the message (after `finish` too), keeping the options. */
  reset(): void;
  free(): void;
  /** setData entries of a patch for blocks stored at `prefix`, e.g. 'msgs[3].blocks'. */
  dataFor(patch: Patch, prefix: string): Record<string, unknown>;
}
