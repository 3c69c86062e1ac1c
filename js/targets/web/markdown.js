// pkg/web/markdown.js: the Markdown renderer as an ES module for browsers, with its own wasm.
import initGlue, * as glue from './chunkwise_markdown_glue.js';
import { wasmLoader } from './load.js';
import { MarkdownRenderer, bindMarkdown } from '../../markdown.js';

/** Loads the Markdown wasm once; options.wasmUrl overrides where it is fetched from. */
export var init = wasmLoader(initGlue, glue, bindMarkdown);
export { MarkdownRenderer };
