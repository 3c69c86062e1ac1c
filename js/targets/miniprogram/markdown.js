// pkg/miniprogram/markdown.js: the Markdown renderer for a mini program, with its own wasm
// module (chunkwise_markdown.wasm.br), loaded only by the pages that require this file.
import * as glue from 'wasm-glue:markdown';
import { wasmLoader } from './load.js';
import { MarkdownRenderer, bindMarkdown } from '../../markdown.js';

/** Loads chunkwise_markdown.wasm.br once; options.wasmPath overrides its package path. */
export var init = wasmLoader('chunkwise_markdown.wasm.br', './chunkwise_markdown_glue_bg.js', glue, bindMarkdown);
export { MarkdownRenderer };
