// pkg/node/markdown.js: the Markdown renderer for Node, its wasm loaded synchronously.
import * as glue from './chunkwise_markdown_glue.js';
import { MarkdownRenderer, bindMarkdown } from '../../markdown.js';

bindMarkdown(glue);
/** The module is loaded synchronously on Node; init() exists for the same code everywhere. */
export function init() {
  return Promise.resolve();
}
export { MarkdownRenderer };
